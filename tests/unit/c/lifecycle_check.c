/* csrc/core/lifecycle.c under ASan/UBSan (tests/unit/test_lifecycle_core.py):
 * the parsers on random and edge-case input, and the tree removals on trees
 * deeper than their recursion limits.  argv: a scratch directory.  Prints
 * "ok" and exits 0, or fails on the first wrong answer. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lifecycle.h"

#define CHECK(x)                                                  \
  do {                                                            \
    if (!(x)) {                                                   \
      fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #x);     \
      exit(1);                                                    \
    }                                                             \
  } while (0)

/* a chain of `depth` nested directories under base; returns the deepest */
static void chain(char *path, size_t cap, const char *base, int depth) {
  snprintf(path, cap, "%s", base);
  CHECK(mkdir(path, 0700) == 0);
  for (int i = 0; i < depth; i++) {
    size_t n = strlen(path);
    snprintf(path + n, cap - n, "/d");
    CHECK(mkdir(path, 0700) == 0);
  }
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  char buf[8192], path[8192];
  srand(1);
  /* parsers: random bytes, every length up to past the buffers */
  for (int it = 0; it < 20000; it++) {
    size_t n = (size_t)(rand() % 40);
    for (size_t i = 0; i < n; i++) buf[i] = (char)(1 + rand() % 255);
    buf[n] = 0;
    int s = lc_signal_number(buf);
    CHECK(s >= -1 && s <= 64);
    lc_valid_id(buf, n);
  }
  memset(buf, 'a', 2000);
  buf[2000] = 0;
  CHECK(!lc_valid_id(buf, 2000) && lc_valid_id(buf, 1024) == 0); /* length and NUL position disagree */
  buf[1024] = 0;
  CHECK(lc_valid_id(buf, 1024));
  CHECK(lc_signal_number("SIGKILL") == 9 && lc_signal_number("64") == 64 && lc_signal_number("0") == 0);
  int sig;
  for (int i = 0; lc_signal_entry(i, &sig); i++) CHECK(lc_signal_number(lc_signal_entry(i, NULL)) == sig);
  CHECK(lc_signal_entry(-1, &sig) == NULL);
  /* default root: an XDG_RUNTIME_DIR that does not fit the buffer */
  char small[16];
  memset(buf, 'x', 100);
  buf[0] = '/';
  buf[100] = 0;
  const char *r = lc_default_root(buf, small, sizeof(small));
  CHECK(!strcmp(r, "/run/ocirun") || (strlen(r) < sizeof(small)));
  CHECK(!strcmp(lc_status_name(LC_PAUSED), "paused") && !strcmp(lc_status_name(99), "unknown"));
  /* status and signals of pids that cannot exist */
  CHECK(lc_pid_start_time(0) == -1 && lc_pid_start_time(1LL << 40) == -1);
  CHECK(lc_status(1LL << 40, 5, NULL, 0, NULL) == LC_STOPPED);
  CHECK(lc_signal(-3, 1, 0) == -ESRCH && lc_wait_dead(1LL << 40, 1, 10) == 1);
  /* a state directory deeper than the removal's recursion limit: what is
   * within the limit goes, the rest stays, nothing crashes */
  snprintf(path, sizeof(path), "%s/state", argv[1]);
  char deep[8192];
  chain(deep, sizeof(deep), path, 40);
  snprintf(buf, sizeof(buf), "%s/f", deep);
  int fd = open(buf, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  CHECK(fd >= 0);
  close(fd);
  snprintf(buf, sizeof(buf), "%s/root-link", deep);
  CHECK(symlink("/", buf) == 0);
  snprintf(buf, sizeof(buf), "%s/state/top-link", argv[1]);
  CHECK(symlink("/etc", buf) == 0);
  CHECK(lc_remove_dir(path) == -ENOTEMPTY);
  CHECK(access("/etc", F_OK) == 0);
  /* a cgroup-like tree deeper than its limit: the error names a directory */
  snprintf(path, sizeof(path), "%s/cg", argv[1]);
  chain(deep, sizeof(deep), path, 70);
  char bad[64];
  int err = lc_remove_cgroup(path, lc_monotonic() + 1, bad, sizeof(bad)); /* bad is too short: truncated */
  CHECK(err == ENOTEMPTY && strlen(bad) == sizeof(bad) - 1);
  const char *made[] = {path};
  err = lc_remove_made(made, 1, made, 1, lc_monotonic() + 1, bad, sizeof(bad));
  CHECK(err == ENOTEMPTY);
  puts("ok");
  return 0;
}
