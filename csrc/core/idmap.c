/* Idmapped mounts, prepared by the parent (host root: mount_setattr with
 * MOUNT_ATTR_IDMAP needs CAP_SYS_ADMIN over the source filesystem, which
 * the container's init no longer has).  The detached tree's fd is then
 * handed to the container's bootstrap, which attaches it in-root. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "native.h"

/* recursive: bit 0 clones the whole tree (rbind), bit 1 idmaps every mount
 * of it (ridmap) rather than only the top one (idmap). */
int ocirun_idmapped_tree(const char *source, int recursive, int userns_fd) {
  unsigned int fl = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | ((recursive & 1) ? AT_RECURSIVE : 0);
  int tree = (int)syscall(SYS_open_tree, AT_FDCWD, source, fl);
  if (tree < 0) return -errno;
  struct mount_attr a;
  memset(&a, 0, sizeof a);
  a.attr_set = MOUNT_ATTR_IDMAP;
  a.userns_fd = (unsigned long long)userns_fd;
  if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | ((recursive & 2) ? AT_RECURSIVE : 0), &a, sizeof a) < 0) {
    int e = errno;
    close(tree);
    return -e;
  }
  return tree;
}

static int write_file(const char *path, const char *data) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n = write(fd, data, strlen(data));
  int e = errno;
  close(fd);
  return n == (ssize_t)strlen(data) ? 0 : -e;
}

/* A user namespace with the given maps, for a mount's own uid/gidMappings:
 * a child unshares it and waits; we write its maps and keep an fd. */
int ocirun_userns_fd(const char *uid_map, const char *gid_map) {
  int gate[2];
  if (pipe2(gate, O_CLOEXEC) < 0) return -errno;
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(gate[0]);
    close(gate[1]);
    return -e;
  }
  if (pid == 0) {
    char c;
    close(gate[1]);
    if (unshare(CLONE_NEWUSER) < 0) _exit(1);
    /* tell the parent, then wait until it is done with us */
    if (read(gate[0], &c, 1) < 0) _exit(1);
    _exit(0);
  }
  close(gate[0]);
  char path[64];
  int r = 0, fd = -1;
  /* wait for the unshare: the ns link changes from ours */
  char self_ns[64] = {0}, child_ns[64] = {0};
  if (readlink("/proc/self/ns/user", self_ns, sizeof self_ns - 1) < 0) r = -errno;
  snprintf(path, sizeof path, "/proc/%d/ns/user", pid);
  for (int i = 0; r == 0 && i < 10000; i++) {
    memset(child_ns, 0, sizeof child_ns);
    if (readlink(path, child_ns, sizeof child_ns - 1) < 0) {
      r = -errno;
      break;
    }
    if (strcmp(self_ns, child_ns)) break;
    usleep(50);
  }
  if (r == 0) {
    snprintf(path, sizeof path, "/proc/%d/setgroups", pid);
    r = write_file(path, "deny");
  }
  if (r == 0) {
    snprintf(path, sizeof path, "/proc/%d/uid_map", pid);
    r = write_file(path, uid_map);
  }
  if (r == 0) {
    snprintf(path, sizeof path, "/proc/%d/gid_map", pid);
    r = write_file(path, gid_map);
  }
  if (r == 0) {
    snprintf(path, sizeof path, "/proc/%d/ns/user", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) r = -errno;
  }
  close(gate[1]);
  kill(pid, SIGKILL);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
    ;
  return r < 0 ? r : fd;
}
