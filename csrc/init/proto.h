/* Wire protocol between the Python runtime and the C init (ocirun-init).
 *
 * ocirun/proto.py mirrors every constant here; tests/unit/test_proto.py checks
 * that the two agree.  The C side never sees JSON: Python compiles config.json
 * into a flat, length-prefixed plan (TLV records) and the init only executes it.
 *
 * Plan layout (native endianness):
 *   header  u32 magic, u32 version, u32 total_len, u32 nrecords
 *   record  u16 type, u16 zero, u32 len, payload[len], zero padding to 8 bytes
 * Strings inside payloads are NUL-terminated and must end inside the payload.
 */
#ifndef OCIRUN_PROTO_H
#define OCIRUN_PROTO_H

#define OCIRUN_PLAN_MAGIC   0x5049434fU /* "OCIP" */
#define OCIRUN_PLAN_VERSION 1U
#define OCIRUN_PLAN_MAX     (16U << 20)

/* fds handed to the init: base = 3 + preserved fds; argv[1] is base, then
 * "fifo" and/or "cgroup" say which optional slots are filled. */
#define OCIRUN_FD_PLAN(base) (base)
#define OCIRUN_FD_SYNC(base) ((base) + 1)
#define OCIRUN_FD_FIFO(base) ((base) + 2)   /* exec.fifo (create) or the init's pidfd (exec) */
#define OCIRUN_FD_CGROUP(base) ((base) + 3) /* cgroup v2 directory: clone3(CLONE_INTO_CGROUP) */
#define OCIRUN_FD_REPORT(base) ((base) + 4) /* a 4 KiB memfd: the last error, written without a syscall */
/* The report page holds a struct ocirun_msg of type M_ERROR, written by every
 * failure before it is sent: when a seccomp filter refuses the send (and the
 * exit), the parent still reads what failed from the page after the death. */
#define OCIRUN_REPORT_SIZE 4096

enum ocirun_rec {
  R_NS_NEW = 1,        /* u64 CLONE_NEW* flags to create */
  R_NS_JOIN = 2,       /* u32 nstype, u32 index, str path */
  R_OOM = 3,           /* s32 oom_score_adj */
  R_TIMENS = 4,        /* str: content for /proc/self/timens_offsets */
  R_ROOTFS = 5,        /* str: absolute host path of the rootfs */
  R_ROOTPROP = 6,      /* u64 propagation flags for "/" (0: default) */
  R_ROOT_RO = 7,       /* flag */
  R_NO_PIVOT = 8,      /* flag */
  R_MOUNT = 9,         /* struct rec_mount + str source, dest, fstype, data */
  R_DEVICE = 10,       /* struct rec_device + str path */
  R_DEV_SYMLINKS = 11, /* flag: /dev/fd, std*, ptmx links */
  R_MASK = 12,         /* str path */
  R_RO_PATH = 13,      /* str path */
  R_SYSCTL = 14,       /* u32 index, u32 zero, str key (a/b/c), str value */
  R_HOSTNAME = 15,     /* str */
  R_DOMAINNAME = 16,   /* str */
  R_RLIMIT = 17,       /* u32 resource, u32 index, u64 soft, u64 hard */
  R_USER = 18,         /* u32 uid, u32 gid, s32 umask (-1 none), u32 n, u32 gids[n] */
  R_CAPS = 19,         /* u64 bounding, effective, permitted, inheritable, ambient */
  R_NNP = 20,          /* flag */
  R_SECCOMP = 21,      /* u32 flags, u32 zero, struct sock_filter[] */
  R_CWD = 22,          /* str */
  R_ARG = 23,          /* str, repeated */
  R_ENV = 24,          /* str, repeated */
  R_TERMINAL = 25,     /* u32 rows, u32 cols */
  R_PRESERVE = 26,     /* u32 number of preserved fds (3 .. 3+n-1) */
  R_LOOPBACK = 27,     /* flag: bring lo up */
  R_SETUP_SYNC = 28,   /* flag: stop after the user namespace for the parent */
  R_HOOK_SYNC = 29,    /* flag: stop before pivot_root for createRuntime hooks */
  R_NO_NEW_KEYRING = 30, /* flag */
  R_HOOK = 31,         /* struct rec_hook + str path, args[nargs], env[nenv] */
  R_PERSONALITY = 32,  /* u32 persona */
  R_EXEC = 33,         /* u64 CLONE_NEW* flags: exec mode, join a running container
                          with setns(pidfd at base+2, flags); no rootfs set-up */
  R_LSM = 34,          /* u32 kind (1 apparmor, 2 selinux), u32 zero, str label */
  R_SCHED = 35,        /* struct sched_attr (56 bytes) for sched_setattr */
  R_IOPRIO = 36,       /* u32 ioprio value for ioprio_set */
  R_CPU_INITIAL = 37,  /* cpu mask bytes: affinity while joining (exec) */
  R_CPU_FINAL = 38,    /* cpu mask bytes: affinity right before execve (exec) */
  R_NETLINK = 39,      /* flag: send the parent a route socket of the new
                          network namespace (linux.netDevices) */
  R_MEMPOLICY = 40,    /* u32 mode | flags, u32 zero, node mask bytes (n*8, n <= 16)
                          for set_mempolicy (linux.memoryPolicy) */
  R_MAX = 41
};

/* Every record's fixed part is a struct below, declared once more in
 * ocirun/proto.py next to its name; tests/unit/test_proto.py compares the
 * sizes and field offsets of both through cffi.  Strings and arrays follow
 * the fixed part as the record comments above say. */
struct plan_header {
  unsigned int magic, version, total_len, nrecords;
};

struct rec_header {
  unsigned short type, zero;
  unsigned int len;
};

struct rec_u32 { unsigned int value; };       /* R_PRESERVE, R_PERSONALITY, R_IOPRIO */
struct rec_s32 { int value; };                /* R_OOM */
struct rec_u64 { unsigned long long value; }; /* R_NS_NEW, R_ROOTPROP, R_EXEC */

struct rec_ns_join { unsigned int nstype, index; }; /* + str path */
struct rec_sysctl { unsigned int index, zero; };    /* + str key, str value */

struct rec_rlimit {
  unsigned int resource, index;
  unsigned long long soft, hard;
};

struct rec_user {
  unsigned int uid, gid;
  int umask; /* -1: none */
  unsigned int ngids; /* + u32 gids[ngids] */
};

struct rec_caps {
  unsigned long long bounding, effective, permitted, inheritable, ambient;
};

struct rec_seccomp { unsigned int flags, zero; };   /* + struct sock_filter[] */
struct rec_terminal { unsigned int rows, cols; };
struct rec_lsm { unsigned int kind, zero; };        /* + str label */
struct rec_mempolicy { unsigned int mode, zero; };  /* + node mask bytes */

/* struct sched_attr of sched_setattr(2), the whole of R_SCHED */
struct rec_sched {
  unsigned int size, policy;
  unsigned long long flags;
  int nice;
  unsigned int priority;
  unsigned long long runtime, deadline, period;
  unsigned int util_min, util_max;
};

enum ocirun_mount_kind { MK_BIND = 1, MK_FS = 2, MK_SYMLINK = 3, MK_SETATTR = 4 };

/* mount flags understood by the init, beyond MS_* (kept out of MS_ bits used) */
#define OCIRUN_MNT_REC_BIND   (1ULL << 40) /* rbind */
#define OCIRUN_MNT_NOFOLLOW   (1ULL << 41) /* destination may not contain symlinks (proc, sysfs) */
#define OCIRUN_MNT_SRC_PROC   (1ULL << 42) /* bind source must be procfs */
#define OCIRUN_MNT_TMPCOPYUP  (1ULL << 43)
#define OCIRUN_MNT_REC_PROP   (1ULL << 44) /* propagation is recursive */
#define OCIRUN_MNT_IDMAP      (1ULL << 45) /* the source comes as an idmapped tree fd (M_MOUNT_FD) */

struct rec_mount {
  unsigned int kind;
  unsigned int index;             /* position in config mounts[], for errors */
  unsigned long long flags;       /* MS_RDONLY.. (applied as mount attributes) + OCIRUN_MNT_* */
  unsigned long long propagation; /* MS_PRIVATE / MS_SHARED / MS_SLAVE / MS_UNBINDABLE or 0 */
  unsigned long long attr_set;    /* recursive MOUNT_ATTR_* to set (rro, rnosuid ...) */
  unsigned long long attr_clr;    /* recursive MOUNT_ATTR_* to clear */
};

struct rec_device {
  unsigned int type; /* 'c', 'b', 'p' */
  unsigned int major, minor, mode, uid, gid;
  unsigned int bind;  /* bind-mount the host node instead of mknod (user namespace) */
  unsigned int index; /* position in linux.devices (or 1000+ for defaults) */
};

enum ocirun_hook_phase { HOOK_CREATE_CONTAINER = 1, HOOK_START_CONTAINER = 2 };

struct rec_hook {
  unsigned int phase;
  unsigned int index;   /* position in hooks.<phase>[] */
  unsigned int timeout; /* seconds, 0 = none */
  unsigned int nargs, nenv, zero;
};

#define OCIRUN_HOOK_STATE_MAX 65536

/* sync messages, SOCK_SEQPACKET */
enum ocirun_msg_type {
  M_SETUP_REQ = 1, /* P -> parent: write id maps / place in cgroup; value = pid */
  M_SETUP_ACK = 2, /* parent -> P */
  M_PID = 3,       /* P -> parent: value = pid of the container init */
  M_PTY = 4,       /* init -> parent: pty master attached (SCM_RIGHTS) */
  M_READY = 5,     /* init -> parent: set up, waiting on the exec fifo */
  M_ERROR = 6,     /* any -> parent: step, errno, value (index), detail */
  M_WARN = 7,      /* any -> parent: detail */
  M_HOOK_REQ = 8,  /* init -> parent: run createRuntime hooks now */
  M_HOOK_ACK = 9,  /* parent -> init; detail = the state JSON for in-container hooks */
  M_SECCOMP = 10,  /* init -> parent: seccomp listener fd (SCM_RIGHTS) */
  M_MOUNT_FD = 11, /* parent -> bootstrap, before SETUP_ACK: an idmapped tree for
                      mount record `value` (SCM_RIGHTS) */
  M_NETLINK = 12   /* init -> parent: a NETLINK_ROUTE socket opened in the
                      container's network namespace (SCM_RIGHTS) */
};

struct ocirun_msg {
  unsigned int type;
  int err;
  unsigned int step;
  unsigned int value;
  char detail[1024];
};
#define OCIRUN_MSG_HDR 16

enum ocirun_step {
  S_PLAN = 1, S_SETNS, S_USERNS, S_UNSHARE, S_CLONE, S_OOM, S_TIMENS,
  S_ROOTPROP, S_ROOTFS, S_MOUNT, S_DEVICE, S_DEVSYMLINK, S_CONSOLE, S_MASK,
  S_READONLY, S_SYSCTL, S_HOSTNAME, S_DOMAINNAME, S_PIVOT, S_ROOT_RO, S_CWD,
  S_EXEC_LOOKUP, S_RLIMIT, S_USER, S_CAPS, S_NNP, S_SECCOMP, S_FIFO, S_EXEC,
  S_LOOPBACK, S_SYNC, S_KEYRING, S_SETGROUPS, S_SETGID, S_SETUID, S_HOOK, S_PERSONALITY, S_SCHED, S_IOPRIO, S_AFFINITY,
  S_NETDEV, S_MEMPOLICY
};

#endif
