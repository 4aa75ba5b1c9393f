/* ocirun front-end: argv in runc's grammar (urfave/cli v1 rules, the same as
 * ocirun/cli/args.py), dispatch of the four hot commands, hand-off of the rest.
 * Anything unexpected in argv is handed off, and Python reports it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "front.h"

enum kind { K_BOOL, K_STR };

struct flag {
  const char *name, *alias;
  enum kind kind;
};

struct parsed {
  const char *str[16];
  int set[16], boolv[16];
  char *pos[8];
  int npos;
};

enum { G_ROOT, G_LOG, G_LOGFMT, G_DEBUG, G_SYSTEMD, G_ROOTLESS, G_CRIU, G_HELP, G_VERSION, G_N };

static const struct flag GLOBAL[G_N] = {
    [G_ROOT] = {"root", NULL, K_STR},       [G_LOG] = {"log", NULL, K_STR},
    [G_LOGFMT] = {"log-format", NULL, K_STR}, [G_DEBUG] = {"debug", NULL, K_BOOL},
    [G_SYSTEMD] = {"systemd-cgroup", NULL, K_BOOL}, [G_ROOTLESS] = {"rootless", NULL, K_STR},
    [G_CRIU] = {"criu", NULL, K_STR},       [G_HELP] = {"help", "h", K_BOOL},
    [G_VERSION] = {"version", "v", K_BOOL},
};

/* per command: 0 help, 1 the command's own bool (kill --all, delete --force) */
static const struct flag CMD_HELP[] = {{"help", "h", K_BOOL}};
static const struct flag CMD_KILL[] = {{"help", "h", K_BOOL}, {"all", "a", K_BOOL}};
static const struct flag CMD_DELETE[] = {{"help", "h", K_BOOL}, {"force", "f", K_BOOL}};

static int lookup(const struct flag *fl, int n, const char *name, size_t len) {
  for (int i = 0; i < n; i++) {
    if ((strlen(fl[i].name) == len && !strncmp(fl[i].name, name, len)) ||
        (fl[i].alias && strlen(fl[i].alias) == len && !strncmp(fl[i].alias, name, len)))
      return i;
  }
  return -1;
}

static int truthy(const char *v) {
  if (!strcmp(v, "1") || !strcasecmp(v, "t") || !strcasecmp(v, "true")) return 1;
  if (!strcmp(v, "0") || !strcasecmp(v, "f") || !strcasecmp(v, "false")) return 0;
  return -1;
}

/* args.py:parse without stop_at_positional; -1 on anything it would reject */
static int parse(char **a, int n, const struct flag *fl, int nfl, struct parsed *p) {
  memset(p, 0, sizeof(*p));
  for (int i = 0; i < n;) {
    const char *arg = a[i++];
    if (!strcmp(arg, "--")) {
      while (i < n) {
        if (p->npos == 8) return -1;
        p->pos[p->npos++] = a[i++];
      }
      break;
    }
    if (strlen(arg) < 2 || arg[0] != '-') {
      if (p->npos == 8) return -1;
      p->pos[p->npos++] = (char *)arg;
      continue;
    }
    if (!strncmp(arg, "---", 3)) return -1;
    const char *name = arg;
    while (*name == '-') name++;
    if (!*name) return -1;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    int f = lookup(fl, nfl, name, len);
    if (f < 0) return -1;
    const char *val = eq ? eq + 1 : NULL;
    p->set[f] = 1;
    if (fl[f].kind == K_BOOL) {
      int b = val ? truthy(val) : 1;
      if (b < 0) return -1;
      p->boolv[f] = b;
      continue;
    }
    if (!val) {
      if (i >= n) return -1;
      val = a[i++];
    }
    p->str[f] = val;
  }
  return 0;
}

/* cli/__init__.py:_split_global: global options come before the command */
static int split_global(int argc, char **argv) {
  int i = 1;
  while (i < argc) {
    const char *a = argv[i];
    if (a[0] != '-' || !strcmp(a, "-")) break;
    const char *name = a;
    while (*name == '-') name++;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    int f = lookup(GLOBAL, G_N, name, len);
    if (f < 0) return -1;
    i++;
    if (GLOBAL[f].kind != K_BOOL && !strchr(a, '=')) i++;
  }
  return i > argc ? argc : i;
}

/* Python's os.path.abspath would rewrite "." and ".." components: such roots
 * (and over-long ones) go to Python, so both always name the same files. */
static int plain_root(const char *root) {
  size_t n = strlen(root);
  if (!n || n > 2048) return 0;
  for (const char *p = root; *p;) {
    const char *e = strchr(p, '/');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.')) return 0;
    if (!e) break;
    p = e + 1;
  }
  return 1;
}

/* A foreground `run` reaps what its container leaves behind, so Python sets
 * PR_SET_CHILD_SUBREAPER first thing; doing it here keeps the cffi
 * extension off the run path (ocirun/front.py).  Any argument that could
 * mean --detach or --no-subreaper leaves it to Python. */
static void foreground_subreaper(int n, char **a) {
  static const char *opt_out[] = {"d", "detach", "no-subreaper"};
  for (int i = 0; i < n; i++) {
    if (a[i][0] != '-') continue;
    const char *name = a[i];
    while (*name == '-') name++;
    size_t len = strcspn(name, "=");
    for (size_t k = 0; k < sizeof(opt_out) / sizeof(opt_out[0]); k++)
      if (strlen(opt_out[k]) == len && !strncmp(name, opt_out[k], len)) return;
  }
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0) setenv("_OCIRUN_SUBREAPER", "1", 1);
}

/* The Python CLI lives at <prefix>/libexec/ocirun/ocirun-py next to
 * <prefix>/bin/ocirun (found through /proc/self/exe, so the pair can be
 * installed under any prefix and called through symlinks); without /proc,
 * the default prefix. */
#ifndef OCIRUN_PREFIX
#define OCIRUN_PREFIX "/usr/local"
#endif

void handoff(struct ctx *c) {
  char self[PATH_MAX], path[PATH_MAX + 64];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) {
    snprintf(self, sizeof(self), "%s/bin/ocirun", OCIRUN_PREFIX);
    n = (ssize_t)strlen(self);
  }
  self[n] = 0;
  char *slash = strrchr(self, '/');
  if (slash) *slash = 0;
  slash = strrchr(self, '/');
  if (slash) *slash = 0;
  snprintf(path, sizeof(path), "%s/libexec/ocirun/ocirun-py", self);
  c->argv[0] = path;
  execv(path, c->argv);
  fprintf(stderr, "ocirun: cannot run the Python CLI %s: %s\n", path, lc_strerror(errno));
  _exit(1);
}

int main(int argc, char **argv) {
  static char rootbuf[4200];
  struct ctx c = {.argv = argv, .root = lc_default_root(getenv("XDG_RUNTIME_DIR"), rootbuf, sizeof(rootbuf))};
  struct parsed g, p;
  /* only ever what this process set up itself (ocirun/front.py) */
  unsetenv("_OCIRUN_PRIMER");
  unsetenv("_OCIRUN_SUBREAPER");
  if (argc < 2) handoff(&c);
  int ci = split_global(argc, argv);
  if (ci < 0 || ci >= argc || parse(argv + 1, ci - 1, GLOBAL, G_N, &g) < 0) handoff(&c);
  if (g.set[G_HELP] || g.set[G_VERSION]) handoff(&c);
  if (g.str[G_ROOT]) c.root = g.str[G_ROOT];
  c.debug = g.set[G_DEBUG] && g.boolv[G_DEBUG];
  if (g.str[G_LOG] && *g.str[G_LOG]) c.log_path = g.str[G_LOG];
  if (g.str[G_LOGFMT]) {
    if (!strcmp(g.str[G_LOGFMT], "json")) c.log_json = 1;
    else if (strcmp(g.str[G_LOGFMT], "text")) handoff(&c);
  }
  if (!plain_root(c.root)) handoff(&c);
  if (c.log_path) {
    /* runc opens --log on every call: the file exists even with nothing to
     * log (engines read it after each call); Python words the error */
    int lfd = open(c.log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (lfd < 0) handoff(&c);
    close(lfd);
  }

  const char *cmd = argv[ci];
  if (!strcmp(cmd, "create") || !strcmp(cmd, "run") || !strcmp(cmd, "exec")) {
    if (!strcmp(cmd, "run")) foreground_subreaper(argc - ci - 1, argv + ci + 1);
    warm_try(&c);
    prime_cgroup_v1();
    handoff(&c);
  }
  const struct flag *fl = CMD_HELP;
  int nfl = 1, maxpos = 1;
  if (!strcmp(cmd, "kill")) fl = CMD_KILL, nfl = 2, maxpos = 2;
  else if (!strcmp(cmd, "delete")) fl = CMD_DELETE, nfl = 2;
  else if (strcmp(cmd, "state") && strcmp(cmd, "start")) handoff(&c);
  if (parse(argv + ci + 1, argc - ci - 1, fl, nfl, &p) < 0 || p.set[0]) handoff(&c);
  if (p.npos < 1 || p.npos > maxpos || !lc_valid_id(p.pos[0], strlen(p.pos[0]))) handoff(&c);
  c.id = p.pos[0];
  if ((size_t)snprintf(c.dir, sizeof(c.dir), "%s/%s", c.root, c.id) >= sizeof(c.dir)) handoff(&c);

  if (!strcmp(cmd, "state")) return cmd_state(&c);
  if (!strcmp(cmd, "start")) return cmd_start(&c);
  if (!strcmp(cmd, "delete")) return cmd_delete(&c, p.set[1] && p.boolv[1]);
  /* kill [--all] <id> [signal] */
  if (p.set[1] && p.boolv[1]) handoff(&c);
  int sig = p.npos > 1 ? lc_signal_number(p.pos[1]) : 15; /* tables.parse_signal's plain forms */
  if (sig < 0) handoff(&c);
  return cmd_kill(&c, sig);
}
