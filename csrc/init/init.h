/* ocirun-init: the only code that runs inside a container's namespaces before
 * the user's program.  It is a small, single-threaded C program executed from a
 * sealed memfd; it reads a plan compiled by the Python runtime, reports every
 * failure as (step, errno, index, detail) over the sync socket, and never
 * parses JSON.
 */
#ifndef OCIRUN_INIT_H
#define OCIRUN_INIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/openat2.h>
#include "proto.h"

#define MAX_MOUNTS 1024
#define MAX_ITEMS 4096

struct mount_op {
  const struct rec_mount *m;
  const char *source, *dest, *fstype, *data;
  int idmap_fd; /* an idmapped tree prepared by the parent, or -1 */
  int src_fd;   /* the bind source opened with the runtime's credentials (sources.c), or -1 */
};

struct device_op {
  const struct rec_device *d;
  const char *path;
};

struct kv {
  unsigned int index;
  const char *key, *value;
};

struct rlim_op {
  unsigned int resource, index;
  unsigned long long soft, hard;
};

struct join_op {
  unsigned int nstype, index;
  const char *path;
  int fd;
};

struct hook_op {
  const struct rec_hook *h;
  const char *path;
  char *argv[258];
  char *envp[258];
};

struct plan {
  unsigned long long ns_new;
  struct join_op joins[16];
  unsigned int njoins;
  int has_oom;
  int oom;
  const char *timens;
  const char *rootfs;
  unsigned long long rootprop;
  int root_ro, no_pivot, dev_symlinks, nnp, loopback, netlink, setup_sync, hook_sync, no_new_keyring;
  struct mount_op mounts[MAX_MOUNTS];
  unsigned int nmounts;
  struct device_op devices[MAX_ITEMS];
  unsigned int ndevices;
  const char *masks[MAX_ITEMS];
  unsigned int nmasks;
  const char *ro_paths[MAX_ITEMS];
  unsigned int nro_paths;
  struct kv sysctls[MAX_ITEMS];
  unsigned int nsysctls;
  const char *hostname, *domainname;
  struct rlim_op rlimits[64];
  unsigned int nrlimits;
  int has_user;
  unsigned int uid, gid;
  int umask;
  const unsigned int *gids;
  unsigned int ngids;
  int has_caps;
  unsigned long long cap_bnd, cap_eff, cap_prm, cap_inh, cap_amb;
  const void *seccomp;
  unsigned int seccomp_len, seccomp_flags;
  const char *cwd;
  char *argv[MAX_ITEMS + 1];
  unsigned int argc;
  char *envp[MAX_ITEMS + 2];
  unsigned int envc;
  int terminal;
  unsigned int rows, cols;
  unsigned int npreserve;
  struct hook_op hooks[64];
  unsigned int nhooks;
  int has_personality;
  unsigned int personality;
  char *hook_state; /* the state JSON from the parent, for in-container hooks */
  int exec_mode;
  unsigned long long exec_ns;
  const char *apparmor, *selinux;
  const void *sched_attr;
  int has_ioprio;
  unsigned int ioprio;
  int has_mempolicy;
  unsigned int mempolicy_mode;
  const void *mempolicy_mask;
  unsigned int mempolicy_mask_len; /* bytes */
  const void *cpu_initial, *cpu_final;
  unsigned int cpu_initial_len, cpu_final_len;
};

/* report.c */
extern int sync_fd;
extern int fifo_write_fd;
extern struct ocirun_msg *report_page;
void die(int code) __attribute__((noreturn));
void fail(int step, int err, unsigned int index, const char *detail) __attribute__((noreturn));
void fail2(int step, int err, unsigned int index, const char *a, const char *b) __attribute__((noreturn));
void warn_parent(const char *detail);
int send_msg(unsigned int type, unsigned int value, int fd);
int recv_msg(unsigned int want);
int recv_msg_detail(unsigned int want, char *buf, size_t size);
int recv_msg_fd(unsigned int *type, unsigned int *value, int *fd);
void str_copy(char *dst, size_t size, const char *src);
void itoa_signed(int v, char *out);

/* plan.c */
void plan_parse(struct plan *p, const unsigned char *buf, size_t len);

/* inroot.c */
int in_root_open(int rootfd, const char *path, int flags, unsigned long long resolve);
#define WALK_FILE 1
int in_root_walk(int rootfd, const char *path, int flags, unsigned int mode);
int in_root_mkdir_all(int rootfd, const char *path, unsigned int mode);
int in_root_parent(int rootfd, const char *path, const char **base);

/* mounts.c */
void rootfs_prepare(struct plan *p, int *rootfd);
void do_mounts(struct plan *p, int rootfd);
void do_masks(struct plan *p, int rootfd, int nullfd);
void do_pivot(struct plan *p, int rootfd);
void do_root_finish(struct plan *p);
void do_deferred_ro(void);
int has_mount_ns(const struct plan *p);

/* sources.c */
struct source_opener {
  int pid, sock;
};
void sources_fork(struct plan *p, int procfd, struct source_opener *so);
void sources_receive(struct plan *p, struct source_opener *so);

/* copyup.c */
int copy_tree(int src, int dst, int depth);

/* dev.c */
void do_devices(struct plan *p, int rootfd);
void do_console(struct plan *p, int rootfd);
void alloc_console(struct plan *p, int rootfd, int bind_console);
void chown_stdio(struct plan *p);

/* process.c */
void do_sysctls(struct plan *p, int procfd);
void do_rlimits(struct plan *p);
void do_user(struct plan *p, int procfd);
void read_cap_last(int procfd);
int cwd_in_root(void);
ssize_t send_with_fd(int sock, const void *buf, size_t len, int fd);
const char *lookup_exec(struct plan *p, char *buf, size_t size);
void close_unpreserved(struct plan *p, int keep);
void wait_fifo_and_exec(struct plan *p, int procfd_self_fd, int fifofd, const char *path);
void load_seccomp(struct plan *p);
void run_hooks(struct plan *p, unsigned int phase);
void apply_lsm(struct plan *p, int procfd);
void write_proc_self(int procfd, const char *file, const char *data, int step);
void apply_sched(struct plan *p);
void apply_mempolicy(struct plan *p);
void set_affinity(const void *mask, unsigned int len);
void set_home(struct plan *p);

#endif
