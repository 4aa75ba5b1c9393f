"""Mirror of csrc/init/proto.h: the plan records and sync messages exchanged
with the C init.  tests/unit/test_proto.py checks both files agree."""

import struct


class Layout(struct.Struct):
    """A fixed-size C struct of proto.h: its name there and its fields in
    order with their formats ("=": native order, no padding, which proto.h's
    structs never need; tests/unit/test_proto.py checks every size and field
    offset against the header through cffi)."""

    def __init__(self, cname, *fields):
        super().__init__("=" + "".join(f for _n, f in fields))
        self.cname = cname
        self.fields = tuple(n for n, _f in fields)
        self.formats = tuple(f for _n, f in fields)
        self.offsets = {}
        fmt = "="
        for name, f in fields:
            self.offsets[name] = struct.calcsize(fmt)
            fmt += f


PLAN_MAGIC = 0x5049434F
PLAN_VERSION = 1
PLAN_MAX = 16 << 20

R_NS_NEW = 1
R_NS_JOIN = 2
R_OOM = 3
R_TIMENS = 4
R_ROOTFS = 5
R_ROOTPROP = 6
R_ROOT_RO = 7
R_NO_PIVOT = 8
R_MOUNT = 9
R_DEVICE = 10
R_DEV_SYMLINKS = 11
R_MASK = 12
R_RO_PATH = 13
R_SYSCTL = 14
R_HOSTNAME = 15
R_DOMAINNAME = 16
R_RLIMIT = 17
R_USER = 18
R_CAPS = 19
R_NNP = 20
R_SECCOMP = 21
R_CWD = 22
R_ARG = 23
R_ENV = 24
R_TERMINAL = 25
R_PRESERVE = 26
R_LOOPBACK = 27
R_SETUP_SYNC = 28
R_HOOK_SYNC = 29
R_NO_NEW_KEYRING = 30
R_HOOK = 31
R_PERSONALITY = 32
R_EXEC = 33
R_LSM = 34
R_SCHED = 35
R_IOPRIO = 36
R_CPU_INITIAL = 37
R_CPU_FINAL = 38
R_NETLINK = 39
R_MEMPOLICY = 40

MK_BIND = 1
MK_FS = 2
MK_SYMLINK = 3
MK_SETATTR = 4

MNT_REC_BIND = 1 << 40
MNT_NOFOLLOW = 1 << 41
MNT_SRC_PROC = 1 << 42
MNT_TMPCOPYUP = 1 << 43
MNT_REC_PROP = 1 << 44
MNT_IDMAP = 1 << 45

M_SETUP_REQ = 1
M_SETUP_ACK = 2
M_PID = 3
M_PTY = 4
M_READY = 5
M_ERROR = 6
M_WARN = 7
M_HOOK_REQ = 8
M_HOOK_ACK = 9
M_SECCOMP = 10
M_MOUNT_FD = 11
M_NETLINK = 12
MSG_HDR = Layout("ocirun_msg", ("type", "I"), ("err", "i"), ("step", "I"), ("value", "I"))  # + char detail[]

REPORT_SIZE = 4096  # proto.h OCIRUN_REPORT_SIZE

STEPS = [
    None, "plan", "setns", "userns", "unshare", "clone", "oom", "timens",
    "rootprop", "rootfs", "mount", "device", "devsymlink", "console", "mask",
    "readonly", "sysctl", "hostname", "domainname", "pivot", "root_ro", "cwd",
    "exec_lookup", "rlimit", "user", "caps", "nnp", "seccomp", "fifo", "exec",
    "loopback", "sync", "keyring", "setgroups", "setgid", "setuid", "hook", "personality", "sched", "ioprio", "affinity",
    "netdev", "mempolicy",
]



PLAN_HEADER = Layout("plan_header", ("magic", "I"), ("version", "I"), ("total_len", "I"), ("nrecords", "I"))
REC_HEADER = Layout("rec_header", ("type", "H"), ("zero", "H"), ("len", "I"))
# the fixed part of each record type (strings and arrays follow it)
REC_U32 = Layout("rec_u32", ("value", "I"))  # R_PRESERVE, R_PERSONALITY, R_IOPRIO
REC_S32 = Layout("rec_s32", ("value", "i"))  # R_OOM
REC_U64 = Layout("rec_u64", ("value", "Q"))  # R_NS_NEW, R_ROOTPROP, R_EXEC
REC_NS_JOIN = Layout("rec_ns_join", ("nstype", "I"), ("index", "I"))  # + path
REC_SYSCTL = Layout("rec_sysctl", ("index", "I"), ("zero", "I"))  # + key, value
REC_RLIMIT = Layout("rec_rlimit", ("resource", "I"), ("index", "I"), ("soft", "Q"), ("hard", "Q"))
REC_USER = Layout("rec_user", ("uid", "I"), ("gid", "I"), ("umask", "i"), ("ngids", "I"))  # + u32 gids[]
REC_CAPS = Layout("rec_caps", ("bounding", "Q"), ("effective", "Q"), ("permitted", "Q"), ("inheritable", "Q"),
                  ("ambient", "Q"))
REC_SECCOMP = Layout("rec_seccomp", ("flags", "I"), ("zero", "I"))  # + struct sock_filter[]
REC_TERMINAL = Layout("rec_terminal", ("rows", "I"), ("cols", "I"))
REC_LSM = Layout("rec_lsm", ("kind", "I"), ("zero", "I"))  # + label
REC_MEMPOLICY = Layout("rec_mempolicy", ("mode", "I"), ("zero", "I"))  # + node mask
REC_SCHED = Layout("rec_sched", ("size", "I"), ("policy", "I"), ("flags", "Q"), ("nice", "i"), ("priority", "I"),
                   ("runtime", "Q"), ("deadline", "Q"), ("period", "Q"), ("util_min", "I"), ("util_max", "I"))
REC_MOUNT = Layout("rec_mount", ("kind", "I"), ("index", "I"), ("flags", "Q"), ("propagation", "Q"),
                   ("attr_set", "Q"), ("attr_clr", "Q"))  # + source, dest, fstype, data
REC_DEVICE = Layout("rec_device", ("type", "I"), ("major", "I"), ("minor", "I"), ("mode", "I"), ("uid", "I"),
                    ("gid", "I"), ("bind", "I"), ("index", "I"))  # + path
REC_HOOK = Layout("rec_hook", ("phase", "I"), ("index", "I"), ("timeout", "I"), ("nargs", "I"), ("nenv", "I"),
                  ("zero", "I"))  # + path, args[nargs], env[nenv]
LSM_APPARMOR = 1
LSM_SELINUX = 2
HOOK_CREATE_CONTAINER = 1
HOOK_START_CONTAINER = 2
HOOK_STATE_MAX = 65536


class PlanWriter:
    """Builds the flat plan: header + (u16 type, u16 0, u32 len, payload, pad8)."""

    def __init__(self):
        self.parts = []
        self.n = 0

    def rec(self, rtype, payload=b""):
        ln = len(payload)
        self.parts.append(REC_HEADER.pack(rtype, 0, ln))
        self.parts.append(payload)
        pad = (-ln) & 7
        if pad:
            self.parts.append(b"\0" * pad)
        self.n += 1

    def flag(self, rtype):
        self.rec(rtype)

    def str(self, rtype, s):
        self.rec(rtype, cstr(s))

    def u64(self, rtype, v):
        self.rec(rtype, REC_U64.pack(v))

    def finish(self):
        body = b"".join(self.parts)
        total = PLAN_HEADER.size + len(body)
        if total > PLAN_MAX:
            raise ValueError("plan too large")
        return PLAN_HEADER.pack(PLAN_MAGIC, PLAN_VERSION, total, self.n) + body


def u32_array(values):
    """u32 values[n], the tail of R_USER."""
    return struct.pack(f"={len(values)}I", *values)


def cstr(s):
    b = s.encode() if isinstance(s, str) else bytes(s)
    if b"\0" in b:
        raise ValueError("NUL byte in string")
    return b + b"\0"
