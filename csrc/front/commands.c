/* state, start, kill, delete: the same steps, checks and messages as
 * ocirun/container.py, for the cases without hooks or NOTIFY_SOCKET.  Every
 * error that can be found before acting is handed to Python, which prints
 * it; what is reported here happens after the point of no return. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "front.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  nanosleep(&ts, NULL);
}

/* Store.lock: an flock of the container directory; -1 when it is gone */
static int lock_dir(const struct ctx *c) {
  int fd = open(c->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -1;
  while (flock(fd, LOCK_EX) < 0) {
    if (errno != EINTR) {
      close(fd);
      return -1;
    }
  }
  return fd;
}

/* a locked directory and its record, or the hand-off */
static int lock_and_read(struct ctx *c, struct record *r) {
  int fd = lock_dir(c);
  if (fd < 0) handoff(c);
  if (record_read(c, r) < 0) {
    close(fd);
    handoff(c);
  }
  return fd;
}

int cmd_state(struct ctx *c) {
  static struct record r;
  if (record_read(c, &r) < 0) handoff(c);
  enum status s = record_status(c, &r);
  char mid[96];
  int n = snprintf(mid, sizeof(mid), "%lld,\n  \"status\": \"%s", s == ST_STOPPED ? 0LL : r.pid, status_name(s));
  if (write_all(1, r.head, r.head_len) < 0 || write_all(1, mid, (size_t)n) < 0 ||
      write_all(1, r.tail, r.tail_len) < 0)
    return 1;
  return 0;
}

/* container.py:_await_execve: after "0" the init keeps the fifo open until
 * its execve; at EOF, an init that never made it is dead */
static int await_execve(struct ctx *c, int fd, const struct record *r) {
  for (;;) {
    struct pollfd pfd = {fd, POLLIN | POLLHUP, 0};
    int n = poll(&pfd, 1, 100);
    if (n < 0 && errno == EINTR) continue;
    if (n > 0) {
      char buf[64];
      ssize_t got = read(fd, buf, sizeof buf);
      if (got > 0 || (got < 0 && (errno == EAGAIN || errno == EINTR))) continue;
      break;
    }
    if (n == 0 && pid_start_time(r->pid) != r->start) break;
    if (n < 0) break;
  }
  if (never_executed(r->pid, r->start)) {
    log_error(c, "container process is already dead");
    return 1;
  }
  return 0;
}

int cmd_start(struct ctx *c) {
  static struct record r;
  const char *ns = getenv("NOTIFY_SOCKET");
  if (ns && *ns) handoff(c); /* READY= relaying lives in Python */
  int lfd = lock_and_read(c, &r);
  if (r.py_start || record_status(c, &r) != ST_CREATED) {
    close(lfd);
    handoff(c); /* hooks, or the error for a bad transition */
  }
  char fifo[4200];
  snprintf(fifo, sizeof(fifo), "%s/exec.fifo", c->dir);
  int fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    close(lfd);
    handoff(c);
  }
  /* from here on the init may be running the user's program */
  int rc = 0;
  for (;;) {
    struct pollfd pfd = {fd, POLLIN | POLLHUP, 0};
    int n = poll(&pfd, 1, 100);
    if (n < 0 && errno == EINTR) continue;
    if (n > 0) {
      char ch;
      ssize_t got = read(fd, &ch, 1);
      if (got == 1 && ch == '0') {
        rc = await_execve(c, fd, &r);
        break;
      }
      if (got == 0 && pid_start_time(r.pid) == r.start) continue;
      log_error(c, "cannot start an already running container");
      rc = 1;
      break;
    }
    if (pid_start_time(r.pid) != r.start) {
      log_error(c, "container process is already dead");
      rc = 1;
      break;
    }
  }
  close(fd);
  if (!rc) unlink(fifo);
  close(lfd);
  return rc;
}

static int pidfd_of(const struct record *r) {
  int pfd = (int)syscall(SYS_pidfd_open, (pid_t)r->pid, 0);
  if (pfd < 0) return -1;
  if (pid_start_time(r->pid) != r->start) { /* recycled pid */
    close(pfd);
    return -1;
  }
  return pfd;
}

static void thaw(const struct record *r) {
  if (!r->freeze) return;
  int fd = open(r->freeze, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return;
  const char *v = r->cgv == 2 ? "0" : "THAWED";
  if (write(fd, v, strlen(v)) < 0) {
  }
  close(fd);
}

int cmd_kill(struct ctx *c, int sig) {
  static struct record r;
  if (record_read(c, &r) < 0) handoff(c);
  enum status s = record_status(c, &r);
  if (s == ST_STOPPED) handoff(c); /* "container not running" */
  int pfd = pidfd_of(&r);
  if (pfd < 0) handoff(c);
  int err = (int)syscall(SYS_pidfd_send_signal, pfd, sig, NULL, 0) < 0 ? errno : 0;
  close(pfd);
  if (err == ESRCH) {
    log_error(c, "container not running");
    return 1;
  }
  if (err) {
    char msg[256];
    snprintf(msg, sizeof(msg), "sending signal %d: %s", sig, errstr(err));
    log_error(c, msg);
    return 1;
  }
  if (sig == SIGKILL && s == ST_PAUSED) thaw(&r);
  return 0;
}

/* container.py:_wait_dead: up to 10 s for the init to go */
static int wait_dead(const struct record *r) {
  int pfd = (int)syscall(SYS_pidfd_open, (pid_t)r->pid, 0);
  if (pfd < 0) return 1;
  int dead = pid_start_time(r->pid) != r->start;
  double deadline = mono() + 10;
  while (!dead && mono() < deadline) {
    struct pollfd p = {pfd, POLLIN, 0};
    if (poll(&p, 1, 100) > 0) dead = 1;
  }
  close(pfd);
  return dead;
}

static void lower(char *s) {
  for (; *s; s++) *s = (char)tolower((unsigned char)*s);
}

/* cgroups._rmdir_retry: 0, or errno once EBUSY outlasted the deadline */
static int rmdir_retry(const char *dir, double deadline) {
  double delay = 0.001;
  while (rmdir(dir) < 0 && errno != ENOENT) {
    if (errno != EBUSY || mono() > deadline) return errno;
    sleep_s(delay);
    delay = delay * 2 > 0.1 ? 0.1 : delay * 2;
  }
  return 0;
}

/* a container's group with every sub-group its processes made, depth first;
 * 0 or the errno, with the directory that failed in bad */
static int rmtree(const char *dir, int depth, double deadline, char *bad, size_t badlen) {
  if (depth < 64) {
    DIR *d = opendir(dir);
    if (d) {
      struct dirent *e;
      char path[4200];
      while ((e = readdir(d))) {
        if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        int err = rmtree(path, depth + 1, deadline, bad, badlen);
        if (err) {
          closedir(d);
          return err;
        }
      }
      closedir(d);
    }
  }
  int err = rmdir_retry(dir, deadline);
  if (err) snprintf(bad, badlen, "%s", dir);
  return err;
}

/* cgroups.remove: only what ocirun made; a container group goes with its
 * sub-groups, a parent only if nothing else uses it by now.  0 or -1 (the
 * error is logged) */
static int remove_cgroups(const struct ctx *c, const struct record *r) {
  double deadline = mono() + 5;
  int rc = 0;
  for (int i = 0; i < r->nmade; i++) {
    int own = 0;
    for (int j = 0; j < r->ncg; j++)
      if (!strcmp(r->made[i], r->cg[j])) own = 1;
    if (!own) {
      rmdir(r->made[i]);
      continue;
    }
    char bad[4200];
    int err = rmtree(r->made[i], 0, deadline, bad, sizeof(bad));
    if (err && !rc) {
      char es[128], msg[4400];
      snprintf(es, sizeof(es), "%s", errstr(err));
      lower(es);
      snprintf(msg, sizeof(msg), "removing cgroup %s: %s", bad, es);
      log_error(c, msg);
      rc = -1;
    }
  }
  return rc;
}

/* Store.remove */
static void remove_state(const struct ctx *c) {
  static const char *files[] = {"fast", ".fast.tmp", "state.json", ".state.json.tmp", "exec.fifo",
                                "config.json", "notify/notify.sock"};
  char path[4200];
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    snprintf(path, sizeof(path), "%s/%s", c->dir, files[i]);
    unlink(path);
  }
  snprintf(path, sizeof(path), "%s/notify", c->dir);
  rmdir(path);
  if (rmdir(c->dir) == 0 || errno == ENOENT) return;
  /* something else was left in it: remove what a crash could leave */
  DIR *d = opendir(c->dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      if (unlinkat(dirfd(d), e->d_name, 0) < 0 && errno == EISDIR) unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
    }
    closedir(d);
  }
  rmdir(c->dir);
}

int cmd_delete(struct ctx *c, int force) {
  static struct record r;
  int lfd = lock_and_read(c, &r);
  enum status s = record_status(c, &r);
  /* without a pid namespace of its own, the container's other processes
   * outlive its init: Python freezes, signals and thaws the group */
  if (r.py_delete || (r.cgv && !r.pidns) || ((s == ST_RUNNING || s == ST_PAUSED) && !force)) {
    close(lfd);
    handoff(c); /* poststop hooks, or the error */
  }
  if (s != ST_STOPPED) {
    if (s == ST_PAUSED) thaw(&r);
    int pfd = pidfd_of(&r);
    if (pfd >= 0) {
      syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0);
      close(pfd);
    }
    if (!wait_dead(&r)) {
      log_error(c, "container init still running");
      close(lfd);
      return 1;
    }
  }
  /* with its own pid namespace, the init's death took every process of the
   * container along: nothing else in the group is signalled */
  int rc = 0;
  if (r.cgv && remove_cgroups(c, &r) < 0) rc = 1;
  remove_state(c);
  close(lfd);
  return rc;
}
