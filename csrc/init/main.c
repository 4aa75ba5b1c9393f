/* ocirun-init entry point.
 *
 * argv[1] = base fd: base = plan (memfd), base+1 = sync socket, base+2 = the
 * exec fifo (O_PATH) or -1 when absent, base+3 = a cgroup v2 directory,
 * base+4 = the report page (a memfd: the last error, written without a
 * syscall); argv[2..] say which of base+2..4 are there ("fifo", "cgroup",
 * "report").  The process runs in two stages:
 *
 *   bootstrap (still a child of the runtime, in the host pid namespace):
 *     non-dumpable -> read plan -> oom_score_adj -> setns(paths) ->
 *     unshare(user) -> [SETUP_REQ: parent writes id maps, places us in the
 *     cgroup] -> unshare(the rest) -> timens offsets ->
 *     clone(CLONE_PARENT) the container init -> report its pid -> exit
 *   init (pid 1 of the new pid namespace, a child of the runtime):
 *     setsid -> rootfs + mounts + /dev + console + masks -> sysctl, hostname
 *     -> [HOOK_REQ] -> pivot_root -> rlimits, user, caps -> exec lookup ->
 *     READY -> block on the exec fifo -> close fds -> chdir -> execve
 *
 * Failures are sent to the parent as (step, errno, index, detail); the parent
 * formats the message.  The messages and records are documented in proto.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <linux/seccomp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "init.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#define KEYCTL_JOIN_SESSION_KEYRING 1

static struct plan plan;

static int parse_fd(const char *s) {
  int v = 0;
  if (!s || !*s) return -1;
  for (; *s; s++) {
    if (*s < '0' || *s > '9' || v > 100000) return -1;
    v = v * 10 + (*s - '0');
  }
  return v;
}

static unsigned char *read_plan(int fd, size_t *len) {
  struct stat st;
  if (fstat(fd, &st) < 0) fail(S_PLAN, errno, 0, "fstat");
  if (st.st_size < 16 || (unsigned long long)st.st_size > OCIRUN_PLAN_MAX) fail(S_PLAN, EINVAL, 0, "plan size");
  unsigned char *buf = malloc((size_t)st.st_size);
  if (!buf) fail(S_PLAN, ENOMEM, 0, "plan");
  size_t n = 0;
  while (n < (size_t)st.st_size) {
    ssize_t r = pread(fd, buf + n, (size_t)st.st_size - n, (off_t)n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) fail(S_PLAN, r < 0 ? errno : EIO, 0, "read");
    n += (size_t)r;
  }
  *len = n;
  return buf;
}



/* linux.netDevices: the parent moves the devices into this network namespace
 * and configures them through a route socket opened here, so that the runtime
 * itself never enters the namespace.  It is sent before anything else the
 * parent waits for, so the devices are in place before any hook runs. */
static void send_route_socket(void) {
  int s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) fail(S_NETDEV, errno, 0, "socket");
  if (send_msg(M_NETLINK, 0, s) < 0) fail(S_NETDEV, errno, 0, "sending the route socket");
  close(s);
}

static void loopback_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) fail(S_LOOPBACK, errno, 0, "socket");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  str_copy(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) fail(S_LOOPBACK, errno, 0, "lo");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) fail(S_LOOPBACK, errno, 0, "lo");
  close(s);
}

/* chdir into process.cwd and check that the result is inside the
 * container's root (G2: a cwd such as /proc/self/fd/N could otherwise name a
 * directory of the runtime's).  Returns 0 when root was refused and the
 * caller should retry as the container user. */
static int enter_cwd(struct plan *p, int as_root) {
  if (chdir(p->cwd) < 0) {
    if (as_root && (errno == EACCES || errno == EPERM)) return 0;
    fail(S_CWD, errno, 0, p->cwd);
  }
  if (!cwd_in_root()) fail(S_CWD, EPERM, 0, "working directory is outside the container");
  return 1;
}

/* Enter process.cwd as runc does (as root first, so that a directory root
 * may enter and the user may not still works; again as the user only when
 * root is refused), take the container's credentials, look args[0] up.  Both
 * paths are the config's, so no fd of the runtime may be open meanwhile (in
 * create the host procfs handle and the exec fifo are, and
 * `cwd: /proc/self/fd/N` would walk from them, G1): in create a child does
 * it, forked before anything that could refuse a fork (rlimits, a seccomp
 * filter), which closes every fd but stdio, the preserved fds and the sync
 * socket, and hands the path back in a shared page (its failures go to the
 * parent directly).  In exec mode the process itself does it, for real. */
static const char *probe_exec(struct plan *p, int procfd, int in_child) {
  static char local[4096];
  char *exe = local;
  if (in_child) {
    exe = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (exe == MAP_FAILED) fail(S_SYNC, errno, 0, "probing process.cwd and args[0]: mmap");
    exe[0] = 0;
    pid_t c = fork();
    if (c < 0) fail(S_SYNC, errno, 0, "probing process.cwd and args[0]: fork");
    if (c > 0) {
      int status;
      while (waitpid(c, &status, 0) < 0)
        if (errno != EINTR) fail(S_SYNC, errno, 0, "probing process.cwd and args[0]: waitpid");
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !exe[0]) die(1); /* the child reported it */
      return exe;
    }
  }
  read_cap_last(procfd); /* all do_user needs of procfs */
  close_unpreserved(p, -1);
  int in_cwd = enter_cwd(p, 1);
  if (!in_child) chown_stdio(p);
  do_user(p, -1);
  if (!in_cwd) enter_cwd(p, 0);
  const char *path = lookup_exec(p, exe, 4096);
  if (path != exe) str_copy(exe, 4096, path);
  if (in_child) die(0);
  return exe;
}

/* The process half, shared by the init and exec: limits, scheduling,
 * seccomp and credentials in the order they need privileges, the cwd
 * entered and args[0] looked up (checked first, with no runtime fd open, by
 * probe_exec), then the exec (fifo-gated for the init). */
static void finish_process(struct plan *p, int procfd, int selffd, int fifofd) {
  int in_child = selffd >= 0 || fifofd >= 0;
  const char *path = in_child ? probe_exec(p, procfd, 1) : NULL;
  do_rlimits(p);
  apply_sched(p);
  apply_mempolicy(p);
  /* without no_new_privs loading a filter needs CAP_SYS_ADMIN: do it while
   * we still have it; with it, as late as possible (right before execve) */
  if (!p->nnp) load_seccomp(p);
  apply_lsm(p, procfd);
  set_home(p);
  if (!path) {
    path = probe_exec(p, procfd, 0); /* exec: closes procfd */
  } else {
    /* the probe checked these paths with no runtime fd open; the cwd is
     * verified once more after the fds are closed (wait_fifo_and_exec) */
    int in_cwd = enter_cwd(p, 1);
    chown_stdio(p);
    do_user(p, procfd);
    close(procfd);
    if (!in_cwd) enter_cwd(p, 0);
  }
  wait_fifo_and_exec(p, selffd, fifofd, path);
}

static void container_init(struct plan *p, int procfd, int fifofd) {
  if (setsid() < 0) fail(S_CONSOLE, errno, 0, "setsid");
  /* the runtime's own verified null device, for masks (G9) */
  int nullfd = open("/dev/null", O_PATH | O_CLOEXEC);
  struct stat st;
  if (nullfd < 0 || fstat(nullfd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
    fail(S_MASK, EPERM, 0, "/dev/null of the runtime is not the null device");
  if (p->loopback) loopback_up();
  if (p->netlink) send_route_socket();
  int rootfd;
  rootfs_prepare(p, &rootfd);
  do_mounts(p, rootfd);
  do_devices(p, rootfd);
  do_console(p, rootfd);
  do_deferred_ro();
  do_masks(p, rootfd, nullfd);
  close(nullfd);
  do_sysctls(p, procfd);
  if (p->hostname && sethostname(p->hostname, strlen(p->hostname)) < 0) fail(S_HOSTNAME, errno, 0, p->hostname);
  if (p->domainname && setdomainname(p->domainname, strlen(p->domainname)) < 0)
    fail(S_DOMAINNAME, errno, 0, p->domainname);
  /* the working directory is created in-root before the switch (as runc) */
  int cwdfd = in_root_mkdir_all(rootfd, p->cwd, 0755);
  if (cwdfd < 0) fail(S_CWD, errno, 0, p->cwd);
  close(cwdfd);
  if (p->hook_sync) {
    /* prestart/createRuntime run in the parent; it answers with the state
     * our own createContainer/startContainer hooks get on stdin */
    static char hookbuf[OCIRUN_MSG_HDR + OCIRUN_HOOK_STATE_MAX];
    if (send_msg(M_HOOK_REQ, 0, -1) < 0) die(1);
    recv_msg_detail(M_HOOK_ACK, hookbuf, sizeof hookbuf);
    p->hook_state = hookbuf + OCIRUN_MSG_HDR;
    run_hooks(p, HOOK_CREATE_CONTAINER);
    /* then, after a NUL, the state startContainer hooks get ("created") */
    char *next = p->hook_state + strlen(p->hook_state) + 1;
    if (next < hookbuf + sizeof hookbuf && *next) p->hook_state = next;
  }
  /* a handle on our own fd table for the exec fifo, taken from the host procfs */
  int selffd = openat(procfd, "self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (selffd < 0) fail(S_FIFO, errno, 0, "/proc/self/fd");
  do_pivot(p, rootfd);
  close(rootfd);
  do_root_finish(p);
  if (p->has_personality && personality(p->personality) < 0) fail(S_PERSONALITY, errno, 0, NULL);
  finish_process(p, procfd, selffd, fifofd);
}

/* After entering a user namespace: become its root (uid/gid 0 there); the
 * credential change may reset the dumpable flag, so clear it again (G3). */
static void become_root_in_userns(void) {
  if (syscall(SYS_setresgid, 0, 0, 0) < 0) fail(S_USERNS, errno, 0, "setresgid(0) in the user namespace");
  if (syscall(SYS_setresuid, 0, 0, 0) < 0) fail(S_USERNS, errno, 0, "setresuid(0) in the user namespace");
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* clone(CLONE_PARENT) the next process, with a cgroup v2 fd directly into
 * that cgroup (clone3 CLONE_INTO_CGROUP: no migration, which costs an RCU
 * grace period in the kernel).  The child waits until the bootstrap has
 * reported its pid, so the parent always learns the pid before any message
 * of the new process (both write to the same socket). */
static long clone_reported(int cgfd) {
  int gate[2];
  if (pipe2(gate, O_CLOEXEC) < 0) fail(S_CLONE, errno, 0, "pipe");
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  long pid;
  if (cgfd >= 0) {
    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = CLONE_PARENT | CLONE_INTO_CGROUP;
    /* no exit_signal: with CLONE_PARENT the child inherits ours (SIGCHLD) */
    ca.cgroup = (unsigned long long)cgfd;
    pid = syscall(SYS_clone3, &ca, sizeof ca);
  } else {
    pid = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, NULL, NULL, 0);
  }
  if (pid < 0) fail(S_CLONE, errno, 0, cgfd >= 0 ? "clone3 into the cgroup" : NULL);
  if (pid == 0) {
    if (cgfd >= 0) close(cgfd);
    for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
    sigprocmask(SIG_SETMASK, &old, NULL);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    close(gate[1]);
    char c;
    ssize_t r;
    do r = read(gate[0], &c, 1);
    while (r < 0 && errno == EINTR);
    if (r != 1) die(1); /* the bootstrap died before reporting us */
    close(gate[0]);
    return 0;
  }
  close(gate[0]);
  if (send_msg(M_PID, (unsigned int)pid, -1) < 0) {
    kill((pid_t)pid, SIGKILL);
    die(1);
  }
  if (write(gate[1], "1", 1) != 1) {
    kill((pid_t)pid, SIGKILL);
    die(1);
  }
  die(0);
}

/* The root directory of the process behind pidfd, from the host procfs. */
static int open_init_root(int procfd, int pidfd) {
  char name[64] = "self/fdinfo/";
  itoa_signed(pidfd, name + strlen(name));
  int fd = openat(procfd, name, O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(S_SETNS, errno, 0, "fdinfo of the init's pidfd");
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) fail(S_SETNS, EIO, 0, "fdinfo of the init's pidfd");
  buf[n] = 0;
  char *s = strstr(buf, "\nPid:");
  if (!s) fail(S_SETNS, EIO, 0, "fdinfo of the init's pidfd");
  s += 5;
  while (*s == ' ' || *s == '\t') s++;
  int pid = 0;
  while (*s >= '0' && *s <= '9' && pid < 100000000) pid = pid * 10 + (*s++ - '0');
  if (pid <= 0) fail(S_SETNS, ESRCH, 0, "the container's init");
  char path[64];
  itoa_signed(pid, path);
  str_copy(path + strlen(path), sizeof path - strlen(path), "/root");
  int root = openat(procfd, path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) fail(S_SETNS, errno, 0, "the container's root");
  return root;
}

/* exec: the new process, already in every namespace and the cgroup of the
 * container, a child of `ocirun exec` (CLONE_PARENT). */
static void exec_child(struct plan *p, int procfd, int initroot) {
  if (initroot >= 0) {
    /* no mount namespace to join: the container's root is the init's chroot */
    if (fchdir(initroot) < 0 || chroot(".") < 0 || chdir("/") < 0) fail(S_ROOTFS, errno, 0, "chroot into the container's root");
    close(initroot);
  }
  int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) fail(S_ROOTFS, errno, 0, "/");
  if (p->terminal) {
    if (setsid() < 0) fail(S_CONSOLE, errno, 0, "setsid");
    alloc_console(p, rootfd, 0);
  }
  close(rootfd);
  finish_process(p, procfd, -1, -1);
}

int main(int argc, char **argv) {
  /* G3: nothing in a container namespace can ptrace or /proc-open us */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  int base = argc > 1 ? parse_fd(argv[1]) : -1;
  if (base < 3) return 2;
  sync_fd = OCIRUN_FD_SYNC(base);
  int fifofd = -1, cgfd = -1, reportfd = -1;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "fifo")) fifofd = OCIRUN_FD_FIFO(base);
    else if (!strcmp(argv[i], "cgroup")) cgfd = OCIRUN_FD_CGROUP(base);
    else if (!strcmp(argv[i], "report")) reportfd = OCIRUN_FD_REPORT(base);
    else return 2;
  }
  if (reportfd >= 0) {
    void *page = mmap(NULL, OCIRUN_REPORT_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, reportfd, 0);
    if (page != MAP_FAILED) report_page = page; /* else: reports go by the socket alone */
  }
  size_t len;
  unsigned char *buf = read_plan(OCIRUN_FD_PLAN(base), &len);
  close(OCIRUN_FD_PLAN(base));
  plan_parse(&plan, buf, len);
  struct plan *p = &plan;
  if ((unsigned int)base != 3 + p->npreserve) fail(S_PLAN, EINVAL, 0, "fd layout");
  /* G1: any fd the caller leaked beyond ours is closed now */
  if (fifofd < 0) close(OCIRUN_FD_FIFO(base));
  if (cgfd < 0) close(OCIRUN_FD_CGROUP(base));
  close(OCIRUN_FD_REPORT(base)); /* mapped (or absent) */
  syscall(SYS_close_range, (unsigned int)(base + 5), ~0U, 0);
  fcntl(sync_fd, F_SETFD, FD_CLOEXEC);
  if (fifofd >= 0) fcntl(fifofd, F_SETFD, FD_CLOEXEC);
  if (cgfd >= 0) fcntl(cgfd, F_SETFD, FD_CLOEXEC);
  /* the host procfs, checked, for writes to our own /proc entries (G8) */
  int procfd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
  struct statfs sf;
  if (procfd < 0 || fstatfs(procfd, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC) fail(S_PLAN, EPERM, 0, "/proc is not procfs");
  if (p->has_oom) {
    char v[16];
    itoa_signed(p->oom, v);
    write_proc_self(procfd, "self/oom_score_adj", v, S_OOM);
  }
  if (p->exec_mode) {
    int pidfd = fifofd; /* the slot carries a pidfd of the container's init */
    set_affinity(p->cpu_initial, p->cpu_initial_len);
    if (p->setup_sync) {
      if (send_msg(M_SETUP_REQ, (unsigned int)getpid(), -1) < 0) die(1);
      recv_msg(M_SETUP_ACK);
    }
    if (pidfd < 0) fail(S_SETNS, EBADF, 0, "pidfd");
    /* without a mount namespace to join, the process still gets the init's
     * root (a container without one is chrooted), never ours */
    int initroot = -1;
    if (!(p->exec_ns & CLONE_NEWNS)) initroot = open_init_root(procfd, pidfd);
    if (p->exec_ns && setns(pidfd, (int)p->exec_ns) < 0) fail(S_SETNS, errno, 0, "the container's namespaces");
    close(pidfd);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (p->exec_ns & CLONE_NEWUSER) become_root_in_userns();
    clone_reported(cgfd);
    exec_child(p, procfd, initroot);
    die(1);
  }
  if (!p->no_new_keyring && syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0 && errno != ENOSYS &&
      errno != EPERM)
    fail(S_KEYRING, errno, 0, NULL);
  int userns = (p->ns_new & CLONE_NEWUSER) != 0;
  int joined_user = 0;
  for (unsigned int i = 0; i < p->njoins; i++)
    if (p->joins[i].nstype == CLONE_NEWUSER) joined_user = 1;
  /* bind sources are opened with our own credentials, not the user
   * namespace's (sources.c): the opener is forked before we enter one */
  struct source_opener so = {0, -1};
  if ((userns || joined_user) && (p->ns_new & CLONE_NEWNS)) sources_fork(p, procfd, &so);
  /* join existing namespaces: open every path first, user namespace first */
  for (unsigned int i = 0; i < p->njoins; i++) {
    p->joins[i].fd = open(p->joins[i].path, O_RDONLY | O_CLOEXEC);
    if (p->joins[i].fd < 0) fail(S_SETNS, errno, p->joins[i].index, p->joins[i].path);
  }
  for (int pass = 0; pass < 2; pass++)
    for (unsigned int i = 0; i < p->njoins; i++) {
      int is_user = p->joins[i].nstype == CLONE_NEWUSER;
      if (is_user != (pass == 0)) continue;
      if (setns(p->joins[i].fd, (int)p->joins[i].nstype) < 0) fail(S_SETNS, errno, p->joins[i].index, p->joins[i].path);
      close(p->joins[i].fd);
    }
  /* an unprivileged (rootless) parent can only write our uid_map/gid_map
   * while /proc/<us> belongs to its user: stay dumpable for the SETUP
   * exchange alone, alone in a fresh user namespace (as runc's nsexec).
   * Whether the caller is unprivileged is decided on its uid before the
   * unshare: after it, unmapped, every caller looks like the overflow uid. */
  int unpriv_maps = userns && p->setup_sync && geteuid() != 0;
  if (userns && unshare(CLONE_NEWUSER) < 0) fail(S_USERNS, errno, 0, NULL);
  prctl(PR_SET_DUMPABLE, unpriv_maps ? 1 : 0, 0, 0, 0);
  if (p->setup_sync) {
    if (send_msg(M_SETUP_REQ, (unsigned int)getpid(), -1) < 0) die(1);
    /* idmapped trees for bind mounts may come first */
    for (;;) {
      unsigned int type, value;
      int fd;
      if (recv_msg_fd(&type, &value, &fd) < 0) die(1);
      if (type == M_SETUP_ACK) break;
      if (type != M_MOUNT_FD || fd < 0 || value >= p->nmounts) die(1);
      p->mounts[value].idmap_fd = fd;
    }
    if (unpriv_maps) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  }
  if (userns || joined_user) become_root_in_userns();
  unsigned long rest = (unsigned long)(p->ns_new & ~(unsigned long long)CLONE_NEWUSER);
  /* born into its cgroup, the init makes its own cgroup namespace, so that
   * the namespace's root is the container's cgroup and not ours */
  int late_cgroupns = cgfd >= 0 && (rest & CLONE_NEWCGROUP);
  if (late_cgroupns) rest &= ~(unsigned long)CLONE_NEWCGROUP;
  if (rest && unshare((int)rest) < 0) fail(S_UNSHARE, errno, 0, NULL);
  sources_receive(p, &so);
  if (p->timens) write_proc_self(procfd, "self/timens_offsets", p->timens, S_TIMENS);
  clone_reported(cgfd);
  if (late_cgroupns && unshare(CLONE_NEWCGROUP) < 0) fail(S_UNSHARE, errno, 0, "cgroup namespace");
  container_init(p, procfd, fifofd);
  die(1);
}
