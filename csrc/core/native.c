/* Parent-side helpers: small, synchronous, no state. */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "native.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

int ocirun_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 ? -errno : 0; }

/* G1: every inherited fd from `first` on becomes close-on-exec. */
int ocirun_cloexec_from(unsigned int first) {
  return syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) < 0 ? -errno : 0;
}

int ocirun_close_range(unsigned int first, unsigned int last) {
  return syscall(SYS_close_range, first, last, 0) < 0 ? -errno : 0;
}
