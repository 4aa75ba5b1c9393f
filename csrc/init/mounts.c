/* Root filesystem, mounts, masked/read-only paths and the root switch.
 *
 * Every mount target is resolved in-root (inroot.c), checked with fstat, and
 * mounted *by fd* with the new mount API (open_tree/fsopen/fsmount +
 * move_mount with MOVE_MOUNT_T_EMPTY_PATH), so a path is never re-resolved
 * between check and use (docs/security.md, G6).  Mount attributes are set on the
 * detached tree before it is attached, and propagation through the same fd. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/mount.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "init.h"

static int sys_open_tree(int dfd, const char *path, unsigned int flags) {
  return (int)syscall(SYS_open_tree, dfd, path, flags);
}
static int sys_move_mount(int fd, int tfd) {
  return (int)syscall(SYS_move_mount, fd, "", tfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
}
static int sys_setattr(int fd, const char *path, unsigned int flags, unsigned long long set,
                       unsigned long long clr, unsigned long long prop) {
  struct mount_attr a;
  memset(&a, 0, sizeof a);
  a.attr_set = set;
  a.attr_clr = clr;
  a.propagation = prop;
  return (int)syscall(SYS_mount_setattr, fd, path, flags, &a, sizeof a);
}
static int sys_fsopen(const char *fs) { return (int)syscall(SYS_fsopen, fs, FSOPEN_CLOEXEC); }
static int sys_fsconfig(int fd, unsigned int cmd, const char *key, const void *val, int aux) {
  return (int)syscall(SYS_fsconfig, fd, cmd, key, val, aux);
}
static int sys_fsmount(int fd, unsigned int attrs) {
  return (int)syscall(SYS_fsmount, fd, FSMOUNT_CLOEXEC, attrs);
}

/* MS_* per-mount flags -> MOUNT_ATTR_* */
static void ms_to_attr(unsigned long long f, unsigned long long *set, unsigned long long *clr) {
  *set = *clr = 0;
  if (f & MS_RDONLY) *set |= MOUNT_ATTR_RDONLY;
  if (f & MS_NOSUID) *set |= MOUNT_ATTR_NOSUID;
  if (f & MS_NODEV) *set |= MOUNT_ATTR_NODEV;
  if (f & MS_NOEXEC) *set |= MOUNT_ATTR_NOEXEC;
  if (f & MS_NODIRATIME) *set |= MOUNT_ATTR_NODIRATIME;
  if (f & (MS_NOATIME | MS_RELATIME | MS_STRICTATIME)) {
    *clr |= MOUNT_ATTR__ATIME;
    if (f & MS_NOATIME) *set |= MOUNT_ATTR_NOATIME;
    else if (f & MS_STRICTATIME) *set |= MOUNT_ATTR_STRICTATIME;
    else *set |= MOUNT_ATTR_RELATIME;
  }
}

/* Unescape a mountinfo field in place (\040 etc). */
static void unescape(char *s) {
  char *o = s;
  while (*s) {
    if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
      *o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
      s += 4;
    } else
      *o++ = *s++;
  }
  *o = 0;
}

static char mountinfo[1 << 20];

/* The mount point that contains `path` (longest prefix in mountinfo). */
static int parent_mount(const char *path, char *out, size_t size) {
  int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t n = 0;
  ssize_t r;
  while (n < sizeof mountinfo - 1 && (r = read(fd, mountinfo + n, sizeof mountinfo - 1 - n)) > 0) n += (size_t)r;
  close(fd);
  mountinfo[n] = 0;
  size_t best = 0;
  str_copy(out, size, "/");
  char *line = mountinfo;
  while (line && *line) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    /* field 5 is the mount point */
    char *f = line;
    for (int i = 0; i < 4 && f; i++) {
      f = strchr(f, ' ');
      if (f) f++;
    }
    if (f) {
      char *end = strchr(f, ' ');
      if (end) *end = 0;
      unescape(f);
      size_t l = strlen(f);
      if (l > best && !strncmp(path, f, l) && (path[l] == '/' || path[l] == 0 || l == 1)) {
        best = l;
        str_copy(out, size, f);
      }
    }
    line = nl ? nl + 1 : NULL;
  }
  return 0;
}

/* Whether the container has a mount namespace of its own (new or joined).
 * Without one (the config has no `mount` namespace, as runc allows) it shares
 * the runtime's: the rootfs is bind-mounted on itself there, made private (so
 * that nothing mounted below it propagates anywhere), the config's mounts are
 * made below it, and the init chroots into it.  The host's own mounts are
 * never changed (runc makes the host's "/" rslave); the runtime detaches the
 * bind, and everything below it, at delete. */
int has_mount_ns(const struct plan *p) {
  if (p->ns_new & CLONE_NEWNS) return 1;
  for (unsigned int i = 0; i < p->njoins; i++)
    if (p->joins[i].nstype == CLONE_NEWNS) return 1;
  return 0;
}

void rootfs_prepare(struct plan *p, int *rootfd) {
  if (!has_mount_ns(p)) {
    if (mount(p->rootfs, p->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0) fail(S_ROOTFS, errno, 0, p->rootfs);
    if (mount(NULL, p->rootfs, NULL, MS_PRIVATE | MS_REC, NULL) < 0) fail(S_ROOTPROP, errno, 0, p->rootfs);
    *rootfd = open(p->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (*rootfd < 0) fail(S_ROOTFS, errno, 0, p->rootfs);
    return;
  }
  unsigned long flags = p->rootprop ? (unsigned long)p->rootprop : (MS_SLAVE | MS_REC);
  if (mount(NULL, "/", NULL, flags, NULL) < 0) fail(S_ROOTPROP, errno, 0, "/");
  char parent[4096];
  if (parent_mount(p->rootfs, parent, sizeof parent) == 0)
    if (mount(NULL, parent, NULL, MS_PRIVATE, NULL) < 0) fail(S_ROOTPROP, errno, 0, parent);
  if (mount(p->rootfs, p->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0) fail(S_ROOTFS, errno, 0, p->rootfs);
  *rootfd = open(p->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (*rootfd < 0) fail(S_ROOTFS, errno, 0, p->rootfs);
}

/* Read the kernel's message for a failed fsconfig into buf. */
static void fs_log(int fsfd, char *buf, size_t size) {
  buf[0] = 0;
  ssize_t r = read(fsfd, buf, size - 1);
  if (r > 0) buf[r] = 0;
  else buf[0] = 0;
  /* one line: the kernel writes "e <message>\n" (level, text, newline) */
  size_t n = strlen(buf);
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = 0;
  if ((buf[0] == 'e' || buf[0] == 'w' || buf[0] == 'i') && buf[1] == ' ') memmove(buf, buf + 2, n - 1);
  for (char *c = buf; *c; c++)
    if (*c == '\n') *c = ' ';
}

/* G7: what a destination resolved to may not lie inside /proc unless the
 * config named a path there itself (plan.py allows only /proc and the lxcfs
 * list): an image symlink such as /data -> /proc/sys/kernel must not carry a
 * mount into procfs (runc: "cannot be mounted because it is inside /proc"). */
static void refuse_redirect_into_proc(int tfd, const struct mount_op *op, unsigned int step) {
  struct statfs sf;
  if (fstatfs(tfd, &sf) < 0) fail2(step, errno, op->m->index, op->dest, "statfs of mount destination");
  int named = !strcmp(op->dest, "/proc") || !strncmp(op->dest, "/proc/", 6);
  if (sf.f_type == PROC_SUPER_MAGIC && !named)
    fail2(step, EPERM, op->m->index, op->dest, "a symlink leads inside /proc, which cannot be mounted on");
}

static int open_target_dir(int rootfd, const struct mount_op *op, unsigned int step) {
  int nofollow = (op->m->flags & OCIRUN_MNT_NOFOLLOW) != 0;
  int fd = in_root_open(rootfd, op->dest, O_PATH | O_DIRECTORY, nofollow ? RESOLVE_NO_SYMLINKS : 0);
  if (fd < 0 && errno == ENOENT) {
    fd = in_root_mkdir_all(rootfd, op->dest, 0755);
    if (fd >= 0 && nofollow) {
      close(fd);
      fd = in_root_open(rootfd, op->dest, O_PATH | O_DIRECTORY, RESOLVE_NO_SYMLINKS);
    }
  }
  if (fd < 0) {
    if (errno == ELOOP && nofollow) fail2(step, errno, op->m->index, op->dest, "destination must be a directory, not a symlink");
    fail2(step, errno, op->m->index, op->dest, "creating mount destination");
  }
  refuse_redirect_into_proc(fd, op, step);
  return fd;
}

static void set_recursive(const struct mount_op *op, int mfd) {
  if ((op->m->attr_set || op->m->attr_clr) &&
      sys_setattr(mfd, "", AT_EMPTY_PATH | AT_RECURSIVE, op->m->attr_set, op->m->attr_clr, 0) < 0)
    fail2(S_MOUNT, errno, op->m->index, op->dest, "mount_setattr (recursive options)");
}

static void set_propagation(const struct mount_op *op, int mfd) {
  if (!op->m->propagation) return;
  unsigned int fl = AT_EMPTY_PATH | ((op->m->flags & OCIRUN_MNT_REC_PROP) ? AT_RECURSIVE : 0);
  if (sys_setattr(mfd, "", fl, 0, 0, op->m->propagation) < 0)
    fail2(S_MOUNT, errno, op->m->index, op->dest, "setting mount propagation");
}

static void mount_bind(int rootfd, const struct mount_op *op) {
  unsigned int rec = (op->m->flags & OCIRUN_MNT_REC_BIND) ? AT_RECURSIVE : 0;
  int tree;
  if (op->m->flags & OCIRUN_MNT_IDMAP) {
    tree = op->idmap_fd; /* prepared by the parent */
    if (tree < 0) fail2(S_MOUNT, EBADF, op->m->index, op->dest, "no idmapped tree from the runtime");
  } else if (op->src_fd >= 0) {
    /* opened with the runtime's credentials (sources.c) */
    tree = sys_open_tree(op->src_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | rec);
  } else {
    tree = sys_open_tree(AT_FDCWD, op->source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec);
  }
  if (tree < 0) fail2(S_MOUNT, errno, op->m->index, op->dest, op->source);
  struct stat st, tst;
  if (fstat(tree, &st) < 0) fail2(S_MOUNT, errno, op->m->index, op->dest, op->source);
  if (op->m->flags & OCIRUN_MNT_SRC_PROC) {
    struct statfs sf;
    if (fstatfs(tree, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC)
      fail2(S_MOUNT, EPERM, op->m->index, op->dest, "bind source for /proc is not procfs");
  }
  int tfd;
  if (S_ISDIR(st.st_mode)) {
    tfd = open_target_dir(rootfd, op, S_MOUNT);
  } else {
    tfd = in_root_walk(rootfd, op->dest, WALK_FILE, 0644);
    if (tfd < 0) fail2(S_MOUNT, errno, op->m->index, op->dest, "creating mount destination");
    refuse_redirect_into_proc(tfd, op, S_MOUNT);
  }
  if (fstat(tfd, &tst) < 0) fail2(S_MOUNT, errno, op->m->index, op->dest, "stat of mount destination");
  if (S_ISDIR(st.st_mode) != S_ISDIR(tst.st_mode))
    fail2(S_MOUNT, S_ISDIR(st.st_mode) ? ENOTDIR : EISDIR, op->m->index, op->dest,
          "source and destination are not both directories or both files");
  unsigned long long set, clr;
  ms_to_attr(op->m->flags, &set, &clr);
  if ((set || clr) && sys_setattr(tree, "", AT_EMPTY_PATH, set, clr, 0) < 0)
    fail2(S_MOUNT, errno, op->m->index, op->dest, "mount_setattr");
  set_recursive(op, tree);
  if (sys_move_mount(tree, tfd) < 0) fail2(S_MOUNT, errno, op->m->index, op->dest, "move_mount");
  set_propagation(op, tree);
  close(tfd);
  close(tree);
  if (op->src_fd >= 0) close(op->src_fd);
}

/* Configure a filesystem context from a comma separated option string. */
static void fs_configure(int fsfd, const struct mount_op *op, char *data) {
  char logbuf[512];
  if (op->source[0] && sys_fsconfig(fsfd, FSCONFIG_SET_STRING, "source", op->source, 0) < 0) {
    int e = errno;
    fs_log(fsfd, logbuf, sizeof logbuf);
    fail2(S_MOUNT, e, op->m->index, op->dest, logbuf[0] ? logbuf : "fsconfig source");
  }
  char *s = data;
  while (s && *s) {
    char *comma = strchr(s, ',');
    if (comma) *comma = 0;
    if (*s) {
      char *eq = strchr(s, '=');
      int r;
      if (eq) {
        *eq = 0;
        r = sys_fsconfig(fsfd, FSCONFIG_SET_STRING, s, eq + 1, 0);
        *eq = '=';
      } else
        r = sys_fsconfig(fsfd, FSCONFIG_SET_FLAG, s, NULL, 0);
      if (r < 0) {
        int e = errno;
        fs_log(fsfd, logbuf, sizeof logbuf);
        char msg[600];
        str_copy(msg, sizeof msg, "option ");
        size_t n = strlen(msg);
        str_copy(msg + n, sizeof msg - n, s);
        n = strlen(msg);
        str_copy(msg + n, sizeof msg - n, logbuf[0] ? ": " : "");
        n = strlen(msg);
        str_copy(msg + n, sizeof msg - n, logbuf);
        fail2(S_MOUNT, e, op->m->index, op->dest, msg);
      }
    }
    s = comma ? comma + 1 : NULL;
  }
}

static struct {
  const struct mount_op *op;
  int fd;
} deferred[64];
static unsigned int ndeferred;

/* As runc: without a network namespace of its own, a user namespace cannot
 * mount sysfs (EPERM, from fsopen on recent kernels, else at create): bind
 * the host's /sys.  The host's /sys has submounts (cgroup, debugfs, …): ro,
 * nosuid, nodev, noexec must hold for every one of them, not just the top;
 * atime is left alone (a locked submount refuses a change of it). */
static void sysfs_bind_fallback(int rootfd, const struct mount_op *op) {
  struct rec_mount rm = *op->m;
  rm.kind = MK_BIND;
  rm.flags |= OCIRUN_MNT_REC_BIND;
  unsigned long long aset, aclr;
  ms_to_attr(rm.flags, &aset, &aclr);
  rm.attr_set |= aset & (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
  struct mount_op b = *op;
  b.m = &rm;
  b.source = "/sys";
  mount_bind(rootfd, &b);
  /* G17: the host's /sys brings the host's cgroup hierarchies along, roots
   * and all; cover them with an empty read-only tmpfs (a cgroup mount of the
   * config's, made later, goes on top of it with the container's own) */
  char path[4200];
  str_copy(path, sizeof path, op->dest);
  str_copy(path + strlen(path), sizeof path - strlen(path), "/fs/cgroup");
  int tfd = in_root_open(rootfd, path, O_PATH | O_DIRECTORY, RESOLVE_NO_SYMLINKS);
  if (tfd < 0) return; /* the host has no /sys/fs/cgroup */
  int fs = sys_fsopen("tmpfs");
  if (fs < 0 || sys_fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0555", 0) < 0 ||
      sys_fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    fail2(S_MOUNT, errno, op->m->index, op->dest, "covering the host's cgroups under the bound /sys");
  int mfd = sys_fsmount(fs, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
  if (mfd < 0 || sys_move_mount(mfd, tfd) < 0)
    fail2(S_MOUNT, errno, op->m->index, op->dest, "covering the host's cgroups under the bound /sys");
  close(mfd);
  close(fs);
  close(tfd);
}

static void mount_fs(int rootfd, const struct mount_op *op, int has_netns) {
  char data[4096];
  char logbuf[512];
  int sysfs_userns = !strcmp(op->fstype, "sysfs") && !has_netns;
  str_copy(data, sizeof data, op->data);
  int tfd = open_target_dir(rootfd, op, S_MOUNT);
  int fsfd = sys_fsopen(op->fstype);
  if (fsfd < 0 && errno == EPERM && sysfs_userns) {
    close(tfd);
    sysfs_bind_fallback(rootfd, op);
    return;
  }
  if (fsfd < 0) fail2(S_MOUNT, errno, op->m->index, op->dest, errno == ENODEV ? "unknown filesystem type" : "fsopen");
  fs_configure(fsfd, op, data);
  if (sys_fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
    int e = errno;
    fs_log(fsfd, logbuf, sizeof logbuf);
    if (e == EPERM && sysfs_userns) {
      close(fsfd);
      close(tfd);
      sysfs_bind_fallback(rootfd, op);
      return;
    }
    fail2(S_MOUNT, e, op->m->index, op->dest, logbuf[0] ? logbuf : "creating filesystem");
  }
  unsigned long long set, clr;
  ms_to_attr(op->m->flags, &set, &clr);
  /* as runc: a read-only tmpfs or /dev is mounted read-write, filled (device
   * nodes, symlinks, console, tmpcopyup) and made read-only at the end */
  int defer_ro = (set & MOUNT_ATTR_RDONLY) && (!strcmp(op->fstype, "tmpfs") || !strcmp(op->dest, "/dev")) &&
                 ndeferred < sizeof deferred / sizeof deferred[0];
  if (defer_ro) set &= ~(unsigned long long)MOUNT_ATTR_RDONLY;
  int mfd = sys_fsmount(fsfd, (unsigned int)set);
  if (mfd < 0) fail2(S_MOUNT, errno, op->m->index, op->dest, "fsmount");
  close(fsfd);
  struct statfs sf;
  if (!strcmp(op->fstype, "proc") && (fstatfs(mfd, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC))
    fail2(S_MOUNT, EPERM, op->m->index, op->dest, "mounted proc is not procfs");
  if (!strcmp(op->fstype, "sysfs") && (fstatfs(mfd, &sf) < 0 || sf.f_type != SYSFS_MAGIC))
    fail2(S_MOUNT, EPERM, op->m->index, op->dest, "mounted sysfs is not sysfs");
  if (op->m->flags & OCIRUN_MNT_TMPCOPYUP) {
    /* the new tmpfs starts as a copy of what it covers */
    int src = openat(tfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int dst = openat(mfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat st;
    if (src < 0 || dst < 0 || copy_tree(src, dst, 0) < 0 || fstat(src, &st) < 0 ||
        fchown(dst, st.st_uid, st.st_gid) < 0 || fchmod(dst, st.st_mode & 07777) < 0)
      fail2(S_MOUNT, errno, op->m->index, op->dest, "tmpcopyup");
    close(src);
    close(dst);
  }
  set_recursive(op, mfd);
  if (sys_move_mount(mfd, tfd) < 0) fail2(S_MOUNT, errno, op->m->index, op->dest, "move_mount");
  set_propagation(op, mfd);
  if (defer_ro) {
    deferred[ndeferred].op = op;
    deferred[ndeferred++].fd = mfd; /* the attached mount itself, whatever covers its path later */
  } else {
    close(mfd);
  }
  close(tfd);
}

/* The read-only tmpfs and /dev mounts mount_fs left writable. */
void do_deferred_ro(void) {
  for (unsigned int i = 0; i < ndeferred; i++) {
    const struct mount_op *op = deferred[i].op;
    if (sys_setattr(deferred[i].fd, "", AT_EMPTY_PATH, MOUNT_ATTR_RDONLY, 0, 0) < 0)
      fail2(S_MOUNT, errno, op->m->index, op->dest, "remounting read-only");
    close(deferred[i].fd);
  }
  ndeferred = 0;
}

static void make_symlink(int rootfd, const struct mount_op *op) {
  const char *base;
  int parent = in_root_parent(rootfd, op->dest, &base);
  if (parent < 0) fail2(S_MOUNT, errno, op->m->index, op->dest, "creating symlink parent");
  if (symlinkat(op->source, parent, base) < 0 && errno != EEXIST)
    fail2(S_MOUNT, errno, op->m->index, op->dest, "symlink");
  close(parent);
}

/* Change the attributes of a mount made earlier (a read-only cgroup tmpfs
 * after its sub-mounts were created). */
static void set_attr(int rootfd, const struct mount_op *op) {
  int tfd = in_root_open(rootfd, op->dest, O_PATH | O_DIRECTORY, RESOLVE_NO_SYMLINKS);
  if (tfd < 0) fail2(S_MOUNT, errno, op->m->index, op->dest, "opening mount");
  unsigned long long set, clr;
  ms_to_attr(op->m->flags, &set, &clr);
  if (sys_setattr(tfd, "", AT_EMPTY_PATH, set, clr, 0) < 0) fail2(S_MOUNT, errno, op->m->index, op->dest, "mount_setattr");
  close(tfd);
}

void do_mounts(struct plan *p, int rootfd) {
  int has_netns = (p->ns_new & CLONE_NEWNET) != 0;
  for (unsigned int i = 0; i < p->njoins; i++)
    if (p->joins[i].nstype == CLONE_NEWNET) has_netns = 1;
  for (unsigned int i = 0; i < p->nmounts; i++) {
    const struct mount_op *op = &p->mounts[i];
    switch (op->m->kind) {
    case MK_BIND: mount_bind(rootfd, op); break;
    case MK_FS: mount_fs(rootfd, op, has_netns); break;
    case MK_SYMLINK: make_symlink(rootfd, op); break;
    case MK_SETATTR: set_attr(rootfd, op); break;
    }
  }
}

/* Default masked and read-only paths (G10): read-only first, then masks, as
 * runc does; files are masked with the verified null device, directories with
 * a read-only tmpfs. */
void do_masks(struct plan *p, int rootfd, int nullfd) {
  for (unsigned int i = 0; i < p->nro_paths; i++) {
    int tfd = in_root_open(rootfd, p->ro_paths[i], O_PATH, 0);
    if (tfd < 0) {
      if (errno == ENOENT) continue;
      fail(S_READONLY, errno, i, p->ro_paths[i]);
    }
    int tree = sys_open_tree(tfd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
    if (tree < 0) fail(S_READONLY, errno, i, p->ro_paths[i]);
    if (sys_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, MOUNT_ATTR_RDONLY, 0, 0) < 0)
      fail(S_READONLY, errno, i, p->ro_paths[i]);
    if (sys_move_mount(tree, tfd) < 0) fail(S_READONLY, errno, i, p->ro_paths[i]);
    close(tree);
    close(tfd);
  }
  int tmpfs = -1;
  for (unsigned int i = 0; i < p->nmasks; i++) {
    int tfd = in_root_open(rootfd, p->masks[i], O_PATH, 0);
    if (tfd < 0) {
      if (errno == ENOENT) continue;
      fail(S_MASK, errno, i, p->masks[i]);
    }
    struct stat st;
    if (fstat(tfd, &st) < 0) fail(S_MASK, errno, i, p->masks[i]);
    int tree;
    if (S_ISDIR(st.st_mode)) {
      if (tmpfs < 0) {
        int fsfd = sys_fsopen("tmpfs");
        if (fsfd < 0 || sys_fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
          fail(S_MASK, errno, i, p->masks[i]);
        tmpfs = sys_fsmount(fsfd, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
        if (tmpfs < 0) fail(S_MASK, errno, i, p->masks[i]);
        close(fsfd);
      }
      /* one shared read-only instance, bound into each masked directory */
      tree = sys_open_tree(tmpfs, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
    } else {
      tree = sys_open_tree(nullfd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
    }
    if (tree < 0) fail(S_MASK, errno, i, p->masks[i]);
    if (sys_move_mount(tree, tfd) < 0) fail(S_MASK, errno, i, p->masks[i]);
    close(tree);
    close(tfd);
  }
  if (tmpfs >= 0) close(tmpfs);
}

/* --no-pivot (as runc's msMoveRoot): the host's own mounts stay in this
 * mount namespace under the chroot.  A full procfs or sysfs mount anywhere
 * in the namespace lets a nested user namespace mount a fresh, unmasked
 * one (the kernel's mount_too_revealing check), so every full proc/sysfs
 * mount outside the rootfs is detached, or covered by an empty tmpfs when it
 * cannot be (locked in a user namespace).  The runtime keeps its own /proc
 * handle (an fd), which stays valid. */
static void hide_host_pseudofs(struct plan *p) {
  int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(S_PIVOT, errno, 0, "/proc/self/mountinfo");
  size_t n = 0;
  ssize_t r;
  while (n < sizeof mountinfo - 1 && (r = read(fd, mountinfo + n, sizeof mountinfo - 1 - n)) > 0) n += (size_t)r;
  close(fd);
  mountinfo[n] = 0;
  size_t rl = strlen(p->rootfs);
  char *line = mountinfo;
  while (line && *line) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    /* id parent maj:min root mountpoint options [optional...] - fstype ... */
    char *f[5] = {0};
    char *s = line;
    int k = 0;
    while (k < 5 && s) {
      f[k++] = s;
      s = strchr(s, ' ');
      if (s) *s++ = 0;
    }
    char *sep = s ? strstr(s, " - ") : NULL;
    if (s && !sep && !strncmp(s, "- ", 2)) sep = s - 1;
    if (k == 5 && sep) {
      char *fstype = sep + 3;
      char *end = strchr(fstype, ' ');
      if (end) *end = 0;
      char *mp = f[4];
      unescape(mp);
      int full = !strcmp(f[3], "/");
      int pseudo = !strcmp(fstype, "proc") || !strcmp(fstype, "sysfs");
      int inside = !strncmp(mp, p->rootfs, rl) && (mp[rl] == '/' || mp[rl] == 0);
      if (full && pseudo && !inside) {
        if (mount(NULL, mp, NULL, MS_SLAVE | MS_REC, NULL) < 0) {
          if (errno != ENOENT) fail2(S_PIVOT, errno, 0, mp, "--no-pivot: hiding the host's mount");
        } else if (umount2(mp, MNT_DETACH) < 0) {
          if (errno != EINVAL && errno != EPERM) fail2(S_PIVOT, errno, 0, mp, "--no-pivot: hiding the host's mount");
          if (mount("tmpfs", mp, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0555") < 0)
            fail2(S_PIVOT, errno, 0, mp, "--no-pivot: covering the host's mount");
        }
      }
    }
    line = nl ? nl + 1 : NULL;
  }
}

void do_pivot(struct plan *p, int rootfd) {
  if (!has_mount_ns(p)) {
    /* the runtime's mount namespace: a chroot into our bind, as runc */
    if (fchdir(rootfd) < 0) fail(S_PIVOT, errno, 0, p->rootfs);
    if (chroot(".") < 0) fail(S_PIVOT, errno, 0, "chroot");
    if (chdir("/") < 0) fail(S_PIVOT, errno, 0, "/");
    return;
  }
  if (p->no_pivot) hide_host_pseudofs(p);
  if (fchdir(rootfd) < 0) fail(S_PIVOT, errno, 0, p->rootfs);
  if (p->no_pivot) {
    if (mount(".", "/", NULL, MS_MOVE, NULL) < 0) fail(S_PIVOT, errno, 0, "move rootfs to /");
    if (chroot(".") < 0) fail(S_PIVOT, errno, 0, "chroot");
  } else {
    if (syscall(SYS_pivot_root, ".", ".") < 0) fail(S_PIVOT, errno, 0, p->rootfs);
    /* the old root is stacked on "."; keep its unmount from propagating */
    if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) fail(S_PIVOT, errno, 0, "old root");
    if (umount2(".", MNT_DETACH) < 0) fail(S_PIVOT, errno, 0, "unmounting old root");
  }
  if (chdir("/") < 0) fail(S_PIVOT, errno, 0, "/");
}

void do_root_finish(struct plan *p) {
  if (p->root_ro && sys_setattr(AT_FDCWD, "/", 0, MOUNT_ATTR_RDONLY, 0, 0) < 0) fail(S_ROOT_RO, errno, 0, "/");
  /* the container's own root gets linux.rootfsPropagation (default:
   * private); "/" of the namespace was made rslave (or that) before any
   * mount, so nothing ever propagates back to the host */
  unsigned long prop = p->rootprop ? (unsigned long)p->rootprop : MS_PRIVATE;
  if (mount(NULL, "/", NULL, prop, NULL) < 0) fail(S_ROOTPROP, errno, 0, "/");
}
