/* ocirun state: the record's pre-rendered output around pid and status */
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
