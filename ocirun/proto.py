"""Mirror of csrc/init/proto.h: the plan records and sync messages exchanged
with the C init.  tests/unit/test_proto.py checks both files agree."""

import struct

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
MSG_HDR = struct.Struct("=IiII")

REPORT_SIZE = 4096  # proto.h OCIRUN_REPORT_SIZE

STEPS = [
    None, "plan", "setns", "userns", "unshare", "clone", "oom", "timens",
    "rootprop", "rootfs", "mount", "device", "devsymlink", "console", "mask",
    "readonly", "sysctl", "hostname", "domainname", "pivot", "root_ro", "cwd",
    "exec_lookup", "rlimit", "user", "caps", "nnp", "seccomp", "fifo", "exec",
    "loopback", "sync", "keyring", "setgroups", "setgid", "setuid", "hook", "personality", "sched", "ioprio", "affinity",
    "netdev", "mempolicy",
]

REC_MOUNT = struct.Struct("=IIQQQQ")
REC_DEVICE = struct.Struct("=IIIIIIII")
REC_HOOK = struct.Struct("=IIIIII")
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
        self.parts.append(struct.pack("=HHI", rtype, 0, ln))
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
        self.rec(rtype, struct.pack("=Q", v))

    def finish(self):
        body = b"".join(self.parts)
        total = 16 + len(body)
        if total > PLAN_MAX:
            raise ValueError("plan too large")
        return struct.pack("=IIII", PLAN_MAGIC, PLAN_VERSION, total, self.n) + body


def cstr(s):
    b = s.encode() if isinstance(s, str) else bytes(s)
    if b"\0" in b:
        raise ValueError("NUL byte in string")
    return b + b"\0"
