/* Spawning the C init: clone3(CLONE_VFORK [| CLONE_INTO_CGROUP]) and
 * execveat of the sealed memfd.  With a cgroup v2 fd the process is born in
 * the container's cgroup: no migration afterwards (a migration costs an RCU
 * grace period, ~10 ms, in the kernel).
 *
 * The child is a copy-on-write fork of the (single-threaded) Python
 * process suspended by CLONE_VFORK until execve; it only makes raw syscalls:
 * reset signal dispositions and mask, dup2 the fds into place, clear
 * close-on-exec on the preserved range, execveat.  A failure is reported
 * as the errno written to a close-on-exec pipe (EOF = the exec happened),
 * as CPython's _posixsubprocess does. */
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
  int errpipe[2];
  if (pipe2(errpipe, O_CLOEXEC) < 0) return -errno;
  /* keep the pipe clear of the fd slots the child dup2()s into */
  for (int i = 0; i < 2; i++) {
    if (errpipe[i] < 100) {
      int moved = fcntl(errpipe[i], F_DUPFD_CLOEXEC, 100);
      if (moved < 0) {
        int e = errno;
        close(errpipe[0]);
        close(errpipe[1]);
        return -e;
      }
      close(errpipe[i]);
      errpipe[i] = moved;
    }
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
      if (syscall(SYS_dup2, fd_src[i], fd_dst[i]) < 0) {
        int err = errno;
        syscall(SYS_write, errpipe[1], &err, sizeof err);
        syscall(SYS_exit_group, 127);
      }
    for (int fd = 3; fd < keep_below; fd++) {
      long fl = syscall(SYS_fcntl, fd, F_GETFD);
      if (fl >= 0) syscall(SYS_fcntl, fd, F_SETFD, fl & ~FD_CLOEXEC);
    }
    sigset_t none;
    sigemptyset(&none);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, 8);
    syscall(SYS_execveat, exe_fd, "", argv, envp, AT_EMPTY_PATH);
    int err = errno ? errno : EIO;
    syscall(SYS_write, errpipe[1], &err, sizeof err);
    syscall(SYS_exit_group, 127);
  }
  int e = errno;
  sigprocmask(SIG_SETMASK, &old, NULL);
  close(errpipe[1]);
  if (pid < 0) {
    close(errpipe[0]);
    return -e;
  }
  int child_err = 0;
  ssize_t n;
  do n = read(errpipe[0], &child_err, sizeof child_err);
  while (n < 0 && errno == EINTR);
  close(errpipe[0]);
  if (n == (ssize_t)sizeof child_err) {
    int st;
    while (waitpid((pid_t)pid, &st, 0) < 0 && errno == EINTR)
      ;
    return -child_err;
  }
  return (int)pid;
}
