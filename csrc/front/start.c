/* ocirun start: release the init through the exec fifo (verbs/start.py) */
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
