/* Failure and message reporting to the parent over the SEQPACKET sync socket. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "init.h"

int sync_fd = -1;

/* The init never outlives a failure.  A seccomp filter loaded for the
 * container may refuse even exit_group (libc's _exit then retries forever);
 * a fault is delivered by the kernel without any syscall and is fatal even
 * for the pid 1 of a pid namespace (the forced signal clears its
 * unkillable flag).  Non-dumpable, so no core is written. */
void die(int code) {
  syscall(SYS_exit_group, code);
  for (;;) __builtin_trap();
}

/* Decimal formatting without stdio. */
void itoa_signed(int v, char *out) {
  char tmp[16];
  int n = 0, neg = v < 0;
  unsigned int u = neg ? (unsigned int)(-(long)v) : (unsigned int)v;
  do tmp[n++] = (char)('0' + u % 10); while ((u /= 10) && n < 15);
  int k = 0;
  if (neg) out[k++] = '-';
  while (n) out[k++] = tmp[--n];
  out[k] = 0;
}


void str_copy(char *dst, size_t size, const char *src) {
  size_t n = 0;
  if (!src) src = "";
  while (n + 1 < size && src[n]) {
    dst[n] = src[n];
    n++;
  }
  dst[n] = 0;
}

/* One datagram on sock, with fd attached as SCM_RIGHTS when fd >= 0;
 * retried on EINTR.  Returns what sendmsg returned. */
ssize_t send_with_fd(int sock, const void *buf, size_t len, int fd) {
  struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  char cbuf[CMSG_SPACE(sizeof(int))];
  if (fd >= 0) {
    memset(cbuf, 0, sizeof cbuf);
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  ssize_t r;
  while ((r = sendmsg(sock, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
    ;
  return r;
}

static int send_raw(struct ocirun_msg *m, int fd) {
  return send_with_fd(sync_fd, m, OCIRUN_MSG_HDR + strlen(m->detail) + 1, fd) < 0 ? -1 : 0;
}

int send_msg(unsigned int type, unsigned int value, int fd) {
  struct ocirun_msg m;
  memset(&m, 0, OCIRUN_MSG_HDR + 1);
  m.type = type;
  m.value = value;
  return send_raw(&m, fd);
}

/* Wait for one message of type `want` from the parent.  EOF or anything else
 * means the parent gave up: exit quietly, it already knows. */
int recv_msg(unsigned int want) {
  struct ocirun_msg m;
  ssize_t r;
  while ((r = recv(sync_fd, &m, sizeof m, 0)) < 0 && errno == EINTR)
    ;
  if (r < (ssize_t)OCIRUN_MSG_HDR || m.type != want) die(1);
  return (int)m.value;
}

/* One message from the parent, with at most one fd (SCM_RIGHTS). */
int recv_msg_fd(unsigned int *type, unsigned int *value, int *fd) {
  struct ocirun_msg m;
  char cbuf[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {.iov_base = &m, .iov_len = sizeof m};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  ssize_t r;
  while ((r = recvmsg(sync_fd, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
    ;
  if (r < (ssize_t)OCIRUN_MSG_HDR) return -1;
  *type = m.type;
  *value = m.value;
  *fd = -1;
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
    memcpy(fd, CMSG_DATA(c), sizeof(int));
  return 0;
}

/* Like recv_msg, keeping the NUL-terminated payload (the hook state). */
int recv_msg_detail(unsigned int want, char *buf, size_t size) {
  ssize_t r;
  while ((r = recv(sync_fd, buf, size - 1, 0)) < 0 && errno == EINTR)
    ;
  if (r < (ssize_t)OCIRUN_MSG_HDR) die(1);
  buf[r] = 0;
  struct ocirun_msg *m = (struct ocirun_msg *)buf;
  if (m->type != want) die(1);
  return (int)m->value;
}

struct ocirun_msg *report_page;

void fail2(int step, int err, unsigned int index, const char *a, const char *b) {
  struct ocirun_msg m;
  memset(&m, 0, sizeof m);
  m.type = M_ERROR;
  m.err = err;
  m.step = (unsigned int)step;
  m.value = index;
  str_copy(m.detail, sizeof m.detail, a);
  if (b) {
    size_t n = strlen(m.detail);
    str_copy(m.detail + n, sizeof m.detail - n, "\n");
    n = strlen(m.detail);
    str_copy(m.detail + n, sizeof m.detail - n, b);
  }
  /* plain memory writes: no filter can refuse them (the type last, so a
   * reader never sees a half-written record as valid) */
  if (report_page) {
    memcpy(report_page->detail, m.detail, sizeof m.detail);
    report_page->err = m.err;
    report_page->step = m.step;
    report_page->value = m.value;
    __atomic_store_n(&report_page->type, (unsigned int)M_ERROR, __ATOMIC_RELEASE);
  }
  send_raw(&m, -1);
  if (fifo_write_fd >= 0) {
    /* `start` is reading the fifo: it reports what failed */
    /* one write, under PIPE_BUF: the reader never sees the 'E' alone */
    char buf[1 + sizeof m.detail];
    size_t n = strlen(m.detail);
    buf[0] = 'E';
    memcpy(buf + 1, m.detail, n);
    ssize_t w = write(fifo_write_fd, buf, n + 1);
    (void)w;
  }
  die(1);
}

void fail(int step, int err, unsigned int index, const char *detail) {
  fail2(step, err, index, detail, NULL);
}

void warn_parent(const char *detail) {
  struct ocirun_msg m;
  memset(&m, 0, OCIRUN_MSG_HDR);
  m.type = M_WARN;
  str_copy(m.detail, sizeof m.detail, detail);
  send_raw(&m, -1);
}
