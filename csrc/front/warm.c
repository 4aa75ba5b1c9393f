/* The warm path's front-end side (ocirun/warm.py has the server's).
 *
 * For create, run and exec, when the warm path is on, the front-end asks the
 * warm server of its --root and build (<root>/ocirun-warm@<build>) to run the
 * command, instead of starting an interpreter.  It sends argv, environment,
 * working directory and every open fd; a worker checks who is asking
 * (SO_PEERCRED, its namespaces and root directory) and answers ACCEPT or
 * REFUSE.  Anything but ACCEPT (no server, refused, no answer within 2 s)
 * returns to main.c's cold path before any side effect; after ACCEPT the
 * front-end says GO and the command is the worker's: the front-end then
 * only does, as itself, what must be done by the `ocirun` process the
 * caller started (ocirun/procs.py): spawn the init (so it is this process's
 * child, with its rlimits, cgroup and oom_score_adj), wait for children,
 * signal them, set the subreaper flag, forward the caller's signals, and
 * exit with the command's status.  If the worker dies mid-request, the
 * request fails with one line (as a killed cold `create` would: `delete
 * --force` cleans up what it left).
 *
 * When the warm path is on and no server answers, a server is started for
 * the next command (double fork, new session, no fds, a minimal
 * environment), and this one runs cold. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "front.h"

#ifndef OCIRUN_BUILD
#define OCIRUN_BUILD ""
#endif

/* ocirun/procs.py: WIRE and the W_* numbers */
enum {
  W_REQUEST = 1, W_ACCEPT, W_REFUSE, W_GO,
  W_SPAWN = 10, W_SPAWNED, W_WAIT, W_STATUS, W_KILL, W_RESULT, W_SUBREAPER, W_FORWARD, W_DONE
};
struct wire {
  uint32_t type;
  int32_t a, b;
};
#define MAX_FDS 250
#define REQ_MAX (1 << 20)

extern char **environ;

static int env_on(const char *v) {
  return !strcasecmp(v, "1") || !strcasecmp(v, "on") || !strcasecmp(v, "true") || !strcasecmp(v, "yes");
}

/* OCIRUN_WARM, else /etc/ocirun/ocirun.conf's `warm =`; off by default */
static int warm_enabled(void) {
  if (!*OCIRUN_BUILD) return 0;
  const char *v = getenv("OCIRUN_WARM");
  if (v) return env_on(v);
  FILE *f = fopen("/etc/ocirun/ocirun.conf", "re");
  if (!f) return 0;
  char line[256];
  int on = 0;
  while (fgets(line, sizeof(line), f)) {
    char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    if (strncmp(p, "warm", 4)) continue;
    p += 4;
    while (*p == ' ' || *p == '\t') p++;
    if (*p++ != '=') continue;
    while (*p == ' ' || *p == '\t') p++;
    p[strcspn(p, " \t\r\n#")] = 0;
    on = env_on(p);
  }
  fclose(f);
  return on;
}

/* os.path.abspath of a root main.c's plain_root accepted (no . or ..) */
static int abs_root(const char *root, char *out, size_t n) {
  char tmp[PATH_MAX + 4200];
  if (root[0] == '/') snprintf(tmp, sizeof(tmp), "%s", root);
  else {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof(cwd))) return -1;
    snprintf(tmp, sizeof(tmp), "%s/%s", cwd, root);
  }
  size_t j = 0;
  for (size_t i = 0; tmp[i]; i++) {
    if (tmp[i] == '/' && j > 0 && out[j - 1] == '/') continue;
    if (j + 1 >= n) return -1;
    out[j++] = tmp[i];
  }
  if (j > 1 && out[j - 1] == '/') j--;
  out[j] = 0;
  return 0;
}

/* ocirun/warm.py socket_path: <root>/ocirun-warm@<build[:16]>; 0 if too long */
static socklen_t sock_name(const char *root, struct sockaddr_un *a) {
  memset(a, 0, sizeof(*a));
  a->sun_family = AF_UNIX;
  int n = snprintf(a->sun_path, sizeof(a->sun_path), "%s/ocirun-warm@%.16s", root, OCIRUN_BUILD);
  if (n < 0 || (size_t)n >= sizeof(a->sun_path)) return 0;
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
}

/* the server must be in our mount, pid and user namespaces and see our
 * root: with its pidfd taken at connect, so its pid cannot have been reused
 * while /proc/<pid> was read */
static int same_ns(pid_t pid) {
  static const char *ns[] = {"mnt", "pid", "user"};
  char a[64], b[64];
  struct stat x, y;
  for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
    snprintf(a, sizeof(a), "/proc/self/ns/%s", ns[i]);
    snprintf(b, sizeof(b), "/proc/%d/ns/%s", (int)pid, ns[i]);
    if (stat(a, &x) < 0 || stat(b, &y) < 0 || x.st_dev != y.st_dev || x.st_ino != y.st_ino) return 0;
  }
  snprintf(b, sizeof(b), "/proc/%d/root/", (int)pid);
  if (stat("/", &x) < 0 || stat(b, &y) < 0 || x.st_dev != y.st_dev || x.st_ino != y.st_ino) return 0;
  return 1;
}

/* <prefix>/libexec/ocirun/ocirun-py next to this executable (main.c's rule) */
static void py_path(char *path, size_t n) {
  char self[PATH_MAX];
  ssize_t k = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (k <= 0) k = snprintf(self, sizeof(self), "/usr/local/bin/ocirun");
  self[k] = 0;
  for (int i = 0; i < 2; i++) {
    char *s = strrchr(self, '/');
    if (s) *s = 0;
  }
  snprintf(path, n, "%s/libexec/ocirun/ocirun-py", self);
}

/* every disposition back to its default (what the caller ignored too) */
static void reset_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_DFL;
  for (int sig = 1; sig < 65; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &sa, NULL);
}

/* Start a server for the next command: double fork, so that neither this
 * process nor the caller ever has it as a child to reap. */
static void autostart(const char *root) {
  char py[PATH_MAX + 64];
  py_path(py, sizeof(py));
  pid_t p = fork();
  if (p < 0) return;
  if (p > 0) {
    while (waitpid(p, NULL, 0) < 0 && errno == EINTR) {
    }
    return;
  }
  if (fork() != 0) _exit(0);
  setsid();
  int fd = open("/dev/null", O_RDWR);
  if (fd >= 0) {
    dup2(fd, 0), dup2(fd, 1), dup2(fd, 2);
  }
  syscall(SYS_close_range, 3U, ~0U, 0);
  if (chdir("/")) _exit(0);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  reset_signals();
  umask(022);
  char *argv[] = {"ocirun-py", "--root", (char *)root, "warm", "serve", NULL};
  char *envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL, NULL, NULL, NULL};
  int k = 1;
  /* the server's own settings, when the caller set them */
  static char b1[64], b2[64];
  const char *v;
  if ((v = getenv("OCIRUN_WARM_IDLE")) && strlen(v) < 40) snprintf(b1, sizeof(b1), "OCIRUN_WARM_IDLE=%s", v), envp[k++] = b1;
  if ((v = getenv("OCIRUN_WARM_WORKERS")) && strlen(v) < 40)
    snprintf(b2, sizeof(b2), "OCIRUN_WARM_WORKERS=%s", v), envp[k++] = b2;
  execve(py, argv, envp);
  _exit(0);
}

/* ---------------------------------------------------------------- serving */

static int conn = -1, sigfd = -1, worker_pidfd = -1;
static struct ctx *cur;
static sigset_t base_mask, fwd_mask;
static int fwd_on;
static pid_t fwd_target, wait_for;
static pid_t spawned[64]; /* not waited for yet: killed if the worker dies */
static int nspawned;
static unsigned char caller_fd[1024]; /* the fds the caller gave this process */
static void forget(pid_t pid);
static void __attribute__((noreturn)) worker_gone(void);
static int queued[64], nqueued;

static void reply(uint32_t type, int32_t a, int32_t b) {
  struct wire w = {type, a, b};
  if (send(conn, &w, sizeof(w), MSG_NOSIGNAL) < 0) worker_gone();
}

/* Children are reaped only when the worker waits for them, as the cold
 * path's interpreter does: until then a dead one stays a zombie, so its pid
 * is never reused under a kill and /proc/<pid> still says whether it ever
 * made its execve (ocirun/state.py never_executed). */
static void on_child(void) {
  int st;
  if (wait_for && waitpid(wait_for, &st, WNOHANG) == wait_for) {
    forget(wait_for);
    if (fwd_target == wait_for) fwd_target = 0;
    reply(W_STATUS, wait_for, st);
    wait_for = 0;
  }
}

static void send_signal(int sig) {
  if (fwd_target) kill(fwd_target, sig);
}

static int pidfd_signal(int fd, int sig) { return (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0); }

/* foreground.py's SignalForwarder: every catchable signal but CHLD, WINCH
 * (the terminal relay's, in the worker), URG, KILL and STOP */
static void forwarding(int on) {
  fwd_on = on;
  sigset_t m = base_mask;
  if (on)
    for (int s = 1; s < 32; s++)
      if (sigismember(&fwd_mask, s)) sigaddset(&m, s);
  sigprocmask(SIG_SETMASK, &m, NULL);
  signalfd(sigfd, &m, SFD_CLOEXEC);
  if (!on) fwd_target = 0, nqueued = 0;
}

static void on_signal(void) {
  struct signalfd_siginfo si;
  while (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
    int s = (int)si.ssi_signo;
    if (s == SIGCHLD) on_child();
    else if (s == SIGWINCH || (s == SIGINT && !fwd_on)) pidfd_signal(worker_pidfd, s);
    else if (fwd_on && fwd_target) send_signal(s);
    else if (fwd_on && nqueued < 64) queued[nqueued++] = s;
  }
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* close every fd >= from except those in keep */
static void close_except(int from, int *keep, int nk) {
  qsort(keep, (size_t)nk, sizeof(int), cmp_int);
  unsigned cur = (unsigned)from;
  for (int i = 0; i < nk; i++) {
    if (keep[i] < from || (unsigned)keep[i] < cur) continue;
    if ((unsigned)keep[i] > cur) syscall(SYS_close_range, cur, (unsigned)keep[i] - 1, 0);
    cur = (unsigned)keep[i] + 1;
  }
  syscall(SYS_close_range, cur, ~0U, 0);
}

static void spawn(char *buf, size_t len, int *fds, int nfds) {
  int32_t head[5];
  if (len < sizeof(head)) return reply(W_SPAWNED, -EINVAL, 0);
  memcpy(head, buf, sizeof(head));
  int exe = head[0], keep_below = head[1], nmoves = head[2], nargv = head[3], nenv = head[4];
  size_t off = sizeof(head) + (size_t)nmoves * 8;
  if (nmoves < 0 || nmoves > 16 || nargv < 1 || nargv > 4096 || nenv < 0 || nenv > 65536 || off > len ||
      keep_below < 0 || keep_below > 1024 || exe >= nfds)
    return reply(W_SPAWNED, -EINVAL, 0);
  int32_t moves[32];
  memcpy(moves, buf + sizeof(head), (size_t)nmoves * 8);
  for (int i = 0; i < nmoves; i++)
    if (moves[2 * i] < 0 || moves[2 * i] >= nfds || moves[2 * i + 1] < 0 || moves[2 * i + 1] > 1024)
      return reply(W_SPAWNED, -EINVAL, 0);
  /* strings: path, cwd, argv..., env... */
  int nstr = 2 + nargv + nenv;
  char **str = calloc((size_t)nstr + 2, sizeof(char *));
  if (!str) return reply(W_SPAWNED, -ENOMEM, 0);
  char *p = buf + off, *end = buf + len;
  for (int i = 0; i < nstr; i++) {
    char *z = memchr(p, 0, (size_t)(end - p));
    if (!z) {
      free(str);
      return reply(W_SPAWNED, -EINVAL, 0);
    }
    str[i] = p;
    p = z + 1;
  }
  char **argv = calloc((size_t)nargv + 1, sizeof(char *)), **envp = calloc((size_t)nenv + 1, sizeof(char *));
  if (!argv || !envp) {
    free(str), free(argv), free(envp);
    return reply(W_SPAWNED, -ENOMEM, 0);
  }
  memcpy(argv, str + 2, (size_t)nargv * sizeof(char *));
  memcpy(envp, str + 2 + nargv, (size_t)nenv * sizeof(char *));
  int ep[2];
  if (pipe2(ep, O_CLOEXEC) < 0) {
    free(str), free(argv), free(envp);
    return reply(W_SPAWNED, -errno, 0);
  }
  pid_t pid = fork();
  if (pid == 0) {
    int err = 0;
    /* every source above every target, then onto the targets */
    int hi = keep_below;
    for (int i = 0; i < nmoves; i++)
      if (moves[2 * i + 1] >= hi) hi = moves[2 * i + 1] + 1;
    int src[17], xfd = -1;
    for (int i = 0; i < nmoves && !err; i++)
      if ((src[i] = fcntl(fds[moves[2 * i]], F_DUPFD_CLOEXEC, hi)) < 0) err = errno;
    if (!err && exe >= 0 && (xfd = fcntl(fds[exe], F_DUPFD_CLOEXEC, hi)) < 0) err = errno;
    int epw = fcntl(ep[1], F_DUPFD_CLOEXEC, hi);
    if (epw < 0) {
      err = errno; /* ep[1] itself is still intact here */
      (void)!write(ep[1], &err, sizeof(err));
      _exit(127);
    }
    for (int i = 0; i < nmoves && !err; i++)
      if (dup2(src[i], moves[2 * i + 1]) < 0) err = errno;
    for (int fd = 0; fd < keep_below && !err; fd++) {
      int fl = fcntl(fd, F_GETFD);
      if (fl >= 0) fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
    }
    if (!err) {
      /* nothing else crosses the execve (the caller's other fds, the
       * received ones, the connection): close all but the targets, the
       * image and the error pipe */
      int keep[20], nk = 0;
      for (int i = 0; i < nmoves; i++) keep[nk++] = moves[2 * i + 1];
      if (xfd >= 0) keep[nk++] = xfd;
      keep[nk++] = epw;
      close_except(keep_below, keep, nk);
      /* below keep_below, only what the caller gave us crosses (this
       * process's own fds may sit there when the caller had gaps) */
      for (int fd = 0; fd < keep_below; fd++) {
        int target = 0;
        for (int i = 0; i < nmoves; i++) target |= moves[2 * i + 1] == fd;
        if (!target && (fd >= 1024 || !caller_fd[fd])) close(fd);
      }
      reset_signals();
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, NULL);
      if (*str[1] && chdir(str[1]) < 0) err = errno;
    }
    if (!err) {
      if (xfd >= 0) syscall(SYS_execveat, xfd, "", argv, envp, AT_EMPTY_PATH);
      else execve(str[0], argv, envp);
      err = errno;
    }
    (void)!write(epw, &err, sizeof(err));
    _exit(127);
  }
  int e = errno;
  close(ep[1]);
  free(str), free(argv), free(envp);
  if (pid < 0) {
    close(ep[0]);
    return reply(W_SPAWNED, -e, 0);
  }
  int err = 0;
  ssize_t n;
  while ((n = read(ep[0], &err, sizeof(err))) < 0 && errno == EINTR) {
  }
  close(ep[0]);
  if (n == (ssize_t)sizeof(err)) {
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    return reply(W_SPAWNED, -(err ? err : EIO), 0);
  }
  if (nspawned < 64) spawned[nspawned++] = pid;
  reply(W_SPAWNED, pid, 0);
}

static void forget(pid_t pid) {
  for (int i = 0; i < nspawned; i++)
    if (spawned[i] == pid) spawned[i] = spawned[--nspawned];
}

static void wait_child(pid_t pid, int nohang) {
  int st;
  pid_t r = waitpid(pid, &st, WNOHANG);
  if (r > 0 && fwd_target == pid) fwd_target = 0;
  if (r > 0) forget(pid);
  if (r > 0) return reply(W_STATUS, pid, st);
  if (r < 0) return reply(W_STATUS, -errno, 0);
  if (nohang) return reply(W_STATUS, 0, 0);
  wait_for = pid; /* answered by on_child when it exits */
}

/* The worker died mid-request: what it had this process start for it
 * (a hook, a bootstrap) goes too; a container init it made is left, as a
 * killed cold `create` leaves it, for `delete --force`. */
static void __attribute__((noreturn)) worker_gone(void) {
  for (int i = 0; i < nspawned; i++) kill(spawned[i], SIGKILL);
  const char *cmd = cur->argv[0];
  for (int i = 1; cur->argv[i]; i++)
    if (!strcmp(cur->argv[i], "create") || !strcmp(cur->argv[i], "run") || !strcmp(cur->argv[i], "exec")) {
      cmd = cur->argv[i];
      break;
    }
  char msg[256];
  snprintf(msg, sizeof(msg), "%s%s%sthe warm ocirun worker ended before finishing the request",
           strcmp(cmd, "exec") ? "ocirun " : "", strcmp(cmd, "exec") ? cmd : "exec failed",
           strcmp(cmd, "exec") ? " failed: " : ": ");
  log_error(cur, msg);
  exit(1);
}

static void __attribute__((noreturn)) serve(void) {
  sigemptyset(&base_mask);
  sigaddset(&base_mask, SIGCHLD);
  sigaddset(&base_mask, SIGWINCH);
  struct sigaction old;
  /* a caller that ignores SIGINT (a shell's background job) keeps ignoring
   * it until the forwarding starts, as the cold path's interpreter does */
  if (sigaction(SIGINT, NULL, &old) == 0 && old.sa_handler != SIG_IGN) sigaddset(&base_mask, SIGINT);
  sigfillset(&fwd_mask);
  int no[] = {SIGCHLD, SIGWINCH, SIGURG, SIGKILL, SIGSTOP};
  for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) sigdelset(&fwd_mask, no[i]);
  sigprocmask(SIG_BLOCK, &base_mask, NULL);
  sigfd = signalfd(-1, &base_mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd < 0) worker_gone();
  static char buf[1 << 20];
  for (;;) {
    struct pollfd pf[2] = {{conn, POLLIN, 0}, {sigfd, POLLIN, 0}};
    if (poll(pf, 2, -1) < 0) {
      if (errno == EINTR) continue;
      worker_gone();
    }
    if (pf[1].revents) on_signal();
    if (!pf[0].revents) continue;
    int fds[MAX_FDS];
    int nfds = 0;
    char cbuf[CMSG_SPACE(sizeof(int) * 32)];
    struct iovec iov = {buf, sizeof(buf)};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
    ssize_t n = recvmsg(conn, &m, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < (ssize_t)sizeof(struct wire)) worker_gone();
    if (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
      for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
          for (int k = 0; k < (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int)); k++) close(((int *)CMSG_DATA(c))[k]);
      struct wire t;
      memcpy(&t, buf, sizeof(t));
      if (t.type != W_SPAWN) worker_gone();
      reply(W_SPAWNED, -E2BIG, 0);
      continue;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        memcpy(fds + nfds, CMSG_DATA(c), (size_t)k * sizeof(int));
        nfds += k;
      }
    struct wire w;
    memcpy(&w, buf, sizeof(w));
    switch (w.type) {
    case W_SPAWN:
      spawn(buf + sizeof(w), (size_t)n - sizeof(w), fds, nfds);
      break;
    case W_WAIT:
      wait_child(w.a, w.b);
      break;
    case W_KILL:
      reply(W_RESULT, w.a <= 0 ? -EINVAL : kill(w.a, w.b) < 0 ? -errno : 0, 0);
      break;
    case W_SUBREAPER:
      reply(W_RESULT, prctl(PR_SET_CHILD_SUBREAPER, w.a ? 1 : 0, 0, 0, 0) < 0 ? -errno : 0, 0);
      break;
    case W_FORWARD:
      if (w.a == 1) forwarding(1);
      else if (w.a == 2) {
        fwd_target = w.b;
        for (int i = 0; i < nqueued; i++) send_signal(queued[i]);
        nqueued = 0;
      } else forwarding(0);
      break;
    case W_DONE:
      exit(w.a & 0xff);
    default:
      worker_gone();
    }
    for (int i = 0; i < nfds; i++) close(fds[i]);
  }
}

/* Returns when the command is to run cold; never returns once the warm
 * server has it. */
void warm_try(struct ctx *c) {
  if (!warm_enabled()) return;
  char root[PATH_MAX];
  if (abs_root(c->root, root, sizeof(root)) < 0) return;
  struct sockaddr_un a;
  socklen_t alen = sock_name(root, &a);
  if (!alen) return;
  /* non-blocking: a server that does not accept (stopped, or its backlog
   * full) sends us cold at once instead of blocking the caller */
  int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s < 0) return;
  if (connect(s, (struct sockaddr *)&a, alen) < 0) {
    int e = errno;
    close(s);
    if (e == ENOENT || e == ECONNREFUSED) autostart(root);
    return;
  }
  struct ucred cr;
  socklen_t crl = sizeof(cr);
  /* the server must be our own user's, in our namespaces */
  if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &crl) < 0 || cr.uid != geteuid()) goto cold;
  {
    int pfd = -1;
    socklen_t pl = sizeof(pfd);
    if (getsockopt(s, SOL_SOCKET, 77 /* SO_PEERPIDFD */, &pfd, &pl) < 0) goto cold;
    int ok = same_ns(cr.pid);
    struct pollfd pp = {pfd, POLLIN, 0};
    if (poll(&pp, 1, 0) != 0) ok = 0; /* it exited: its pid may be another's now */
    close(pfd);
    if (!ok) goto cold;
  }
  {
    int fl = fcntl(s, F_GETFL);
    if (fl < 0 || fcntl(s, F_SETFL, fl & ~O_NONBLOCK) < 0) goto cold;
  }
  /* the request: magic, build, "run", root, pid, nfds, fd numbers, argc, argv, env */
  char *req = malloc(REQ_MAX);
  if (!req) goto cold;
  size_t off = sizeof(struct wire);
  struct wire w = {W_REQUEST, 0, 0};
  memcpy(req, &w, sizeof(w));
#define PUT(str)                                            \
  do {                                                      \
    size_t l_ = strlen(str) + 1;                            \
    if (off + l_ > REQ_MAX) goto cold_free;                 \
    memcpy(req + off, (str), l_);                           \
    off += l_;                                              \
  } while (0)
  char num[32];
  PUT("ocirun-warm-1");
  PUT(OCIRUN_BUILD);
  PUT("run");
  PUT(root);
  snprintf(num, sizeof(num), "%d", (int)getpid());
  PUT(num);
  mode_t um = umask(0);
  umask(um);
  snprintf(num, sizeof(num), "%o", (unsigned)um);
  PUT(num);
  int fds[MAX_FDS + 1], nums[MAX_FDS], nfd = 0;
  fds[0] = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fds[0] < 0) goto cold_free;
  DIR *d = opendir("/proc/self/fd");
  if (!d) goto cold_cwd;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    int fd = atoi(e->d_name);
    if (fd == s || fd == fds[0] || fd == dirfd(d)) continue;
    if (nfd == MAX_FDS) {
      closedir(d);
      goto cold_cwd;
    }
    if (fd < 1024) caller_fd[fd] = 1;
    nums[nfd] = fd;
    fds[1 + nfd++] = fd;
  }
  closedir(d);
  snprintf(num, sizeof(num), "%d", nfd);
  PUT(num);
  for (int i = 0; i < nfd; i++) {
    snprintf(num, sizeof(num), "%d", nums[i]);
    PUT(num);
  }
  int argc = 0;
  while (c->argv[argc]) argc++;
  snprintf(num, sizeof(num), "%d", argc);
  PUT(num);
  for (int i = 0; i < argc; i++) PUT(c->argv[i]);
  for (char **ep = environ; ep && *ep; ep++) PUT(*ep);
  {
    size_t cl = CMSG_SPACE(sizeof(int) * (size_t)(nfd + 1));
    char *cbuf = calloc(1, cl);
    if (!cbuf) goto cold_cwd;
    struct iovec iov = {req, off};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = cl};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET, cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)(nfd + 1));
    memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)(nfd + 1));
    ssize_t sent = sendmsg(s, &m, MSG_NOSIGNAL);
    free(cbuf);
    if (sent != (ssize_t)off) goto cold_cwd;
  }
  close(fds[0]);
  free(req);
  {
    /* a worker that does not answer in time is not waited for: it sees
     * the connection closed instead of GO and does nothing */
    struct timeval tv = {2, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char rb[CMSG_SPACE(sizeof(int))];
    struct wire r;
    struct iovec iov = {&r, sizeof(r)};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = rb, .msg_controllen = sizeof(rb)};
    ssize_t n = recvmsg(s, &m, MSG_CMSG_CLOEXEC | MSG_PEEK);
    if (n < (ssize_t)sizeof(r) || r.type != W_ACCEPT) {
      if (c->debug) {
        char why[200] = "no answer in time", msg[300];
        if (n >= (ssize_t)sizeof(r) && r.type == W_REFUSE) {
          char rb2[sizeof(r) + 160] = {0};
          ssize_t k = recv(s, rb2, sizeof(rb2) - 1, 0);
          if (k > (ssize_t)sizeof(r)) snprintf(why, sizeof(why), "refused: %s", rb2 + sizeof(r));
        }
        snprintf(msg, sizeof(msg), "warm path not taken (%s): running cold", why);
        log_msg(c, "debug", msg);
      }
      goto cold;
    }
    (void)!recv(s, &r, sizeof(r), 0);
    worker_pidfd = (int)syscall(SYS_pidfd_open, r.a, 0);
    struct timeval zero = {0, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &zero, sizeof(zero));
    struct wire go = {W_GO, 0, 0};
    if (send(s, &go, sizeof(go), MSG_NOSIGNAL) != (ssize_t)sizeof(go)) goto cold;
  }
  conn = s;
  cur = c;
  serve();
cold_cwd:
  close(fds[0]);
cold_free:
  free(req);
cold:
  close(s);
#undef PUT
}
