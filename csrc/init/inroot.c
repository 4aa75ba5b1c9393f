/* Resolution of image-controlled paths strictly inside the rootfs (SECURITY G5):
 * openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) from an O_PATH fd of the
 * rootfs, so symlinks and ".." can never leave it, and creation with mkdirat /
 * openat(O_CREAT|O_EXCL|O_NOFOLLOW) relative to an already resolved parent fd.
 * Every step re-resolves from the root fd, assuming a concurrent writer. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
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

/* mkdir -p inside the root; returns an O_PATH fd of the final directory. */
int in_root_mkdir_all(int rootfd, const char *path, unsigned int mode) {
  char buf[4096];
  size_t len = strlen(path);
  if (len >= sizeof buf) {
    errno = ENAMETOOLONG;
    return -1;
  }
  int cur = in_root_open(rootfd, "/", O_PATH | O_DIRECTORY, 0);
  if (cur < 0) return -1;
  size_t i = 0;
  while (i < len) {
    while (i < len && path[i] == '/') i++;
    if (i >= len) break;
    size_t j = i;
    while (j < len && path[j] != '/') j++;
    char comp[256];
    if (j - i >= sizeof comp) {
      close(cur);
      errno = ENAMETOOLONG;
      return -1;
    }
    memcpy(comp, path + i, j - i);
    comp[j - i] = 0;
    if (!strcmp(comp, "..") || !strcmp(comp, ".")) {
      close(cur);
      errno = EINVAL;
      return -1;
    }
    memcpy(buf, path, j);
    buf[j] = 0;
    int fd = in_root_open(rootfd, buf, O_PATH | O_DIRECTORY, 0);
    if (fd < 0 && errno == ENOENT) {
      if (mkdirat(cur, comp, mode) < 0 && errno != EEXIST) {
        int e = errno;
        close(cur);
        errno = e;
        return -1;
      }
      fd = in_root_open(rootfd, buf, O_PATH | O_DIRECTORY, 0);
    }
    int e = errno;
    close(cur);
    if (fd < 0) {
      errno = e;
      return -1;
    }
    cur = fd;
    i = j;
  }
  return cur;
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
