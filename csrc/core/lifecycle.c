/* The lifecycle mechanism shared by the front-end and the Python library
 * (see lifecycle.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lifecycle.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

#define PF_FORKNOEXEC 0x40 /* set by clone, cleared by execve */

int lc_valid_id(const char *id, size_t len) {
  if (!len || len > 1024 || strlen(id) != len || !strcmp(id, ".") || !strcmp(id, "..")) return 0;
  for (const char *p = id; *p; p++) {
    char ch = *p;
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
          ch == '+' || ch == '.' || ch == '-'))
      return 0;
  }
  return 1;
}

static const struct {
  const char *name;
  int sig;
} SIGNALS[] = {
    {"HUP", 1},    {"INT", 2},     {"QUIT", 3},    {"ILL", 4},   {"TRAP", 5},    {"ABRT", 6},  {"IOT", 6},
    {"BUS", 7},    {"FPE", 8},     {"KILL", 9},    {"USR1", 10}, {"SEGV", 11},   {"USR2", 12}, {"PIPE", 13},
    {"ALRM", 14},  {"TERM", 15},   {"STKFLT", 16}, {"CHLD", 17}, {"CLD", 17},    {"CONT", 18}, {"STOP", 19},
    {"TSTP", 20},  {"TTIN", 21},   {"TTOU", 22},   {"URG", 23},  {"XCPU", 24},   {"XFSZ", 25}, {"VTALRM", 26},
    {"PROF", 27},  {"WINCH", 28},  {"IO", 29},     {"POLL", 29}, {"PWR", 30},    {"SYS", 31},
};
#define NSIGNALS (int)(sizeof(SIGNALS) / sizeof(SIGNALS[0]))

const char *lc_signal_entry(int i, int *sig) {
  if (i < 0 || i >= NSIGNALS) return NULL;
  if (sig) *sig = SIGNALS[i].sig;
  return SIGNALS[i].name;
}

int lc_signal_number(const char *text) {
  char u[32];
  size_t n = strlen(text);
  if (!n || n >= sizeof(u)) return -1;
  int digits = 1;
  for (size_t i = 0; i < n; i++) {
    if (text[i] < '0' || text[i] > '9') digits = 0;
    u[i] = (text[i] >= 'a' && text[i] <= 'z') ? (char)(text[i] - 32) : text[i];
  }
  u[n] = 0;
  if (digits) {
    if (n > 3) return -1;
    int v = atoi(u);
    return v <= 64 ? v : -1;
  }
  const char *s = strncmp(u, "SIG", 3) ? u : u + 3;
  for (int i = 0; i < NSIGNALS; i++)
    if (!strcmp(s, SIGNALS[i].name)) return SIGNALS[i].sig;
  return -1;
}

/* /proc/<pid>/stat after "<pid> (<comm>) ": the state field onwards, in buf;
 * NULL when the process is gone or the line is not what the kernel writes */
static char *proc_stat(long long pid, char *buf, size_t cap) {
  char path[64];
  if (pid <= 0) return NULL;
  snprintf(path, sizeof(path), "/proc/%lld/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  ssize_t n = read(fd, buf, cap - 1);
  close(fd);
  if (n <= 0) return NULL;
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  if (!p || p[1] != ' ' || !p[2]) return NULL;
  return p + 2;
}

/* field k (0 = the state) of what proc_stat returned, or NULL */
static const char *stat_field(const char *p, int k) {
  for (int i = 0; i < k; i++) {
    p = strchr(p, ' ');
    if (!p) return NULL;
    p++;
  }
  return *p ? p : NULL;
}

long long lc_pid_start_time(long long pid) {
  char buf[4096];
  const char *p = proc_stat(pid, buf, sizeof(buf));
  if (!p || *p == 'Z' || *p == 'X') return -1;
  const char *f = stat_field(p, 19);
  return f ? strtoll(f, NULL, 10) : -1;
}

int lc_never_executed(long long pid, long long start) {
  char buf[4096];
  const char *p = proc_stat(pid, buf, sizeof(buf));
  if (!p) return 0;
  const char *flags = stat_field(p, 6), *st = stat_field(p, 19);
  if (!flags || !st) return 0;
  if (start != -1 && strtoll(st, NULL, 10) != start) return 0;
  return (strtoull(flags, NULL, 10) & PF_FORKNOEXEC) != 0;
}

int lc_frozen(const char *freeze, int cgv) {
  char buf[32];
  if (!freeze) return 0;
  int fd = open(freeze, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  buf[strcspn(buf, " \t\r\n")] = 0;
  if (cgv == 2) return !strcmp(buf, "1");
  return !strcmp(buf, "FROZEN") || !strcmp(buf, "FREEZING");
}

int lc_thaw(const char *freeze, int cgv) {
  if (!freeze) return 0;
  int fd = open(freeze, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return -errno;
  const char *v = cgv == 2 ? "0" : "THAWED";
  int r = write(fd, v, strlen(v)) < 0 ? -errno : 0;
  close(fd);
  return r;
}

int lc_status(long long pid, long long start, const char *freeze, int cgv, const char *fifo) {
  long long cur = lc_pid_start_time(pid);
  if (cur < 0 || start < 0 || cur != start) return LC_STOPPED;
  if (lc_frozen(freeze, cgv)) return LC_PAUSED;
  struct stat st;
  return fifo && stat(fifo, &st) == 0 ? LC_CREATED : LC_RUNNING;
}

const char *lc_status_name(int status) {
  static const char *names[] = {"stopped", "created", "running", "paused"};
  return status >= 0 && status <= LC_PAUSED ? names[status] : "unknown";
}

int lc_pidfd(long long pid, long long start) {
  if (pid <= 0 || pid > 0x7fffffff) return -ESRCH;
  int pfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
  if (pfd < 0) return errno == ESRCH ? -ESRCH : -errno;
  if (lc_pid_start_time(pid) != start || start < 0) { /* a recycled pid, or a zombie */
    close(pfd);
    return -ESRCH;
  }
  return pfd;
}

int lc_signal(long long pid, long long start, int sig) {
  int pfd = lc_pidfd(pid, start);
  if (pfd < 0) return pfd;
  int r = (int)syscall(SYS_pidfd_send_signal, pfd, sig, NULL, 0) < 0 ? -errno : 0;
  close(pfd);
  return r;
}

int lc_release(int fd, long long pid, long long start, int timeout_ms, int *phase) {
  double deadline = lc_monotonic() + (timeout_ms < 0 ? 0 : timeout_ms / 1000.0);
  for (;;) {
    int wait = 100;
    if (timeout_ms >= 0) {
      double left = deadline - lc_monotonic();
      if (left <= 0) return LC_REL_WAIT;
      if (left < 0.1) wait = (int)(left * 1000) + 1;
    }
    struct pollfd pfd = {fd, POLLIN | POLLHUP, 0};
    int n = poll(&pfd, 1, wait);
    if (n < 0 && errno == EINTR) continue;
    if (*phase == 1) {
      /* after "0": the init keeps the fifo open until its execve
       * (close-on-exec); at EOF, or once it is gone, an init that never
       * made it is dead */
      if (n > 0) {
        char buf[64];
        ssize_t got = read(fd, buf, sizeof buf);
        if (got > 0 || (got < 0 && (errno == EAGAIN || errno == EINTR))) continue;
      } else if (n == 0 && lc_pid_start_time(pid) == start) {
        continue;
      }
      return lc_never_executed(pid, start) ? LC_REL_DEAD : LC_RELEASED;
    }
    if (n > 0) {
      char ch;
      ssize_t got = read(fd, &ch, 1);
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (got == 1 && ch == '0') {
        *phase = 1;
        continue;
      }
      if (got == 1 && ch == 'E') return LC_REL_HOOK;
      if (got == 0 && lc_pid_start_time(pid) == start) continue;
      return LC_REL_TAKEN;
    }
    if (lc_pid_start_time(pid) != start) return LC_REL_DEAD;
  }
}

double lc_monotonic(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

int lc_wait_dead(long long pid, long long start, int timeout_ms) {
  if (pid <= 0 || pid > 0x7fffffff) return 1;
  int pfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
  if (pfd < 0) return errno == ESRCH ? 1 : -errno;
  int dead = lc_pid_start_time(pid) != start;
  double deadline = lc_monotonic() + timeout_ms / 1000.0;
  for (double now; !dead && (now = lc_monotonic()) < deadline;) {
    struct pollfd p = {pfd, POLLIN, 0};
    int ms = (int)((deadline - now) * 1000) + 1;
    if (poll(&p, 1, ms < 100 ? ms : 100) > 0) dead = 1;
  }
  close(pfd);
  return dead;
}

int lc_rmdir_retry(const char *dir, double deadline) {
  double delay = 0.001;
  while (rmdir(dir) < 0 && errno != ENOENT) {
    if (errno != EBUSY || lc_monotonic() > deadline) return errno;
    sleep_s(delay);
    delay = delay * 2 > 0.1 ? 0.1 : delay * 2;
  }
  return 0;
}

static int rmtree_cg(const char *dir, int depth, double deadline, char *bad, size_t badlen) {
  if (depth < 64) {
    DIR *d = opendir(dir);
    if (d) {
      struct dirent *e;
      char path[4200];
      while ((e = readdir(d))) {
        if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= sizeof(path)) continue;
        int err = rmtree_cg(path, depth + 1, deadline, bad, badlen);
        if (err) {
          closedir(d);
          return err;
        }
      }
      closedir(d);
    }
  }
  int err = lc_rmdir_retry(dir, deadline);
  if (err && bad && badlen) snprintf(bad, badlen, "%s", dir);
  return err;
}

int lc_remove_cgroup(const char *dir, double deadline, char *bad, size_t badlen) {
  if (bad && badlen) bad[0] = 0;
  return rmtree_cg(dir, 0, deadline, bad, badlen);
}

int lc_remove_made(const char *const *made, int nmade, const char *const *own, int nown, double deadline,
                   char *bad, size_t badlen) {
  int rc = 0;
  if (bad && badlen) bad[0] = 0;
  for (int i = 0; i < nmade; i++) {
    int is_own = 0;
    for (int j = 0; j < nown; j++)
      if (!strcmp(made[i], own[j])) is_own = 1;
    if (!is_own) {
      rmdir(made[i]);
      continue;
    }
    char here[4200];
    int err = lc_remove_cgroup(made[i], deadline, here, sizeof(here));
    if (err && !rc) {
      rc = err;
      if (bad && badlen) snprintf(bad, badlen, "%s", here);
    }
  }
  return rc;
}

/* everything in the directory fd (closed here), recursively, on device dev */
static void empty_dir(int fd, dev_t dev, int depth) {
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (unlinkat(dirfd(d), e->d_name, 0) == 0 || (errno != EISDIR && errno != EPERM)) continue;
    /* a directory (EISDIR on Linux; EPERM elsewhere): entered without
     * following a symlink put there in between, and only on our file system */
    if (depth < 32) {
      int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0) {
        struct stat st;
        if (fstat(sub, &st) == 0 && st.st_dev == dev) {
          empty_dir(sub, dev, depth + 1);
        } else {
          close(sub);
          continue;
        }
      }
    }
    unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
  }
  closedir(d);
}

int lc_remove_dir(const char *dir) {
  /* a second pass for what a readdir racing with our own unlinks missed */
  for (int pass = 0;; pass++) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
      int e = errno;
      close(fd);
      return -e;
    }
    empty_dir(fd, st.st_dev, 0);
    if (rmdir(dir) == 0 || errno == ENOENT) return 0;
    if (errno != ENOTEMPTY || pass == 2) return -errno;
  }
}

const char *lc_strerror(int e) {
  switch (e) {
  case EPERM: return "Operation not permitted";
  case ENOENT: return "No such file or directory";
  case ESRCH: return "No such process";
  case EINTR: return "Interrupted system call";
  case EIO: return "Input/output error";
  case EBADF: return "Bad file descriptor";
  case EAGAIN: return "Resource temporarily unavailable";
  case ENOMEM: return "Cannot allocate memory";
  case EACCES: return "Permission denied";
  case EBUSY: return "Device or resource busy";
  case EEXIST: return "File exists";
  case ENOTDIR: return "Not a directory";
  case EISDIR: return "Is a directory";
  case EINVAL: return "Invalid argument";
  case EMFILE: return "Too many open files";
  case ENOSPC: return "No space left on device";
  case EROFS: return "Read-only file system";
  case ENAMETOOLONG: return "File name too long";
  case ENOTEMPTY: return "Directory not empty";
  case ELOOP: return "Too many levels of symbolic links";
  case ENOSYS: return "Function not implemented";
  default: return strerror(e);
  }
}

int lc_in_user_namespace(void) {
  char b[256];
  int fd = open("/proc/self/uid_map", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, b, sizeof(b) - 1);
  close(fd);
  if (n < 0) return 0;
  if (n == 0) return 1; /* a user namespace whose map is not written yet (runc: no entry, not the initial map) */
  b[n] = 0;
  unsigned long a, c, len;
  int used = 0;
  if (sscanf(b, "%lu %lu %lu%n", &a, &c, &len, &used) != 3) return 1;
  for (const char *q = b + used; *q; q++)
    if (*q != ' ' && *q != '\n') return 1; /* a second line */
  return !(a == 0 && c == 0 && len == 4294967295UL);
}

const char *lc_default_root(const char *xdg, char *buf, size_t cap) {
  if (!xdg || !*xdg || (geteuid() == 0 && !lc_in_user_namespace())) return "/run/ocirun";
  size_t n = strlen(xdg);
  while (n > 0 && xdg[n - 1] == '/') n--;
  if (n + sizeof("/ocirun") > cap) return "/run/ocirun";
  memcpy(buf, xdg, n);
  memcpy(buf + n, "/ocirun", sizeof("/ocirun"));
  return buf;
}
