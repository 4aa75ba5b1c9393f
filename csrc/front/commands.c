/* state, start, kill, delete: the same steps, checks and messages as
 * ocirun/container.py, for the cases without hooks or NOTIFY_SOCKET.  Every
 * error that can be found before acting is handed to Python, which prints
 * it; what is reported here happens after the point of no return.  The
 * mechanism (start times, status, pidfd signals, waiting, cgroup and state
 * directory removal) is csrc/core/lifecycle.c, which Python uses too. */
#define _GNU_SOURCE
#include <ctype.h>
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
#include <unistd.h>

#include "front.h"

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
  int s = record_status(c, &r);
  char mid[96];
  int n = snprintf(mid, sizeof(mid), "%lld,\n  \"status\": \"%s", s == LC_STOPPED ? 0LL : r.pid, lc_status_name(s));
  if (write_all(1, r.head, r.head_len) < 0 || write_all(1, mid, (size_t)n) < 0 ||
      write_all(1, r.tail, r.tail_len) < 0)
    return 1;
  return 0;
}

int cmd_start(struct ctx *c) {
  static struct record r;
  const char *ns = getenv("NOTIFY_SOCKET");
  if (ns && *ns) handoff(c); /* READY= relaying lives in Python */
  int lfd = lock_and_read(c, &r);
  if (r.py_start || record_status(c, &r) != LC_CREATED) {
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
  int rc = 0, phase = 0;
  switch (lc_release(fd, r.pid, r.start, -1, &phase)) {
  case LC_RELEASED:
    break;
  case LC_REL_DEAD:
    log_error(c, "container process is already dead");
    rc = 1;
    break;
  default: /* LC_REL_HOOK cannot happen: hooks leave start to Python */
    log_error(c, "cannot start an already running container");
    rc = 1;
  }
  close(fd);
  if (!rc) unlink(fifo);
  close(lfd);
  return rc;
}

int cmd_kill(struct ctx *c, int sig) {
  static struct record r;
  if (record_read(c, &r) < 0) handoff(c);
  int s = record_status(c, &r);
  if (s == LC_STOPPED) handoff(c); /* "container not running" */
  int pfd = lc_pidfd(r.pid, r.start);
  if (pfd < 0) handoff(c);
  int err = (int)syscall(SYS_pidfd_send_signal, pfd, sig, NULL, 0) < 0 ? errno : 0;
  close(pfd);
  if (err == ESRCH) {
    log_error(c, "container not running");
    return 1;
  }
  if (err) {
    char msg[256];
    snprintf(msg, sizeof(msg), "sending signal %d: %s", sig, lc_strerror(err));
    log_error(c, msg);
    return 1;
  }
  if (sig == SIGKILL && s == LC_PAUSED) lc_thaw(r.freeze, r.cgv);
  return 0;
}

/* cgroups.remove: only what ocirun made (csrc/core/lifecycle.c:lc_remove_made).
 * 0 or -1 (the error is logged) */
static int remove_cgroups(const struct ctx *c, const struct record *r) {
  char bad[4200];
  int err = lc_remove_made(r->made, r->nmade, r->cg, r->ncg, lc_monotonic() + 5, bad, sizeof(bad));
  if (!err) return 0;
  char es[128], msg[4400];
  snprintf(es, sizeof(es), "%s", lc_strerror(err));
  for (char *p = es; *p; p++) *p = (char)tolower((unsigned char)*p);
  snprintf(msg, sizeof(msg), "removing cgroup %s: %s", bad, es);
  log_error(c, msg);
  return -1;
}

int cmd_delete(struct ctx *c, int force) {
  static struct record r;
  int lfd = lock_and_read(c, &r);
  int s = record_status(c, &r);
  /* without a pid namespace of its own, the container's other processes
   * outlive its init: Python freezes, signals and thaws the group */
  if (r.py_delete || (r.cgv && !r.pidns) || ((s == LC_RUNNING || s == LC_PAUSED) && !force)) {
    close(lfd);
    handoff(c); /* poststop hooks, or the error */
  }
  if (s != LC_STOPPED) {
    if (s == LC_PAUSED) lc_thaw(r.freeze, r.cgv);
    lc_signal(r.pid, r.start, SIGKILL);
    if (lc_wait_dead(r.pid, r.start, 10000) == 0) { /* an error: as gone, as before */
      log_error(c, "container init still running");
      close(lfd);
      return 1;
    }
  }
  /* with its own pid namespace, the init's death took every process of the
   * container along: nothing else in the group is signalled */
  int rc = 0;
  if (r.cgv && remove_cgroups(c, &r) < 0) rc = 1;
  lc_remove_dir(c->dir); /* Store.remove: the directory as a whole */
  close(lfd);
  return rc;
}
