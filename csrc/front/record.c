/* The front-end's view of a container: <root>/<id>/fast, written by
 * ocirun/state.py:fast_record under the container's lock (temp + rename), and
 * the status derived from it by the rule state.py:status applies too. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "front.h"

static ssize_t read_all(int fd, char *buf, size_t cap) {
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0) return -1;
    if (r == 0) return (ssize_t)n;
    n += (size_t)r;
    if (n == cap) return -1; /* too large for us: Python reads it */
  }
}

static int num(const char *s, long long *out) {
  char *end;
  if (!*s) return -1;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (*end || errno) return -1;
  *out = v;
  return 0;
}

/* "<key> <n>\n" then n bytes then "\n" */
static int blob(char **p, char *end, const char *key, const char **out, size_t *len) {
  size_t kl = strlen(key);
  char *nl = memchr(*p, '\n', (size_t)(end - *p));
  if (!nl || (size_t)(nl - *p) <= kl || strncmp(*p, key, kl) || (*p)[kl] != ' ') return -1;
  *nl = 0;
  long long n;
  if (num(*p + kl + 1, &n) < 0 || n < 0 || n > end - (nl + 1) - 1) return -1;
  *out = nl + 1;
  *len = (size_t)n;
  if (nl[1 + n] != '\n') return -1;
  *p = nl + 2 + n;
  return 0;
}

/* A cgroup directory the record may name: an absolute path without "." or
 * ".." or empty components, and never a hierarchy's root (/sys/fs/cgroup,
 * on v1 /sys/fs/cgroup/<controllers>).  delete kills what is in these and
 * removes them: a tampered record must not point it at a root cgroup (Python
 * then reads state.json, which state.py checks the same way). */
static int cgroup_dir_ok(const char *p, int cgv) {
  static const char base[] = "/sys/fs/cgroup";
  if (p[0] != '/') return 0;
  int parts = 0, below = 0;
  if (!strncmp(p, base, sizeof(base) - 1) && (p[sizeof(base) - 1] == '/' || !p[sizeof(base) - 1])) below = 1;
  for (const char *s = p + 1; *s;) {
    const char *e = strchr(s, '/');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return 0;
    parts++;
    s += n + (e ? 1 : 0);
    if (e && !*s) return 0; /* trailing slash */
  }
  /* /sys/fs/cgroup is 3 components; a v1 hierarchy root 4 */
  return !below || parts > (cgv == 1 ? 4 : 3);
}

int record_read(const struct ctx *c, struct record *r) {
  char path[4200];
  memset(r, 0, offsetof(struct record, buf));
  snprintf(path, sizeof(path), "%s/fast", c->dir);
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read_all(fd, r->buf, sizeof(r->buf) - 1);
  close(fd);
  if (n <= 0) return -1;
  r->buf[n] = 0;
  char *p = r->buf, *end = r->buf + n;
  int seen = 0;
  /* key-value lines up to "py" */
  for (int line = 0;; line++) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) return -1;
    *nl = 0;
    char *v = strchr(p, ' ');
    if (v) *v++ = 0;
    if (line == 0) {
      if (strcmp(p, "ocirun-fast") || !v || strcmp(v, "2")) return -1;
    } else if (!v) {
      return -1;
    } else if (!strcmp(p, "pid")) {
      if (num(v, &r->pid) < 0 || r->pid < 0 || r->pid > INT_MAX) return -1;
      seen |= 1;
    } else if (!strcmp(p, "start")) {
      if (!strcmp(v, "-")) r->start = -1;
      else if (num(v, &r->start) < 0 || r->start < 0) return -1;
      seen |= 2;
    } else if (!strcmp(p, "freeze")) {
      r->freeze = strcmp(v, "-") ? v : NULL;
      seen |= 4;
    } else if (!strcmp(p, "cgv")) {
      long long cgv;
      if (num(v, &cgv) < 0 || cgv < 0 || cgv > 2) return -1;
      r->cgv = (int)cgv;
      seen |= 8;
    } else if (!strcmp(p, "cg")) {
      if (r->ncg == MAX_CGROUPS || v[0] != '/') return -1;
      r->cg[r->ncg++] = v;
    } else if (!strcmp(p, "made")) {
      if (r->nmade == (int)(sizeof(r->made) / sizeof(r->made[0])) || v[0] != '/') return -1;
      r->made[r->nmade++] = v;
    } else if (!strcmp(p, "pidns")) {
      if (strcmp(v, "0") && strcmp(v, "1")) return -1;
      r->pidns = v[0] == '1';
      seen |= 16;
    } else if (!strcmp(p, "py")) {
      for (char *w = strtok(v, " "); w; w = strtok(NULL, " ")) {
        if (!strcmp(w, "start")) r->py_start = 1;
        else if (!strcmp(w, "delete")) r->py_delete = 1;
      }
      p = nl + 1;
      break;
    } else {
      return -1; /* a newer format: Python knows it */
    }
    p = nl + 1;
  }
  if (seen != 31) return -1;
  for (int i = 0; i < r->ncg; i++)
    if (!cgroup_dir_ok(r->cg[i], r->cgv)) return -1;
  for (int i = 0; i < r->nmade; i++)
    if (!cgroup_dir_ok(r->made[i], r->cgv)) return -1;
  if (blob(&p, end, "head", &r->head, &r->head_len) < 0) return -1;
  if (blob(&p, end, "tail", &r->tail, &r->tail_len) < 0) return -1;
  return 0;
}

/* state.py:status, through the shared rule (csrc/core/lifecycle.c) */
int record_status(const struct ctx *c, const struct record *r) {
  char fifo[4200];
  snprintf(fifo, sizeof(fifo), "%s/exec.fifo", c->dir);
  return lc_status(r->pid, r->start, r->freeze, r->cgv, fifo);
}
