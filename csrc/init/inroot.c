/* Resolution of image-controlled paths strictly inside the rootfs (docs/security.md, G5):
 * openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) from an O_PATH fd of the
 * rootfs, so symlinks and ".." can never leave it, and creation with mkdirat /
 * openat(O_CREAT|O_EXCL|O_NOFOLLOW) relative to an already resolved parent fd.
 * Every step re-resolves from the root fd, assuming a concurrent writer. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "init.h"

int in_root_open(int rootfd, const char *path, int flags, unsigned long long resolve) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (unsigned long long)(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | resolve;
  while (*path == '/') path++;
  if (!*path) path = ".";
  long r;
  do
    r = syscall(SYS_openat2, rootfd, path, &how, sizeof how);
  while (r < 0 && errno == EAGAIN);
  return (int)r;
}

/* A userspace walk of `path` from the root fd, the filepath-securejoin /
 * libpathrs MkdirAll model: every component is opened with O_NOFOLLOW relative
 * to an fd already verified to be inside the root; a symlink is read and its
 * target walked again (absolute targets from the root); ".." pops a stack of
 * fds and can never climb above the root; missing components are created
 * (directories, or with WALK_FILE an empty file for the last one).  Returns an
 * O_PATH fd of the final component. */
#define WALK_MAX_DEPTH 128
#define WALK_MAX_LINKS 40

struct walk {
  char buf[8192]; /* pending components, '/' separated, consumed from the front */
  size_t off, len;
};

static int push_front(struct walk *w, const char *s) {
  size_t n = strlen(s);
  size_t rest = w->len - w->off;
  if (n + 1 + rest >= sizeof w->buf) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memmove(w->buf + n + 1, w->buf + w->off, rest);
  memcpy(w->buf, s, n);
  w->buf[n] = '/';
  w->off = 0;
  w->len = n + 1 + rest;
  return 0;
}

static int next_comp(struct walk *w, char *comp, size_t size) {
  while (w->off < w->len && w->buf[w->off] == '/') w->off++;
  if (w->off >= w->len) return 0;
  size_t j = w->off;
  while (j < w->len && w->buf[j] != '/') j++;
  if (j - w->off >= size) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(comp, w->buf + w->off, j - w->off);
  comp[j - w->off] = 0;
  w->off = j;
  return 1;
}

static int at_end(struct walk *w) {
  size_t i = w->off;
  while (i < w->len && w->buf[i] == '/') i++;
  return i >= w->len;
}

int in_root_walk(int rootfd, const char *path, int flags, unsigned int mode) {
  static struct walk w;
  int stack[WALK_MAX_DEPTH];
  int depth = 0, links = 0, err = 0;
  w.off = w.len = 0;
  if (push_front(&w, path) < 0) return -1;
  stack[0] = dup(rootfd);
  if (stack[0] < 0) return -1;
  char comp[256];
  int r;
  while ((r = next_comp(&w, comp, sizeof comp)) > 0) {
    int cur = stack[depth];
    if (!strcmp(comp, ".")) continue;
    if (!strcmp(comp, "..")) {
      if (depth > 0) close(stack[depth--]);
      continue;
    }
    int last = at_end(&w);
    int fd = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
      if (last && (flags & WALK_FILE)) {
        int f = openat(cur, comp, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, mode);
        if (f >= 0) close(f);
        else if (errno != EEXIST) { err = errno; goto out; }
      } else if (mkdirat(cur, comp, (flags & WALK_FILE) ? 0755 : mode) < 0 && errno != EEXIST) {
        err = errno;
        goto out;
      }
      fd = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) { err = errno; goto out; }
    struct stat st;
    if (fstat(fd, &st) < 0) { err = errno; close(fd); goto out; }
    if (S_ISLNK(st.st_mode)) {
      char target[4096];
      ssize_t n = readlinkat(fd, "", target, sizeof target - 1);
      close(fd);
      if (n < 0) { err = errno; goto out; }
      target[n] = 0;
      /* G5: procfs's magic links (fd/N, cwd, root, exe, ns/…) read as the
       * host path of what they point at: never follow one (RESOLVE_NO_
       * MAGICLINKS).  procfs's plain symlinks (self, thread-self, mounts,
       * net) are relative. */
      struct statfs dsf;
      if (target[0] != '.' && !(target[0] >= '0' && target[0] <= '9') && strncmp(target, "self", 4) &&
          fstatfs(cur, &dsf) == 0 && dsf.f_type == PROC_SUPER_MAGIC) {
        err = ELOOP;
        goto out;
      }
      if (++links > WALK_MAX_LINKS) { err = ELOOP; goto out; }
      if (push_front(&w, target) < 0) { err = errno; goto out; }
      if (target[0] == '/')
        while (depth > 0) close(stack[depth--]);
      continue;
    }
    if (!last && !S_ISDIR(st.st_mode)) { close(fd); err = ENOTDIR; goto out; }
    if (depth + 1 >= WALK_MAX_DEPTH) { close(fd); err = ENAMETOOLONG; goto out; }
    stack[++depth] = fd;
  }
  if (r < 0) err = errno;
out:
  if (err) {
    while (depth >= 0) close(stack[depth--]);
    errno = err;
    return -1;
  }
  for (int i = 0; i < depth; i++) close(stack[i]);
  return stack[depth];
}

/* mkdir -p inside the root; returns an O_PATH fd of the final directory. */
int in_root_mkdir_all(int rootfd, const char *path, unsigned int mode) {
  int fd = in_root_walk(rootfd, path, 0, mode);
  if (fd < 0) return -1;
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
    close(fd);
    errno = ENOTDIR;
    return -1;
  }
  return fd;
}

/* Create (mkdir -p) and open the parent of `path` in root; *base gets the last
 * component.  Returns an O_PATH fd of the parent directory. */
int in_root_parent(int rootfd, const char *path, const char **base) {
  char buf[4096];
  size_t len = strlen(path);
  while (len > 1 && path[len - 1] == '/') len--;
  if (len >= sizeof buf) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(buf, path, len);
  buf[len] = 0;
  char *slash = strrchr(buf, '/');
  const char *b = slash ? path + (slash - buf) + 1 : path;
  if (slash) *slash = 0;
  if (!*b || !strcmp(b, ".") || !strcmp(b, "..")) {
    errno = EINVAL;
    return -1;
  }
  *base = b;
  return in_root_mkdir_all(rootfd, buf, 0755);
}
