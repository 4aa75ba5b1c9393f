/* The lifecycle mechanism: one implementation of the rules both the C
 * front-end (csrc/front, answering state/start/kill/delete without an
 * interpreter) and the Python library (through ocirun/_lifecycle, a CPython
 * extension module built from lifecycle_py.c) apply to a container's process,
 * cgroup and state directory.  Policy (which command may do what, hooks,
 * messages, NOTIFY_SOCKET) stays with the callers.
 *
 * No state, no allocation, no output: every function returns a value or a
 * negative errno.  Pids and start times are long long; a start time < 0
 * means "unknown" and matches no process (but see lc_never_executed). */
#ifndef OCIRUN_LIFECYCLE_H
#define OCIRUN_LIFECYCLE_H

#include <stddef.h>

/* runc's container id grammar: [A-Za-z0-9_+.-]{1,1024}, not "." or ".." */
int lc_valid_id(const char *id, size_t len);

/* A signal given as a decimal number (0..64, up to 3 digits) or a name with
 * or without SIG in any case, from the table of standard names; -1 for
 * anything else (RTMIN+n and the like are the callers' business). */
int lc_signal_number(const char *text);
/* The table itself, for its users: name (without SIG) and number of entry i,
 * NULL past the end. */
const char *lc_signal_entry(int i, int *sig);

/* Field 22 of /proc/<pid>/stat: the start time, or -1 when the process is
 * gone or a zombie. */
long long lc_pid_start_time(long long pid);

/* 1 when the process (running or a zombie; of this start time unless
 * start is -1) has made no execve since it was cloned (PF_FORKNOEXEC); 0 when
 * it did, or when it is gone. */
int lc_never_executed(long long pid, long long start);

/* The freezer file of a cgroup (v1 freezer.state, v2 cgroup.freeze): frozen
 * (or freezing, on v1) or not; and a thaw (0 or -errno).  freeze may be NULL. */
int lc_frozen(const char *freeze, int cgv);
int lc_thaw(const char *freeze, int cgv);

/* The status, derived as runc does: no live process of that start time ->
 * stopped; frozen -> paused (before the fifo, as runc); the exec fifo
 * present -> created; else running. */
enum lc_status { LC_STOPPED, LC_CREATED, LC_RUNNING, LC_PAUSED };
int lc_status(long long pid, long long start, const char *freeze, int cgv, const char *fifo);
const char *lc_status_name(int status);

/* A pidfd of the process, opened before its start time is checked, so that
 * a recycled pid is never signalled: the fd, or -ESRCH when it is gone or
 * is another process now, or another -errno. */
int lc_pidfd(long long pid, long long start);

/* Signal the process through such a pidfd: 0, -ESRCH when it is not (or no
 * longer) the container's process, or another -errno. */
int lc_signal(long long pid, long long start, int sig);

/* Wait up to timeout_ms for the process to be gone: 1 gone (or never there),
 * 0 still there, or -errno when no pidfd could be opened for another
 * reason. */
int lc_wait_dead(long long pid, long long start, int timeout_ms);

/* start: release a created container's init through its exec fifo, opened
 * by the caller (O_RDONLY | O_NONBLOCK): the init writes "0" and keeps the
 * fifo open until its execve closes it, or "E" and the error of a failed
 * startContainer hook (the caller reads the rest).  Returns:
 *   LC_RELEASED     the init made its execve (however short-lived the program)
 *   LC_REL_DEAD     it is gone, or died before its execve
 *   LC_REL_TAKEN    someone else released it (EOF from a changed process,
 *                   or anything but "0"/"E"): "already running"
 *   LC_REL_HOOK     "E" read
 *   LC_REL_WAIT     none of these yet after timeout_ms (< 0: no timeout):
 *                   call again with the same *phase (0 on the first call)
 * Waits as long as the init lives and does none of these. */
enum lc_release { LC_RELEASED, LC_REL_DEAD, LC_REL_TAKEN, LC_REL_HOOK, LC_REL_WAIT };
int lc_release(int fd, long long pid, long long start, int timeout_ms, int *phase);

/* rmdir, retried while the kernel answers EBUSY (dying processes still hold
 * the cgroup), until deadline (CLOCK_MONOTONIC seconds): 0 (also when it is
 * gone already) or the errno. */
int lc_rmdir_retry(const char *dir, double deadline);

/* A container's cgroup directory with every sub-group its processes made,
 * deepest first, each with lc_rmdir_retry: 0, or the errno with the
 * directory that could not go in bad. */
int lc_remove_cgroup(const char *dir, double deadline, char *bad, size_t badlen);

/* What ocirun made for a container's cgroup (made: deepest first): a
 * directory that is one of the container's own (own) goes with every
 * sub-group in it (lc_remove_cgroup); a parent it created goes only if
 * nothing else uses it by now (one rmdir, errors ignored: not ours to take).
 * 0, or the first errno with the directory that could not go in bad; the
 * others are still tried. */
int lc_remove_made(const char *const *made, int nmade, const char *const *own, int nown, double deadline,
                   char *bad, size_t badlen);

/* A container's state directory as a whole: everything in it, recursively,
 * then itself; symlinks are removed, never followed, and nothing on
 * another file system (a mount) is entered.  0 (also when it is gone) or
 * -errno of the final rmdir. */
int lc_remove_dir(const char *dir);

/* CLOCK_MONOTONIC in seconds */
double lc_monotonic(void);

/* errno text in glibc's wording (what Python's os.strerror prints), whichever
 * libc this is linked with. */
const char *lc_strerror(int e);

/* runc's userns.RunningInUserNS(): anything but the initial identity map
 * (an empty map, of a user namespace not mapped yet, included) */
int lc_in_user_namespace(void);

/* runc's default --root: a non-root user, or root in a user namespace, with
 * XDG_RUNTIME_DIR (xdg, may be NULL) keeps state in $XDG_RUNTIME_DIR/ocirun;
 * else /run/ocirun.  The result is in buf, or a static string. */
const char *lc_default_root(const char *xdg, char *buf, size_t cap);

#endif
