/* What the front-end's commands share: writing output whole, and a
 * container's locked directory with its record.  One file per command:
 * state.c, start.c, kill.c, delete.c.  They take the same steps, checks and
 * messages as ocirun/verbs/, for the cases without hooks or NOTIFY_SOCKET;
 * every error that can be found before acting is handed to Python, which
 * prints it; what is reported here happens after the point of no return.
 * The mechanism (start times, status, pidfd signals, waiting, cgroup and
 * state directory removal) is csrc/core/lifecycle.c, which Python uses too. */
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

int write_all(int fd, const char *p, size_t n) {
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
int lock_dir(const struct ctx *c) {
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
int lock_and_read(struct ctx *c, struct record *r) {
  int fd = lock_dir(c);
  if (fd < 0) handoff(c);
  if (record_read(c, r) < 0) {
    close(fd);
    handoff(c);
  }
  return fd;
}

