/* The cgroup v1 migration primer.
 *
 * On cgroup v1 the runtime must move the container's first process into its
 * cgroups by writing cgroup.procs.  The kernel takes the global
 * cgroup_threadgroup_rwsem for writing there, and its rcu_sync first waits for
 * a full RCU grace period unless another writer passed one moments ago: 0-17
 * ms on this kind of VM, paid by runc as well, and the largest single cost of
 * a v1 container start.  While it stays "hot" (a writer within the last grace
 * period or so) the same write takes microseconds.
 *
 * So for create/run/exec on v1 the front-end forks a tiny helper that moves
 * itself into its own cgroup (a no-op migration: same write, same lock), which
 * pays the grace period while the interpreter starts, then repeats the no-op
 * every 2 ms to keep it hot.  Python stops it (SIGKILL + waitpid, ocirun/
 * primer.py) as soon as its own migration is done, or at exit; the helper
 * also dies with its parent (PDEATHSIG) and gives up by itself after 200 ms.
 * It touches nothing but its own membership, and holds no fd the runtime or
 * the container could see. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "front.h"

#define CGROUP2_SUPER_MAGIC 0x63677270

/* cgroup.procs of this process's own group in one v1 hierarchy */
static int own_procs(char *out, size_t cap) {
  char buf[4096];
  int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
    /* hierarchy-id:controllers:path; pids is mounted on every v1 host */
    char *c1 = strchr(line, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2 || c2 - c1 - 1 != 4 || strncmp(c1 + 1, "pids", 4)) continue;
    if ((size_t)snprintf(out, cap, "/sys/fs/cgroup/pids%s/cgroup.procs", c2 + 1) >= cap) return -1;
    return 0;
  }
  return -1;
}

static void helper(pid_t parent) {
  char path[4200];
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  syscall(SYS_close_range, 0U, ~0U, 0U); /* not even the caller's pipes */
  if (getppid() != parent || own_procs(path, sizeof(path)) < 0) _exit(0);
  struct timespec gap = {0, 2 * 1000 * 1000}, t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "0", 1) != 1) _exit(0);
    close(fd);
    clock_gettime(CLOCK_MONOTONIC, &t);
    if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > 200) _exit(0);
    nanosleep(&gap, NULL);
  }
}

void prime_cgroup_v1(void) {
  struct statfs sf;
  unsetenv("_OCIRUN_PRIMER");
  if (statfs("/sys/fs/cgroup", &sf) < 0 || sf.f_type == CGROUP2_SUPER_MAGIC) return;
  if (access("/sys/fs/cgroup/pids/cgroup.procs", W_OK) < 0) return;
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) helper(parent);
  if (pid > 0) {
    char v[32];
    snprintf(v, sizeof(v), "%d", (int)pid);
    setenv("_OCIRUN_PRIMER", v, 1);
  }
}
