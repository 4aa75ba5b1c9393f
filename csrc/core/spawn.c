/* Spawning the C init: clone3(CLONE_VFORK [| CLONE_INTO_CGROUP]) and
 * execveat of the sealed memfd.  With a cgroup v2 fd the process is born in
 * the container's cgroup: no migration afterwards (a migration costs an RCU
 * grace period, ~10 ms, in the kernel).
 *
 * The child is a copy-on-write fork of the (single-threaded) Python
 * process suspended by CLONE_VFORK until execve; it only makes raw syscalls:
 * reset signal dispositions and mask, dup2 the fds into place, clear
 * close-on-exec on the preserved range, execveat.  On failure it exits with
 * the errno as its status, which the parent reports. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "native.h"

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

int ocirun_spawn(int exe_fd, char *const argv[], char *const envp[], const int *fd_src, const int *fd_dst,
                 int nfds, int keep_below, int cgroup_fd) {
  struct clone_args ca;
  memset(&ca, 0, sizeof ca);
  ca.flags = CLONE_VFORK;
  ca.exit_signal = SIGCHLD;
  if (cgroup_fd >= 0) {
    ca.flags |= CLONE_INTO_CGROUP;
    ca.cgroup = (uint64_t)cgroup_fd;
  }
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  long pid = syscall(SYS_clone3, &ca, sizeof ca);
  if (pid == 0) {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < 65; s++)
      if (s != SIGKILL && s != SIGSTOP) syscall(SYS_rt_sigaction, s, &dfl, NULL, 8);
    for (int i = 0; i < nfds; i++)
      if (syscall(SYS_dup2, fd_src[i], fd_dst[i]) < 0) syscall(SYS_exit_group, errno);
    for (int fd = 3; fd < keep_below; fd++) {
      long fl = syscall(SYS_fcntl, fd, F_GETFD);
      if (fl >= 0) syscall(SYS_fcntl, fd, F_SETFD, fl & ~FD_CLOEXEC);
    }
    sigset_t none;
    sigemptyset(&none);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, 8);
    syscall(SYS_execveat, exe_fd, "", argv, envp, AT_EMPTY_PATH);
    syscall(SYS_exit_group, errno ? errno : 127);
  }
  int e = errno;
  sigprocmask(SIG_SETMASK, &old, NULL);
  if (pid < 0) return -e;
  return (int)pid;
}
