/* ocirun front-end: the `ocirun` executable engines call.
 *
 * It answers the hot, interpreter-free commands (state, start, kill, delete)
 * from the record Python keeps next to state.json (<root>/<id>/fast, see
 * ocirun/state.py:fast_record), and hands every other command, and every case
 * it is not sure of, to the Python CLI unchanged (execve of the launcher, same
 * pid, argv, environment and fds).  The rule: a hand-off happens before any
 * side effect, so Python always sees the request as the caller made it.
 * The lifecycle mechanism itself is csrc/core/lifecycle.c, shared with the
 * Python library (ocirun._lifecycle): only the record, the argv grammar's
 * hand-off rules and the log lines are the front-end's own.
 */
#ifndef OCIRUN_FRONT_H
#define OCIRUN_FRONT_H

#include <stddef.h>

#include "lifecycle.h" /* csrc/core: the mechanism shared with Python */

#define MAX_CGROUPS 32

struct record {
  long long pid;
  long long start;       /* -1: unknown */
  const char *freeze;    /* freezer file, or NULL */
  int cgv;               /* 0: no cgroup */
  const char *cg[MAX_CGROUPS];
  int ncg;
  const char *made[2 * MAX_CGROUPS * 8]; /* what ocirun created, deepest first */
  int nmade;
  int pidns;             /* 1: a pid namespace of its own */
  int py_start, py_delete; /* hooks: leave these commands to Python */
  const char *head, *tail;
  size_t head_len, tail_len;
  char buf[1 << 16];
};

struct ctx {
  char **argv;          /* the original argv, for the hand-off */
  const char *root, *log_path;
  int log_json;
  int debug;            /* --debug */
  const char *id;
  char dir[4096];       /* <root>/<id> */
};

/* main.c */
void handoff(struct ctx *c) __attribute__((noreturn));

/* warm.c: for create, run and exec; returns only when the command is to
 * run cold (the warm path is off, absent or refused) */
void warm_try(struct ctx *c);

/* primer.c: on cgroup v1, start the helper that pre-pays the migration's
 * RCU grace period (its pid goes to Python in _OCIRUN_PRIMER) */
void prime_cgroup_v1(void);

/* record.c: 0 ok, -1 absent or unreadable (hand off) */
int record_read(const struct ctx *c, struct record *r);
/* the container's status (enum lc_status) */
int record_status(const struct ctx *c, const struct record *r);

/* log.c: runc's log lines (text or json) to --log or stderr */
void log_msg(const struct ctx *c, const char *level, const char *msg);
void log_error(const struct ctx *c, const char *msg); /* + bare text on stderr with --log */

/* commands.c: shared by the commands */
int write_all(int fd, const char *p, size_t n);
int lock_dir(const struct ctx *c);
int lock_and_read(struct ctx *c, struct record *r);

/* one file each (state.c, start.c, kill.c, delete.c): exit status, or hand off */
int cmd_state(struct ctx *c);
int cmd_start(struct ctx *c);
int cmd_kill(struct ctx *c, int sig);
int cmd_delete(struct ctx *c, int force);

#endif
