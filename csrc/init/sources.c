/* Bind-mount sources opened with the host's credentials (as runc 1.1's
 * send_mountsources).
 *
 * In a user namespace the init is root of that namespace only: a bind source
 * under a directory only host root may traverse (a 0700 root-owned parent,
 * a volume directory of an engine) cannot be reached from there.  So, before
 * the bootstrap enters or creates a user namespace, it forks an opener that
 * keeps the runtime's credentials.  Once the bootstrap has its new mount
 * namespace, the opener joins that namespace (setns, which needs the
 * runtime's privileges over the namespace's owner), opens every plain bind
 * source there with O_PATH and sends the fds back; the init then clones the
 * mount by fd (open_tree(fd, "", AT_EMPTY_PATH)).  Opening in the container's
 * own copy of the mount table (not the host's) keeps the kernel's locks on
 * mounts copied into a less privileged namespace, and lets open_tree accept
 * the fd (it only clones mounts of the caller's namespace).
 *
 * G5: a bind source is a host path from config.json (trusted, the bundle's
 * owner wrote it) and is resolved as a host path, as before; G6: the
 * destination is still resolved in-root by the init.  The opener never
 * writes to the runtime's sync socket and dies with the bootstrap. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "init.h"

struct src_msg {
  unsigned int index; /* mount record number, or ~0U: done */
  int err;            /* errno of a failed open (no fd then) */
};

static int wanted(const struct mount_op *op) {
  return op->m->kind == MK_BIND && !(op->m->flags & OCIRUN_MNT_IDMAP) && op->source && op->source[0];
}

static int send_src(int sock, unsigned int index, int err, int fd) {
  struct src_msg m = {.index = index, .err = err};
  return send_with_fd(sock, &m, sizeof m, fd) == (ssize_t)sizeof m ? 0 : -1;
}

static void opener(struct plan *p, int sock, int procfd, pid_t boot) {
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (getppid() != boot) _exit(1);
  char c;
  ssize_t r;
  while ((r = read(sock, &c, 1)) < 0 && errno == EINTR)
    ;
  if (r != 1) _exit(0); /* the bootstrap failed before it needed us */
  char path[32] = {0};
  itoa_signed((int)boot, path);
  str_copy(path + strlen(path), sizeof path - strlen(path), "/ns/mnt");
  int ns = openat(procfd, path, O_RDONLY | O_CLOEXEC);
  if (ns < 0 || setns(ns, CLONE_NEWNS) < 0) {
    send_src(sock, ~1U, errno, -1);
    _exit(1);
  }
  close(ns);
  for (unsigned int i = 0; i < p->nmounts; i++) {
    if (!wanted(&p->mounts[i])) continue;
    int fd = open(p->mounts[i].source, O_PATH | O_CLOEXEC);
    if (send_src(sock, i, fd < 0 ? errno : 0, fd) < 0) _exit(1);
    if (fd >= 0) close(fd);
  }
  send_src(sock, ~0U, 0, -1);
  _exit(0);
}

/* Before any user namespace: fork the opener (only when it can help: the
 * runtime is root of its own user namespace and there is a plain bind). */
void sources_fork(struct plan *p, int procfd, struct source_opener *so) {
  so->pid = 0;
  so->sock = -1;
  if (geteuid() != 0) return;
  int any = 0;
  for (unsigned int i = 0; i < p->nmounts; i++) any |= wanted(&p->mounts[i]);
  if (!any) return;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) fail(S_MOUNT, errno, 0, "socketpair for bind sources");
  pid_t boot = getpid();
  pid_t pid = fork();
  if (pid < 0) fail(S_MOUNT, errno, 0, "fork of the bind source opener");
  if (pid == 0) {
    close(sv[0]);
    opener(p, sv[1], procfd, boot);
  }
  close(sv[1]);
  so->pid = pid;
  so->sock = sv[0];
}

/* In the new mount namespace: let the opener in and take the fds. */
void sources_receive(struct plan *p, struct source_opener *so) {
  if (!so->pid) return;
  if (write(so->sock, "1", 1) != 1) fail(S_MOUNT, errno, 0, "bind source opener");
  for (;;) {
    struct src_msg m;
    struct iovec iov = {.iov_base = &m, .iov_len = sizeof m};
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    ssize_t r;
    while ((r = recvmsg(so->sock, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
      ;
    if (r != (ssize_t)sizeof m) fail(S_MOUNT, r < 0 ? errno : EPIPE, 0, "bind source opener died");
    int fd = -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
      memcpy(&fd, CMSG_DATA(c), sizeof(int));
    if (m.index == ~0U) break;
    if (m.index == ~1U) fail(S_MOUNT, m.err, 0, "bind source opener: joining the container's mount namespace");
    if (m.index >= p->nmounts || !wanted(&p->mounts[m.index])) {
      if (fd >= 0) close(fd);
      fail(S_MOUNT, EPROTO, 0, "bind source opener: unexpected record");
    }
    struct mount_op *op = &p->mounts[m.index];
    if (fd < 0) fail2(S_MOUNT, m.err ? m.err : EBADF, op->m->index, op->dest, op->source);
    op->src_fd = fd;
  }
  close(so->sock);
  int st;
  while (waitpid(so->pid, &st, 0) < 0 && errno == EINTR)
    ;
  so->pid = 0;
}
