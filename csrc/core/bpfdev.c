/* Load a BPF_PROG_TYPE_CGROUP_DEVICE program (generated in
 * ocirun/cgroups/devices.py) and attach it to a cgroup v2 directory. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/bpf.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "native.h"

static int bpf(int cmd, union bpf_attr *attr) { return syscall(SYS_bpf, cmd, attr, sizeof(*attr)); }

int ocirun_cgroup_device_attach(const void *insns, unsigned int ninsns, int cgroup_fd, char *log,
                                unsigned int logsz) {
  union bpf_attr a;
  memset(&a, 0, sizeof(a));
  a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  a.insn_cnt = ninsns;
  a.insns = (unsigned long)insns;
  a.license = (unsigned long)"Apache";
  int prog = bpf(BPF_PROG_LOAD, &a);
  if (prog < 0) {
    /* again with the verifier's log, only to explain the failure (a log
       that does not fit fails the load with ENOSPC, so not on the first try) */
    int err = errno;
    if (log && logsz) {
      log[0] = 0;
      a.log_level = 1;
      a.log_buf = (unsigned long)log;
      a.log_size = logsz;
      if (bpf(BPF_PROG_LOAD, &a) >= 0) log[0] = 0;
    }
    return -err;
  }
  memset(&a, 0, sizeof(a));
  a.target_fd = cgroup_fd;
  a.attach_bpf_fd = prog;
  a.attach_type = BPF_CGROUP_DEVICE;
  /* MULTI like runc: other programs (systemd's) may sit on the same group */
  a.attach_flags = BPF_F_ALLOW_MULTI;
  int r = bpf(BPF_PROG_ATTACH, &a);
  int err = errno;
  close(prog); /* the attachment keeps the program alive */
  return r < 0 ? -err : 0;
}
