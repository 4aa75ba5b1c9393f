/* The process half of the init: sysctls, rlimits, credentials and
 * capabilities, the PATH lookup of args[0], the exec fifo, fd hygiene and the
 * final execve. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <linux/filter.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "init.h"

/* G8: sysctls are written through the runtime's own procfs handle, one exact
 * file, no symlinks, no mount crossing, fstatfs-checked. */
void do_sysctls(struct plan *p, int procfd) {
  for (unsigned int i = 0; i < p->nsysctls; i++) {
    char path[512];
    str_copy(path, sizeof path, "sys/");
    size_t n = strlen(path);
    str_copy(path + n, sizeof path - n, p->sysctls[i].key);
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_WRONLY | O_CLOEXEC | O_TRUNC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    int fd = (int)syscall(SYS_openat2, procfd, path, &how, sizeof how);
    if (fd < 0) fail(S_SYSCTL, errno, p->sysctls[i].index, p->sysctls[i].key);
    struct statfs sf;
    if (fstatfs(fd, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC) fail(S_SYSCTL, EPERM, p->sysctls[i].index, p->sysctls[i].key);
    size_t len = strlen(p->sysctls[i].value);
    if (write(fd, p->sysctls[i].value, len) != (ssize_t)len) fail(S_SYSCTL, errno, p->sysctls[i].index, p->sysctls[i].key);
    close(fd);
  }
}

void do_rlimits(struct plan *p) {
  for (unsigned int i = 0; i < p->nrlimits; i++) {
    struct rlimit r = {.rlim_cur = p->rlimits[i].soft, .rlim_max = p->rlimits[i].hard};
    if (setrlimit((int)p->rlimits[i].resource, &r) < 0) fail(S_RLIMIT, errno, p->rlimits[i].index, NULL);
  }
}

static int cap_last(int procfd) {
  int fd = openat(procfd, "sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 40;
  char buf[16] = {0};
  ssize_t r = read(fd, buf, sizeof buf - 1);
  close(fd);
  int v = 0;
  for (ssize_t i = 0; i < r && buf[i] >= '0' && buf[i] <= '9'; i++) v = v * 10 + (buf[i] - '0');
  return v > 0 ? v : 40;
}

static int last_cap = 40;

void read_cap_last(int procfd) { last_cap = cap_last(procfd); }

/* procfd < 0: read_cap_last was called before the runtime's fds were closed */
void do_user(struct plan *p, int procfd) {
  if (procfd >= 0) last_cap = cap_last(procfd);
  if (p->has_caps) {
    /* bounding set first, while CAP_SETPCAP is still effective */
    for (int c = 0; c <= last_cap; c++)
      if (!(p->cap_bnd & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
        fail(S_CAPS, errno, (unsigned int)c, "dropping from the bounding set");
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) fail(S_CAPS, errno, 0, "PR_SET_KEEPCAPS");
  }
  if (p->has_user) {
    if (syscall(SYS_setgroups, (size_t)p->ngids, p->gids) < 0 && !(errno == EPERM && p->ngids == 0))
      fail(S_SETGROUPS, errno, 0, NULL);
    if (syscall(SYS_setresgid, p->gid, p->gid, p->gid) < 0) fail(S_SETGID, errno, p->gid, NULL);
    if (syscall(SYS_setresuid, p->uid, p->uid, p->uid) < 0) fail(S_SETUID, errno, p->uid, NULL);
    if (p->umask >= 0) umask((mode_t)p->umask);
  }
  /* changing credentials may reset the dumpable flag: keep it off (G3) */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (p->has_caps) {
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof d);
    d[0].effective = (unsigned int)p->cap_eff;
    d[1].effective = (unsigned int)(p->cap_eff >> 32);
    d[0].permitted = (unsigned int)p->cap_prm;
    d[1].permitted = (unsigned int)(p->cap_prm >> 32);
    d[0].inheritable = (unsigned int)p->cap_inh;
    d[1].inheritable = (unsigned int)(p->cap_inh >> 32);
    if (syscall(SYS_capset, &h, d) < 0) fail(S_CAPS, errno, 0, "capset");
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) fail(S_CAPS, errno, 0, "PR_SET_KEEPCAPS");
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
      fail(S_CAPS, errno, 0, "clearing ambient capabilities");
    for (int c = 0; c <= last_cap; c++)
      if ((p->cap_amb & (1ULL << c)) && (p->cap_inh & (1ULL << c)) && (p->cap_prm & (1ULL << c)))
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0) fail(S_CAPS, errno, (unsigned int)c, "raising ambient");
  }
}

static const char *env_get(struct plan *p, const char *name) {
  size_t n = strlen(name);
  for (unsigned int i = 0; i < p->envc; i++)
    if (!strncmp(p->envp[i], name, n) && p->envp[i][n] == '=') return p->envp[i] + n + 1;
  return NULL;
}

static int is_exec_file(const char *path) {
  struct stat st;
  if (stat(path, &st) < 0) return -errno;
  if (S_ISDIR(st.st_mode)) return -EACCES;
  if (!(st.st_mode & 0111)) return -EACCES;
  return 0;
}

/* Look args[0] up on the container's PATH (after pivot_root, so every lookup
 * is inside the container).  Returns the path to execve, or fails with a
 * message engines classify (127 for not found). */
const char *lookup_exec(struct plan *p, char *buf, size_t size) {
  const char *name = p->argv[0];
  if (strchr(name, '/')) {
    int r = is_exec_file(name);
    if (r < 0) fail(S_EXEC_LOOKUP, -r, 1, name);
    return name;
  }
  const char *path = env_get(p, "PATH");
  if (!path) fail(S_EXEC_LOOKUP, ENOENT, 0, name);
  int saw_eacces = 0;
  while (1) {
    const char *colon = strchr(path, ':');
    size_t dl = colon ? (size_t)(colon - path) : strlen(path);
    if (dl + strlen(name) + 2 < size) {
      if (dl == 0) {
        str_copy(buf, size, name);
      } else {
        memcpy(buf, path, dl);
        buf[dl] = '/';
        str_copy(buf + dl + 1, size - dl - 1, name);
      }
      int r = is_exec_file(buf);
      if (r == 0) return buf;
      if (r == -EACCES) saw_eacces = 1;
    }
    if (!colon) break;
    path = colon + 1;
  }
  (void)saw_eacces;
  fail(S_EXEC_LOOKUP, ENOENT, 0, name);
}

/* HOME from the image's /etc/passwd when process.env has none (as runc:
 * "/" when the uid has no entry).  Read as root, before the credentials
 * change, and resolved inside the container's root: the image may make
 * /etc/passwd a symlink (to ../usr/share/…, /usr/lib/…), which is followed
 * in-root; magic links, FIFOs and device nodes are not read. */
/* kernel filesystems whose files are interfaces, not data */
static int pseudo_fs(long t) {
  switch (t) {
  case PROC_SUPER_MAGIC: case SYSFS_MAGIC: case DEBUGFS_MAGIC: case TRACEFS_MAGIC: case SECURITYFS_MAGIC:
  case CGROUP_SUPER_MAGIC: case CGROUP2_SUPER_MAGIC: case BPF_FS_MAGIC: case PSTOREFS_MAGIC: case EFIVARFS_MAGIC:
    return 1;
  default:
    return 0;
  }
}

void set_home(struct plan *p) {
  if (env_get(p, "HOME")) return;
  static char home[4200];
  str_copy(home, sizeof home, "HOME=/");
  unsigned int uid = p->has_user ? p->uid : 0;
  int fd = -1;
  int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root >= 0) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    fd = (int)syscall(SYS_openat2, root, "etc/passwd", &how, sizeof how);
    close(root);
  }
  /* a regular file on a real filesystem: the image may point /etc/passwd
   * at /proc/kmsg or the like, which root (we still are) could read */
  struct stat st;
  struct statfs sf;
  if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || fstatfs(fd, &sf) < 0 || pseudo_fs(sf.f_type))) {
    close(fd);
    fd = -1;
  }
  if (fd >= 0) {
    static char pw[65536];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof pw - 1 && (r = read(fd, pw + n, sizeof pw - 1 - n)) > 0) n += (size_t)r;
    close(fd);
    if (n > 0) {
      pw[n] = 0;
      char *line = pw;
      while (line && *line) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        /* name:pw:uid:gid:gecos:home:shell */
        char *f[7] = {0};
        int k = 0;
        char *s = line;
        f[k++] = s;
        while (k < 7 && (s = strchr(s, ':'))) {
          *s++ = 0;
          f[k++] = s;
        }
        if (k >= 6 && f[2][0]) {
          unsigned int v = 0;
          char *d = f[2];
          while (*d >= '0' && *d <= '9') v = v * 10 + (unsigned int)(*d++ - '0');
          if (!*d && v == uid && f[5][0]) {
            str_copy(home + 5, sizeof home - 5, f[5]);
            break;
          }
        }
        line = nl ? nl + 1 : NULL;
      }
    }
  }
  p->envp[p->envc++] = home;
  p->envp[p->envc] = NULL;
}

/* Load the compiled filter.  With a notify listener the kernel returns its
 * fd, which goes to the parent (it forwards it to listenerPath). */
void load_seccomp(struct plan *p) {
  if (!p->seccomp) return;
  struct sock_fprog prog = {.len = (unsigned short)(p->seccomp_len / 8), .filter = (struct sock_filter *)p->seccomp};
  long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p->seccomp_flags, &prog);
  if (r < 0) fail(S_SECCOMP, errno, 0, NULL);
  if (p->seccomp_flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) {
    if (send_msg(M_SECCOMP, 0, (int)r) < 0) fail(S_SECCOMP, errno, 0, "sending the listener fd");
    close((int)r);
  }
  p->seccomp = NULL;
}

int fifo_write_fd = -1;

/* process.scheduler and process.ioPriority, while still privileged */
/* linux.memoryPolicy: the task policy survives execve and is inherited */
void apply_mempolicy(struct plan *p) {
  if (!p->has_mempolicy) return;
  unsigned long mask[16];
  unsigned long maxnode = 0;
  memset(mask, 0, sizeof mask);
  if (p->mempolicy_mask_len) {
    memcpy(mask, p->mempolicy_mask, p->mempolicy_mask_len);
    maxnode = (unsigned long)p->mempolicy_mask_len * 8 + 1; /* the kernel counts one less */
  }
  if (syscall(SYS_set_mempolicy, (int)p->mempolicy_mode, maxnode ? mask : NULL, maxnode) < 0)
    fail(S_MEMPOLICY, errno, 0, NULL);
}

void apply_sched(struct plan *p) {
  if (p->sched_attr) {
    char attr[56];
    memcpy(attr, p->sched_attr, 56);
    if (syscall(SYS_sched_setattr, 0, attr, 0) < 0) fail(S_SCHED, errno, 0, NULL);
  }
  if (p->has_ioprio && syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, p->ioprio) < 0)
    fail(S_IOPRIO, errno, 0, NULL);
}

void set_affinity(const void *mask, unsigned int len) {
  if (mask && syscall(SYS_sched_setaffinity, 0, len, mask) < 0) fail(S_AFFINITY, errno, 0, NULL);
}

/* G8: write one of our own /proc files through the runtime's procfs handle,
 * without following symlinks, and only if it really is on procfs. */
void write_proc_self(int procfd, const char *file, const char *data, int step) {
  int fd = openat(procfd, file, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) fail(step, errno, 0, file);
  struct statfs sf;
  if (fstatfs(fd, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC) fail(step, EPERM, 0, file);
  size_t len = strlen(data);
  if (write(fd, data, len) != (ssize_t)len) fail(step, errno, 0, file);
  close(fd);
}

/* AppArmor / SELinux: the label the kernel applies at our execve, written
 * through the runtime's procfs handle (G8).  Only reached when the host has
 * the LSM: the parent refuses a label for an LSM the host lacks. */
void apply_lsm(struct plan *p, int procfd) {
  const char *file = NULL, *label = NULL;
  char buf[4200];
  if (p->apparmor) {
    file = "thread-self/attr/apparmor/exec";
    str_copy(buf, sizeof buf, "exec ");
    str_copy(buf + 5, sizeof buf - 5, p->apparmor);
    label = buf;
  } else if (p->selinux) {
    file = "thread-self/attr/exec";
    label = p->selinux;
  }
  if (file) write_proc_self(procfd, file, label, S_USER);
}

/* G1: close every fd but stdio, the preserved fds, the (close-on-exec) sync
 * socket and `keep` (-1: none). */
void close_unpreserved(struct plan *p, int keep) {
  unsigned int first = 3 + p->npreserve;
  unsigned int k[2] = {(unsigned int)sync_fd, keep >= 0 ? (unsigned int)keep : (unsigned int)sync_fd};
  if (k[1] < k[0]) {
    unsigned int t = k[0];
    k[0] = k[1];
    k[1] = t;
  }
  unsigned int from = first;
  for (int i = 0; i < 2; i++) {
    if (k[i] >= from) {
      if (k[i] > from) syscall(SYS_close_range, from, k[i] - 1, 0);
      from = k[i] + 1;
    }
  }
  syscall(SYS_close_range, from, ~0U, 0);
}

/* Block until `ocirun start` opens the fifo for reading, then exec.  Everything
 * but stdio, the preserved fds and the (close-on-exec) sync socket is closed
 * first, the working directory is entered only now and checked to be inside
 * the container (G1, G2).  The fifo's write end stays open (close-on-exec)
 * until the execve: `start` reads "0", then EOF, and tells an init that died
 * before its execve (PF_FORKNOEXEC still set) from one that ran the program. */
/* G2: is the working directory inside the container's root?  getcwd says
 * so (a directory outside the root comes back "(unreachable)…", or ENOENT);
 * when the container's own seccomp profile refuses getcwd (it may: the
 * runtime-tools suite's does), walk ".." from "." instead, comparing each
 * directory with "/": only a directory under the root reaches it.  Anything
 * else that fails fails closed. */
int cwd_in_root(void) {
  char cwd[4096];
  if (getcwd(cwd, sizeof cwd)) return cwd[0] == '/';
  if (errno == ENOENT || errno == ERANGE) return 0;
  struct stat root, st, prev;
  if (stat("/", &root) < 0) return 0;
  int fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  memset(&prev, 0, sizeof prev);
  for (int depth = 0; fd >= 0 && depth < 4096; depth++) {
    if (fstat(fd, &st) < 0) break;
    if (st.st_dev == root.st_dev && st.st_ino == root.st_ino) {
      close(fd);
      return 1;
    }
    if (depth && st.st_dev == prev.st_dev && st.st_ino == prev.st_ino) break; /* a root that is not ours */
    prev = st;
    int up = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
    close(fd);
    fd = up;
  }
  if (fd >= 0) close(fd);
  return 0;
}

void wait_fifo_and_exec(struct plan *p, int procfd_self_fd, int fifofd, const char *path) {
  if (p->nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) fail(S_NNP, errno, 0, NULL);
  /* a notify listener must reach its agent during create */
  if (p->seccomp_flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) load_seccomp(p);
  if (send_msg(M_READY, 0, -1) < 0) die(1);
  int w = -1;
  if (fifofd >= 0) {
    char name[16];
    itoa_signed(fifofd, name);
    do w = openat(procfd_self_fd, name, O_WRONLY | O_CLOEXEC);
    while (w < 0 && errno == EINTR);
    if (w < 0) fail(S_FIFO, errno, 0, "exec.fifo");
    /* startContainer hooks run now; `start` reads "0" only if they passed */
    fifo_write_fd = w;
    /* as runc 1.1: startContainer hooks run under the container's filter
     * (without hooks it is loaded as late as possible, below) */
    for (unsigned int i = 0; i < p->nhooks; i++)
      if (p->hooks[i].h->phase == HOOK_START_CONTAINER) {
        load_seccomp(p);
        break;
      }
    run_hooks(p, HOOK_START_CONTAINER);
    fifo_write_fd = -1;
    if (write(w, "0", 1) != 1) fail(S_FIFO, errno, 0, "exec.fifo");
    close(fifofd);
  } else {
    run_hooks(p, HOOK_START_CONTAINER);
  }
  close(procfd_self_fd);
  /* G1: nothing but stdio, preserved fds, the close-on-exec sync socket and
   * the fifo's close-on-exec write end */
  unsigned int first = 3 + p->npreserve;
  close_unpreserved(p, w);
  for (unsigned int fd = 3; fd < first; fd++) {
    int fl = fcntl((int)fd, F_GETFD);
    if (fl >= 0) fcntl((int)fd, F_SETFD, fl & ~FD_CLOEXEC);
  }
  /* G2: the working directory was entered before the credentials changed
   * (as runc: root may reach a cwd the user cannot); verify it again now */
  if (!cwd_in_root()) fail(S_CWD, EPERM, 0, "working directory is outside the container");
  set_affinity(p->cpu_final, p->cpu_final_len);
  /* with no_new_privs the filter needs no privilege: load it last */
  load_seccomp(p);
  execve(path, p->argv, p->envp);
  fail(S_EXEC, errno, 0, path);
}
