/* Hooks that run in the container's namespaces (config.md): createContainer
 * before pivot_root (path resolved in the runtime's mount namespace, which
 * is still visible), startContainer after the exec fifo, right before the
 * user's program (path resolved in the container).  Each gets the container
 * state on stdin, its args and env, and an optional timeout. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "init.h"

static void run_one(struct plan *p, struct hook_op *h) {
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) < 0) fail(S_HOOK, errno, h->h->index, h->path);
  pid_t pid = fork();
  if (pid < 0) fail(S_HOOK, errno, h->h->index, h->path);
  if (pid == 0) {
    if (dup2(pfd[0], 0) < 0) die(127);
    /* runc's working directory for these: the rootfs (createContainer,
     * before pivot_root) and the process's cwd (startContainer) */
    if (chdir(h->h->phase == HOOK_CREATE_CONTAINER ? p->rootfs : p->cwd) < 0 && chdir("/") < 0) die(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    char *argv0[2] = {(char *)h->path, NULL};
    execve(h->path, h->h->nargs ? h->argv : argv0, h->envp);
    die(127);
  }
  close(pfd[0]);
  const char *state = p->hook_state ? p->hook_state : "{}";
  size_t len = strlen(state), off = 0;
  signal(SIGPIPE, SIG_IGN);
  while (off < len) {
    ssize_t w = write(pfd[1], state + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break; /* a hook need not read its stdin */
    off += (size_t)w;
  }
  close(pfd[1]);
  signal(SIGPIPE, SIG_DFL);
  int status = 0;
  if (h->h->timeout) {
    /* up to 2^31-1 seconds: poll's int milliseconds hold ~24 days, so wait
     * in slices against a monotonic deadline */
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    struct pollfd pf = {.fd = pidfd, .events = POLLIN};
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long deadline_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000 + (long long)h->h->timeout * 1000;
    int r = 1;
    while (pidfd >= 0) {
      clock_gettime(CLOCK_MONOTONIC, &now);
      long long left = deadline_ms - ((long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
      if (left <= 0) {
        r = 0;
        break;
      }
      r = poll(&pf, 1, left > 86400000 ? 86400000 : (int)left);
      if (r > 0 || (r < 0 && errno != EINTR)) break;
    }
    if (pidfd >= 0) close(pidfd);
    if (r == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      fail2(S_HOOK, ETIMEDOUT, h->h->index | (h->h->phase << 16), h->path, "timed out");
    }
  }
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) fail(S_HOOK, errno, h->h->index | (h->h->phase << 16), h->path);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
  char msg[64] = "exit status ";
  itoa_signed(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), msg + strlen(msg));
  fail2(S_HOOK, 0, h->h->index | (h->h->phase << 16), h->path, msg);
}

void run_hooks(struct plan *p, unsigned int phase) {
  for (unsigned int i = 0; i < p->nhooks; i++)
    if (p->hooks[i].h->phase == phase) run_one(p, &p->hooks[i]);
}
