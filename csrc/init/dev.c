/* /dev set-up inside the rootfs (docs/security.md, G5, G9): device nodes created with
 * mknodat relative to an in-root parent fd (or, inside a user namespace, the
 * host node bind-mounted by fd), the /dev symlinks with symlinkat, and the
 * console from a pty allocated on the container's own devpts. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/mount.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>
#include "init.h"

static void bind_host_node(int parent, const char *base, const struct device_op *d, int rootfd) {
  int f = openat(parent, base, O_CREAT | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0644);
  if (f < 0 && errno != EEXIST) fail(S_DEVICE, errno, d->d->index, d->path);
  if (f >= 0) close(f);
  int tfd = in_root_open(rootfd, d->path, O_PATH | O_NOFOLLOW, 0);
  if (tfd < 0) fail(S_DEVICE, errno, d->d->index, d->path);
  struct stat st;
  if (fstat(tfd, &st) < 0 || !S_ISREG(st.st_mode)) fail2(S_DEVICE, EEXIST, d->d->index, d->path, "bind target is not a regular file");
  int tree = (int)syscall(SYS_open_tree, AT_FDCWD, d->path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0) fail2(S_DEVICE, errno, d->d->index, d->path, "opening host device");
  if (fstat(tree, &st) < 0 || (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) ||
      major(st.st_rdev) != d->d->major || minor(st.st_rdev) != d->d->minor)
    fail2(S_DEVICE, EPERM, d->d->index, d->path, "host device does not match the configured node");
  if (syscall(SYS_move_mount, tree, "", tfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    fail(S_DEVICE, errno, d->d->index, d->path);
  close(tree);
  close(tfd);
}

void do_devices(struct plan *p, int rootfd) {
  for (unsigned int i = 0; i < p->ndevices; i++) {
    const struct device_op *d = &p->devices[i];
    const char *base;
    int parent = in_root_parent(rootfd, d->path, &base);
    if (parent < 0) fail(S_DEVICE, errno, d->d->index, d->path);
    if (d->d->bind) {
      bind_host_node(parent, base, d, rootfd);
      close(parent);
      continue;
    }
    mode_t type = d->d->type == 'b' ? S_IFBLK : d->d->type == 'p' ? S_IFIFO : S_IFCHR;
    /* replace whatever the image has there (runc does the same) */
    if (unlinkat(parent, base, 0) < 0 && errno != ENOENT) fail(S_DEVICE, errno, d->d->index, d->path);
    if (mknodat(parent, base, type | (d->d->mode & 07777), makedev(d->d->major, d->d->minor)) < 0)
      fail(S_DEVICE, errno, d->d->index, d->path);
    if (fchownat(parent, base, d->d->uid, d->d->gid, AT_SYMLINK_NOFOLLOW) < 0) fail(S_DEVICE, errno, d->d->index, d->path);
    if (fchmodat(parent, base, d->d->mode & 07777, 0) < 0) fail(S_DEVICE, errno, d->d->index, d->path);
    close(parent);
  }
  if (!p->dev_symlinks) return;
  static const char *links[][2] = {{"/proc/self/fd", "fd"},   {"/proc/self/fd/0", "stdin"},
                                   {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
                                   {"pts/ptmx", "ptmx"}};
  int dev = in_root_mkdir_all(rootfd, "/dev", 0755);
  if (dev < 0) fail(S_DEVSYMLINK, errno, 0, "/dev");
  for (unsigned int i = 0; i < sizeof links / sizeof links[0]; i++) {
    if (i == 4) unlinkat(dev, "ptmx", 0); /* /dev/ptmx must be the pts/ptmx link */
    if (symlinkat(links[i][0], dev, links[i][1]) < 0 && errno != EEXIST) fail(S_DEVSYMLINK, errno, i, links[i][1]);
  }
  if (access("/proc/kcore", F_OK) == 0 && symlinkat("/proc/kcore", dev, "core") < 0 && errno != EEXIST)
    fail(S_DEVSYMLINK, errno, 0, "core");
  close(dev);
}

/* Allocate the console on the container's devpts, hand the master to the
 * parent, (for the init) bind the peer on /dev/console, and make it the
 * stdio and controlling terminal. */
void alloc_console(struct plan *p, int rootfd, int bind_console) {
  int master = in_root_open(rootfd, "/dev/pts/ptmx", O_RDWR | O_NOCTTY, RESOLVE_NO_SYMLINKS);
  if (master < 0) fail(S_CONSOLE, errno, 0, "/dev/pts/ptmx");
  struct statfs sf;
  if (fstatfs(master, &sf) < 0 || sf.f_type != DEVPTS_SUPER_MAGIC) fail(S_CONSOLE, EPERM, 0, "/dev/pts/ptmx is not on devpts");
  int unlock = 0;
  if (ioctl(master, TIOCSPTLCK, &unlock) < 0) fail(S_CONSOLE, errno, 0, "unlockpt");
  int peer = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (peer < 0) fail(S_CONSOLE, errno, 0, "TIOCGPTPEER");
  struct stat st;
  if (fstat(peer, &st) < 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) != 136)
    fail(S_CONSOLE, EPERM, 0, "pty peer is not a devpts node");
  if (p->rows || p->cols) {
    struct winsize ws = {.ws_row = (unsigned short)p->rows, .ws_col = (unsigned short)p->cols};
    if (ioctl(master, TIOCSWINSZ, &ws) < 0) fail(S_CONSOLE, errno, 0, "TIOCSWINSZ");
  }
  if (bind_console) {
    /* /dev/console: an empty file created here, never one the image provides */
    int dev = in_root_mkdir_all(rootfd, "/dev", 0755);
    if (dev < 0) fail(S_CONSOLE, errno, 0, "/dev");
    if (unlinkat(dev, "console", 0) < 0 && errno != ENOENT) fail(S_CONSOLE, errno, 0, "/dev/console");
    int f = openat(dev, "console", O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0600);
    if (f < 0) fail(S_CONSOLE, errno, 0, "/dev/console");
    close(f);
    int tfd = openat(dev, "console", O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (tfd < 0) fail(S_CONSOLE, errno, 0, "/dev/console");
    int tree = (int)syscall(SYS_open_tree, peer, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
    if (tree < 0) fail(S_CONSOLE, errno, 0, "open_tree of the pty peer");
    if (syscall(SYS_move_mount, tree, "", tfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
      fail(S_CONSOLE, errno, 0, "/dev/console");
    close(tree);
    close(tfd);
    close(dev);
  }
  if (send_msg(M_PTY, 0, master) < 0) fail(S_CONSOLE, errno, 0, "sending the pty master");
  close(master);
  for (int i = 0; i < 3; i++)
    if (dup2(peer, i) < 0) fail(S_CONSOLE, errno, 0, "dup2");
  if (ioctl(0, TIOCSCTTY, 0) < 0) fail(S_CONSOLE, errno, 0, "TIOCSCTTY");
  close(peer);
}

void do_console(struct plan *p, int rootfd) {
  if (p->terminal) alloc_console(p, rootfd, 1);
}

/* As runc (fixStdioPermissions): before the credentials change, stdio is
 * given to the process user (uid only; the group stays, e.g. devpts' tty
 * group), so that a non-root process can use its terminal and reopen its
 * stdio through /proc/self/fd.  Unlike runc, only what belongs to the
 * container's own stdio is changed: a pty slave, an anonymous pipe or a
 * socket; a host file or device the caller passed as stdio keeps its owner.
 * Failures the kernel gives for unmapped ids or read-only mounts are
 * ignored, as runc does. */
void chown_stdio(struct plan *p) {
  if (!p->has_user) return;
  for (int fd = 0; fd < 3; fd++) {
    struct stat st;
    struct statfs sf;
    if (fstat(fd, &st) < 0 || fstatfs(fd, &sf) < 0) continue;
    if (st.st_uid == p->uid) continue;
    int ours = (S_ISCHR(st.st_mode) && sf.f_type == DEVPTS_SUPER_MAGIC) ||
               (S_ISFIFO(st.st_mode) && sf.f_type == PIPEFS_MAGIC) ||
               (S_ISSOCK(st.st_mode) && sf.f_type == SOCKFS_MAGIC);
    if (!ours) continue;
    if (fchown(fd, p->uid, (gid_t)-1) < 0 && errno != EINVAL && errno != EPERM && errno != EROFS)
      fail(S_CONSOLE, errno, (unsigned int)fd, "chown of stdio to the process user");
  }
}
