/* ocirun kill: a signal through a start-time-checked pidfd (verbs/kill.py) */
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
