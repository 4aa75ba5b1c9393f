/* ocirun delete: kill, remove what ocirun made, the state directory (verbs/delete.py) */
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
