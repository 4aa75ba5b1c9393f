/* Plan parsing: every length and string is checked before use (CVE-2021-43784
 * was an overflow in exactly this kind of hand-off). */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include "init.h"

struct cursor {
  const unsigned char *p;
  size_t left;
  unsigned int type;
};

static void bad(const char *what) { fail(S_PLAN, EINVAL, 0, what); }

static const void *take(struct cursor *c, size_t n) {
  if (n > c->left) bad("plan record too short");
  const void *r = c->p;
  c->p += n;
  c->left -= n;
  return r;
}

/* the fixed part of a record, as its struct in proto.h says */
#define FIXED(c, var) memcpy(&(var), take((c), sizeof(var)), sizeof(var))

static unsigned int u32(struct cursor *c) { /* struct rec_u32 */
  struct rec_u32 v;
  FIXED(c, v);
  return v.value;
}

static unsigned long long u64(struct cursor *c) { /* struct rec_u64 */
  struct rec_u64 v;
  FIXED(c, v);
  return v.value;
}

static const char *str(struct cursor *c) {
  const char *s = (const char *)c->p;
  const void *nul = memchr(c->p, 0, c->left);
  if (!nul) bad("unterminated string in plan");
  take(c, (size_t)((const unsigned char *)nul - c->p) + 1);
  return s;
}

static void need_empty(struct cursor *c) {
  if (c->left) bad("trailing bytes in plan record");
}

void plan_parse(struct plan *p, const unsigned char *buf, size_t len) {
  memset(p, 0, sizeof *p);
  p->umask = -1;
  if (len < 16) bad("plan too short");
  struct plan_header hdr;
  memcpy(&hdr, buf, sizeof hdr);
  if (hdr.magic != OCIRUN_PLAN_MAGIC || hdr.version != OCIRUN_PLAN_VERSION || hdr.total_len != len)
    bad("plan header mismatch (runtime and init from different builds?)");
  size_t off = sizeof hdr;
  unsigned int n = 0;
  while (off < len) {
    struct rec_header rh;
    if (len - off < sizeof rh) bad("truncated plan record header");
    memcpy(&rh, buf + off, sizeof rh);
    unsigned int type = rh.type, rlen = rh.len;
    off += sizeof rh;
    if (rh.zero != 0 || rlen > len - off) bad("bad plan record length");
    struct cursor c = {buf + off, rlen, type};
    off += (rlen + 7U) & ~7U;
    if (off > len) off = len;
    n++;
    switch (type) {
    case R_NS_NEW: p->ns_new = u64(&c); break;
    case R_NS_JOIN: {
      struct rec_ns_join j;
      if (p->njoins >= 16) bad("too many namespaces");
      FIXED(&c, j);
      p->joins[p->njoins].nstype = j.nstype;
      p->joins[p->njoins].index = j.index;
      p->joins[p->njoins].path = str(&c);
      p->joins[p->njoins].fd = -1;
      p->njoins++;
      break;
    }
    case R_OOM: {
      struct rec_s32 o;
      FIXED(&c, o);
      p->has_oom = 1;
      p->oom = o.value;
      break;
    }
    case R_TIMENS: p->timens = str(&c); break;
    case R_ROOTFS: p->rootfs = str(&c); break;
    case R_ROOTPROP: p->rootprop = u64(&c); break;
    case R_ROOT_RO: p->root_ro = 1; break;
    case R_NO_PIVOT: p->no_pivot = 1; break;
    case R_DEV_SYMLINKS: p->dev_symlinks = 1; break;
    case R_NNP: p->nnp = 1; break;
    case R_LOOPBACK: p->loopback = 1; break;
    case R_NETLINK: p->netlink = 1; break;
    case R_SETUP_SYNC: p->setup_sync = 1; break;
    case R_HOOK_SYNC: p->hook_sync = 1; break;
    case R_NO_NEW_KEYRING: p->no_new_keyring = 1; break;
    case R_MOUNT: {
      if (p->nmounts >= MAX_MOUNTS) bad("too many mounts");
      struct mount_op *m = &p->mounts[p->nmounts++];
      m->m = take(&c, sizeof(struct rec_mount));
      m->source = str(&c);
      m->dest = str(&c);
      m->fstype = str(&c);
      m->data = str(&c);
      m->idmap_fd = -1;
      m->src_fd = -1;
      if (m->m->kind < MK_BIND || m->m->kind > MK_SETATTR || m->dest[0] != '/') bad("bad mount record");
      break;
    }
    case R_DEVICE: {
      if (p->ndevices >= MAX_ITEMS) bad("too many devices");
      struct device_op *d = &p->devices[p->ndevices++];
      d->d = take(&c, sizeof(struct rec_device));
      d->path = str(&c);
      if (d->path[0] != '/') bad("bad device record");
      break;
    }
    case R_MASK:
      if (p->nmasks >= MAX_ITEMS) bad("too many masked paths");
      p->masks[p->nmasks++] = str(&c);
      break;
    case R_RO_PATH:
      if (p->nro_paths >= MAX_ITEMS) bad("too many readonly paths");
      p->ro_paths[p->nro_paths++] = str(&c);
      break;
    case R_SYSCTL: {
      if (p->nsysctls >= MAX_ITEMS) bad("too many sysctls");
      struct kv *s = &p->sysctls[p->nsysctls++];
      struct rec_sysctl r;
      FIXED(&c, r);
      s->index = r.index;
      s->key = str(&c);
      s->value = str(&c);
      break;
    }
    case R_HOSTNAME: p->hostname = str(&c); break;
    case R_DOMAINNAME: p->domainname = str(&c); break;
    case R_RLIMIT: {
      if (p->nrlimits >= 64) bad("too many rlimits");
      struct rlim_op *r = &p->rlimits[p->nrlimits++];
      struct rec_rlimit rl;
      FIXED(&c, rl);
      r->resource = rl.resource;
      r->index = rl.index;
      r->soft = rl.soft;
      r->hard = rl.hard;
      break;
    }
    case R_USER: {
      struct rec_user u;
      FIXED(&c, u);
      p->has_user = 1;
      p->uid = u.uid;
      p->gid = u.gid;
      p->umask = u.umask;
      p->ngids = u.ngids;
      if (p->ngids > 65536) bad("too many additional gids");
      p->gids = take(&c, (size_t)p->ngids * 4);
      break;
    }
    case R_CAPS: {
      struct rec_caps k;
      FIXED(&c, k);
      p->has_caps = 1;
      p->cap_bnd = k.bounding;
      p->cap_eff = k.effective;
      p->cap_prm = k.permitted;
      p->cap_inh = k.inheritable;
      p->cap_amb = k.ambient;
      break;
    }
    case R_SECCOMP: {
      struct rec_seccomp sc;
      FIXED(&c, sc);
      p->seccomp_flags = sc.flags;
      if (c.left == 0 || c.left % 8 || c.left / 8 > 65535) bad("bad seccomp program");
      p->seccomp_len = (unsigned int)c.left;
      p->seccomp = take(&c, c.left);
      break;
    }
    case R_CWD: p->cwd = str(&c); break;
    case R_ARG:
      if (p->argc >= MAX_ITEMS) bad("too many args");
      p->argv[p->argc++] = (char *)str(&c);
      break;
    case R_ENV:
      if (p->envc >= MAX_ITEMS) bad("too many env entries");
      p->envp[p->envc++] = (char *)str(&c);
      break;
    case R_TERMINAL: {
      struct rec_terminal t;
      FIXED(&c, t);
      p->terminal = 1;
      p->rows = t.rows;
      p->cols = t.cols;
      break;
    }
    case R_PRESERVE: p->npreserve = u32(&c); break;
    case R_EXEC: p->exec_mode = 1; p->exec_ns = u64(&c); break;
    case R_LSM: {
      struct rec_lsm l;
      FIXED(&c, l);
      const char *label = str(&c);
      if (l.kind == 1) p->apparmor = label;
      else if (l.kind == 2) p->selinux = label;
      else bad("unknown LSM");
      break;
    }
    case R_SCHED:
      if (c.left != sizeof(struct rec_sched)) bad("bad sched_attr");
      p->sched_attr = take(&c, sizeof(struct rec_sched));
      break;
    case R_IOPRIO: p->has_ioprio = 1; p->ioprio = u32(&c); break;
    case R_MEMPOLICY: {
      struct rec_mempolicy mp;
      FIXED(&c, mp);
      p->has_mempolicy = 1;
      p->mempolicy_mode = mp.mode;
      if (c.left > 128 || c.left % 8) bad("bad memory policy node mask");
      p->mempolicy_mask_len = (unsigned int)c.left;
      p->mempolicy_mask = c.left ? take(&c, c.left) : NULL;
      break;
    }
    case R_CPU_INITIAL:
    case R_CPU_FINAL: {
      if (c.left == 0 || c.left > 1024 || c.left % 8) bad("bad cpu mask");
      unsigned int n = (unsigned int)c.left;
      const void *m = take(&c, c.left);
      if (type == R_CPU_INITIAL) { p->cpu_initial = m; p->cpu_initial_len = n; }
      else { p->cpu_final = m; p->cpu_final_len = n; }
      break;
    }
    case R_PERSONALITY: p->has_personality = 1; p->personality = u32(&c); break;
    case R_HOOK: {
      if (p->nhooks >= 64) bad("too many hooks");
      struct hook_op *h = &p->hooks[p->nhooks++];
      h->h = take(&c, sizeof(struct rec_hook));
      if (h->h->nargs > 256 || h->h->nenv > 256) bad("too many hook args");
      h->path = str(&c);
      for (unsigned int i = 0; i < h->h->nargs; i++) h->argv[i] = (char *)str(&c);
      h->argv[h->h->nargs] = NULL;
      for (unsigned int i = 0; i < h->h->nenv; i++) h->envp[i] = (char *)str(&c);
      h->envp[h->h->nenv] = NULL;
      if (h->path[0] != '/') bad("hook path must be absolute");
      break;
    }
    default: bad("unknown plan record");
    }
    need_empty(&c);
  }
  if (n != hdr.nrecords) bad("plan record count mismatch");
  if ((!p->rootfs && !p->exec_mode) || !p->cwd || p->argc == 0) bad("plan lacks rootfs, cwd or args");
  p->argv[p->argc] = NULL;
  p->envp[p->envc] = NULL;
}
