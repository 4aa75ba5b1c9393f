"""The single source of the names ocirun recognises and their numbers:
namespaces, mount options, capabilities, rlimits, signals, hook phases,
personalities, scheduling, I/O priority and memory policies, seccomp
actions, operators, flags and architectures.  The config parser, the seccomp
compiler and the `features` command all read these tables.  (The plan's
record and step numbers are the wire format: ocirun/proto.py; the signal
names are csrc/core's table, shared with the front-end: parse_signal.)"""

# linux.namespaces[].type -> CLONE_NEW* flag
NAMESPACES = {
    "mount": 0x00020000,
    "cgroup": 0x02000000,
    "uts": 0x04000000,
    "ipc": 0x08000000,
    "user": 0x10000000,
    "pid": 0x20000000,
    "network": 0x40000000,
    "time": 0x00000080,
}
NS_PROC_NAME = {
    "mount": "mnt", "cgroup": "cgroup", "uts": "uts", "ipc": "ipc",
    "user": "user", "pid": "pid", "network": "net", "time": "time",
}

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

# option -> (clear?, flag), as runc's mount option table
MOUNT_FLAGS = {
    "async": (True, MS_SYNCHRONOUS),
    "atime": (True, MS_NOATIME),
    "bind": (False, MS_BIND),
    "defaults": (False, 0),
    "dev": (True, MS_NODEV),
    "diratime": (True, MS_NODIRATIME),
    "dirsync": (False, MS_DIRSYNC),
    "exec": (True, MS_NOEXEC),
    "iversion": (False, 1 << 23),
    "lazytime": (False, MS_LAZYTIME),
    "loud": (True, MS_SILENT),
    "mand": (False, MS_MANDLOCK),
    "noatime": (False, MS_NOATIME),
    "nodev": (False, MS_NODEV),
    "nodiratime": (False, MS_NODIRATIME),
    "noexec": (False, MS_NOEXEC),
    "noiversion": (True, 1 << 23),
    "nolazytime": (True, MS_LAZYTIME),
    "nomand": (True, MS_MANDLOCK),
    "norelatime": (True, MS_RELATIME),
    "nostrictatime": (True, MS_STRICTATIME),
    "nosuid": (False, MS_NOSUID),
    "nosymfollow": (False, MS_NOSYMFOLLOW),
    "rbind": (False, MS_BIND | MS_REC),
    "relatime": (False, MS_RELATIME),
    "remount": (False, MS_REMOUNT),
    "ro": (False, MS_RDONLY),
    "rw": (True, MS_RDONLY),
    "silent": (False, MS_SILENT),
    "strictatime": (False, MS_STRICTATIME),
    "suid": (True, MS_NOSUID),
    "sync": (False, MS_SYNCHRONOUS),
}
# superblock flags passed to a new filesystem as fsconfig flags
SB_OPTIONS = {"sync": MS_SYNCHRONOUS, "dirsync": MS_DIRSYNC, "mand": MS_MANDLOCK, "lazytime": MS_LAZYTIME}

PROPAGATION = {
    "private": MS_PRIVATE,
    "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED,
    "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE,
    "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE,
    "runbindable": MS_UNBINDABLE | MS_REC,
}

MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_NOSYMFOLLOW = 0x200000

# recursive options: option -> (clear?, attr); atime ones also clear the atime field
RECURSIVE_ATTRS = {
    "rro": (False, MOUNT_ATTR_RDONLY),
    "rrw": (True, MOUNT_ATTR_RDONLY),
    "rnosuid": (False, MOUNT_ATTR_NOSUID),
    "rsuid": (True, MOUNT_ATTR_NOSUID),
    "rnodev": (False, MOUNT_ATTR_NODEV),
    "rdev": (True, MOUNT_ATTR_NODEV),
    "rnoexec": (False, MOUNT_ATTR_NOEXEC),
    "rexec": (True, MOUNT_ATTR_NOEXEC),
    "rnodiratime": (False, MOUNT_ATTR_NODIRATIME),
    "rdiratime": (True, MOUNT_ATTR_NODIRATIME),
    "rrelatime": (False, MOUNT_ATTR_RELATIME),
    "rnorelatime": (True, MOUNT_ATTR_RELATIME),
    "rnoatime": (False, MOUNT_ATTR_NOATIME),
    "ratime": (True, MOUNT_ATTR_NOATIME),
    "rstrictatime": (False, MOUNT_ATTR_STRICTATIME),
    "rnostrictatime": (True, MOUNT_ATTR_STRICTATIME),
    "rnosymfollow": (False, MOUNT_ATTR_NOSYMFOLLOW),
    "rsymfollow": (True, MOUNT_ATTR_NOSYMFOLLOW),
}
RECURSIVE_ATIME = {"rrelatime", "rnorelatime", "rnoatime", "ratime", "rstrictatime", "rnostrictatime"}
EXTENSION_OPTIONS = {"tmpcopyup", "idmap", "ridmap"}

# what `features` reports as recognised generic mount options
KNOWN_MOUNT_OPTIONS = sorted(set(MOUNT_FLAGS) | set(PROPAGATION) | set(RECURSIVE_ATTRS) | EXTENSION_OPTIONS)

CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]
CAP_NUMBER = {name: i for i, name in enumerate(CAPABILITIES)}

RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3,
    "RLIMIT_CORE": 4, "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7,
    "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11,
    "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}

HOOK_PHASES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")

# linux.personality.domain -> persona
PERSONALITY = {"LINUX": 0x0000, "LINUX32": 0x0008}

# process.scheduler (sched_setattr), process.ioPriority (ioprio_set)
SCHED_POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3, "SCHED_ISO": 4,
                  "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
SCHED_FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02, "SCHED_FLAG_DL_OVERRUN": 0x04,
               "SCHED_FLAG_KEEP_POLICY": 0x08, "SCHED_FLAG_KEEP_PARAMS": 0x10, "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
               "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}
IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}

# linux.memoryPolicy (set_mempolicy)
MPOL_MODES = {"MPOL_DEFAULT": 0, "MPOL_PREFERRED": 1, "MPOL_BIND": 2, "MPOL_INTERLEAVE": 3, "MPOL_LOCAL": 4,
              "MPOL_PREFERRED_MANY": 5, "MPOL_WEIGHTED_INTERLEAVE": 6}
MPOL_FLAGS = {"MPOL_F_NUMA_BALANCING": 1 << 13, "MPOL_F_RELATIVE_NODES": 1 << 14, "MPOL_F_STATIC_NODES": 1 << 15}

# linux.seccomp: SECCOMP_RET_* actions, libseccomp's comparison operators,
# SECCOMP_FILTER_FLAG_* and the architectures
SECCOMP_ACT_KILL_PROCESS = 0x80000000
SECCOMP_ACT_KILL_THREAD = 0x00000000
SECCOMP_ACT_TRAP = 0x00030000
SECCOMP_ACT_ERRNO = 0x00050000
SECCOMP_ACT_TRACE = 0x7FF00000
SECCOMP_ACT_LOG = 0x7FFC0000
SECCOMP_ACT_ALLOW = 0x7FFF0000
SECCOMP_ACT_NOTIFY = 0x7FC00000
SECCOMP_ACTIONS = {
    "SCMP_ACT_KILL": SECCOMP_ACT_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": SECCOMP_ACT_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": SECCOMP_ACT_KILL_PROCESS,
    "SCMP_ACT_TRAP": SECCOMP_ACT_TRAP,
    "SCMP_ACT_ERRNO": SECCOMP_ACT_ERRNO,
    "SCMP_ACT_TRACE": SECCOMP_ACT_TRACE,
    "SCMP_ACT_ALLOW": SECCOMP_ACT_ALLOW,
    "SCMP_ACT_LOG": SECCOMP_ACT_LOG,
    "SCMP_ACT_NOTIFY": SECCOMP_ACT_NOTIFY,
}
SECCOMP_OPERATORS = {
    "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
}
SECCOMP_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32,
}
SECCOMP_FLAG_NEW_LISTENER = 8
SECCOMP_ARCHS = ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
                 "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
                 "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
                 "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64",
                 "SCMP_ARCH_RISCV64"]

# signal names: the table is csrc/core/lifecycle.c's (ocirun._lifecycle.signals(),
# {name without SIG: number}), shared with the front-end
SIGRTMIN = 34
SIGRTMAX = 64


def parse_signal(text):
    """runc's signal parsing: a decimal number, or a name with or without SIG,
    in any case (also RTMIN+n / RTMAX-n); 0 sends nothing and only checks
    that the init is alive (runc accepts it: engines probe with it).  The
    plain forms (up to 3 digits, a name of the table in ASCII case) are
    csrc/core's lc_signal_number, which the front-end applies before it
    hands off; what it leaves is Python's: surrounding blanks, longer
    numbers, other case foldings and the real-time forms."""
    from ocirun import _lifecycle
    from ocirun.errors import OcirunError

    t = text.strip()
    n = _lifecycle.signal_number(t)
    if n >= 0:
        return n
    if t.isdecimal():
        n = int(t)
        if 0 <= n <= SIGRTMAX:
            return n
        raise OcirunError(f'unknown signal "{text}"')
    u = t.upper()
    if u.startswith("SIG"):
        u = u[3:]
    names = _lifecycle.signals()
    if u in names:
        return names[u]
    for base, name, sign in ((SIGRTMIN, "RTMIN", 1), (SIGRTMAX, "RTMAX", -1)):
        if u == name:
            return base
        if u.startswith(name + ("+" if sign > 0 else "-")) and u[len(name) + 1:].isdecimal():
            n = base + sign * int(u[len(name) + 1:])
            if SIGRTMIN <= n <= SIGRTMAX:
                return n
    raise OcirunError(f'unknown signal "{text}"')
