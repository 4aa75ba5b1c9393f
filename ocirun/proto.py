"""Mirror of csrc/init/proto.h: the plan records and sync messages exchanged
with the C init.  tests/unit/test_proto.py checks both files agree."""

import struct


class Layout(struct.Struct):
    """A fixed-size C struct of proto.h: its name there, its format ("=":
    native order, no padding, which proto.h's structs never need; one
    character per field) and its field names in order.  test_proto.py checks
    every size, field name and offset against the header through cffi."""

    def __init__(self, cname, fmt, names):
        super().__init__(fmt)
        self.cname = cname
        self.names = names

    @property
    def fields(self):
        """[(name, format character)] in order."""
        return list(zip(self.names.split(), self.format[1:]))

    @property
    def offsets(self):
        """{field: byte offset} (for the test; packing needs none)."""
        out, fmt = {}, "="
        for name, f in self.fields:
            out[name] = struct.calcsize(fmt)
            fmt += f
        return out


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
MSG_HDR = Layout("ocirun_msg", "=IiII", "type err step value")  # + char detail[]

REPORT_SIZE = 4096  # proto.h OCIRUN_REPORT_SIZE

STEPS = [
    None, "plan", "setns", "userns", "unshare", "clone", "oom", "timens",
    "rootprop", "rootfs", "mount", "device", "devsymlink", "console", "mask",
    "readonly", "sysctl", "hostname", "domainname", "pivot", "root_ro", "cwd",
    "exec_lookup", "rlimit", "user", "caps", "nnp", "seccomp", "fifo", "exec",
    "loopback", "sync", "keyring", "setgroups", "setgid", "setuid", "hook", "personality", "sched", "ioprio", "affinity",
    "netdev", "mempolicy",
]



PLAN_HEADER = Layout("plan_header", "=IIII", "magic version total_len nrecords")
REC_HEADER = Layout("rec_header", "=HHI", "type zero len")
# the fixed part of each record type (strings and arrays follow it)
REC_U32 = Layout("rec_u32", "=I", "value")  # R_PRESERVE, R_PERSONALITY, R_IOPRIO
REC_S32 = Layout("rec_s32", "=i", "value")  # R_OOM
REC_U64 = Layout("rec_u64", "=Q", "value")  # R_NS_NEW, R_ROOTPROP, R_EXEC
REC_NS_JOIN = Layout("rec_ns_join", "=II", "nstype index")  # + path
REC_SYSCTL = Layout("rec_sysctl", "=II", "index zero")  # + key, value
REC_RLIMIT = Layout("rec_rlimit", "=IIQQ", "resource index soft hard")
REC_USER = Layout("rec_user", "=IIiI", "uid gid umask ngids")  # + u32 gids[]
REC_CAPS = Layout("rec_caps", "=QQQQQ", "bounding effective permitted inheritable ambient")
REC_SECCOMP = Layout("rec_seccomp", "=II", "flags zero")  # + struct sock_filter[]
REC_TERMINAL = Layout("rec_terminal", "=II", "rows cols")
REC_LSM = Layout("rec_lsm", "=II", "kind zero")  # + label
REC_MEMPOLICY = Layout("rec_mempolicy", "=II", "mode zero")  # + node mask
REC_SCHED = Layout("rec_sched", "=IIQiIQQQII",
                   "size policy flags nice priority runtime deadline period util_min util_max")
# + source, dest, fstype, data
REC_MOUNT = Layout("rec_mount", "=IIQQQQ", "kind index flags propagation attr_set attr_clr")
REC_DEVICE = Layout("rec_device", "=IIIIIIII", "type major minor mode uid gid bind index")  # + path
# + path, args[nargs], env[nenv]
REC_HOOK = Layout("rec_hook", "=IIIIII", "phase index timeout nargs nenv zero")
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
