/* tmpcopyup: before a new tmpfs is attached over a directory, copy what the
 * directory holds into it (runc's extension).  Everything is relative to fds:
 * the source was resolved in-root, nothing is followed. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "init.h"

static int copy_file(int src, const char *name, int dst, const struct stat *st) {
  int in = openat(src, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (in < 0) return -1;
  int out = openat(dst, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st->st_mode & 07777);
  if (out < 0) {
    close(in);
    return -1;
  }
  off_t left = st->st_size;
  while (left > 0) {
    ssize_t n = sendfile(out, in, NULL, left > (1 << 30) ? (1 << 30) : (size_t)left);
    if (n <= 0) break;
    left -= n;
  }
  int r = fchown(out, st->st_uid, st->st_gid) < 0 ? -1 : fchmod(out, st->st_mode & 07777);
  close(in);
  close(out);
  return left > 0 ? -1 : r;
}

/* Copy the content of directory `src` into directory `dst` (both real fds). */
int copy_tree(int src, int dst, int depth) {
  if (depth > 64) {
    errno = ELOOP;
    return -1;
  }
  char buf[8192];
  int dfd = openat(src, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return -1;
  for (;;) {
    long n = syscall(SYS_getdents64, dfd, buf, sizeof buf);
    if (n < 0) goto err;
    if (n == 0) break;
    for (long off = 0; off < n;) {
      struct dirent64 *d = (struct dirent64 *)(buf + off);
      off += d->d_reclen;
      if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, "..")) continue;
      struct stat st;
      if (fstatat(src, d->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) goto err;
      if (S_ISDIR(st.st_mode)) {
        if (mkdirat(dst, d->d_name, st.st_mode & 07777) < 0) goto err;
        int s2 = openat(src, d->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int d2 = openat(dst, d->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int r = (s2 < 0 || d2 < 0) ? -1 : copy_tree(s2, d2, depth + 1);
        if (r == 0) r = fchown(d2, st.st_uid, st.st_gid) < 0 ? -1 : fchmod(d2, st.st_mode & 07777);
        if (s2 >= 0) close(s2);
        if (d2 >= 0) close(d2);
        if (r < 0) goto err;
      } else if (S_ISREG(st.st_mode)) {
        if (copy_file(src, d->d_name, dst, &st) < 0) goto err;
      } else if (S_ISLNK(st.st_mode)) {
        char target[4096];
        ssize_t l = readlinkat(src, d->d_name, target, sizeof target - 1);
        if (l < 0) goto err;
        target[l] = 0;
        if (symlinkat(target, dst, d->d_name) < 0) goto err;
        if (fchownat(dst, d->d_name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0) goto err;
      } else {
        if (mknodat(dst, d->d_name, st.st_mode, st.st_rdev) < 0) goto err;
        if (fchownat(dst, d->d_name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0) goto err;
      }
    }
  }
  close(dfd);
  return 0;
err:;
  int e = errno;
  close(dfd);
  errno = e;
  return -1;
}
