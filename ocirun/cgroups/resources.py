"""linux.resources -> the cgroup files to write, for v1 and v2.

compile() validates the whole object and reads (never writes) whatever it
needs from the cgroup (current limits for write ordering, usage for
checkBeforeUpdate), so a bad value anywhere is reported before any file is
touched.  apply() then performs the writes in order.  Conversions between
v1 and v2 values are runc's (libcontainer/cgroups/utils.go), because engines
compute the values they send with runc's rules in mind.
"""

import os

from ocirun import config as C
from ocirun.errors import CgroupError, ConfigError
from ocirun.host import controller_dir, read as _read, write as _write

P = "linux.resources"
U64 = 2**64 - 1
I64_MIN, I64_MAX = -(2**63), 2**63 - 1


# --- value checks -------------------------------------------------------------

# the typed accessors (ocirun.config), with resources' defaults: int64
# values, single-line strings (written to cgroup files), booleans absent: None
_obj, _list = C.obj, C.array


def _int(v, f, lo=I64_MIN, hi=I64_MAX):
    return C.integer(v, f, lo, hi)


def _limit(v, f):
    """int64 limits where -1 means unlimited and 0 means unset."""
    v = _int(v, f)
    if v is not None and v < -1:
        raise ConfigError(f"{f}: must be -1 (unlimited) or a positive number of bytes, got {v}")
    return v


def _bool(v, f):
    return C.boolean(v, f, default=None)


def _str(v, f):
    return C.string(v, f, single_line=True)


def _cpuset_list(v, f):
    v = _str(v, f)
    if v is None:
        return None
    for part in v.split(","):
        lo, _, hi = part.strip().partition("-")
        if not lo.isdigit() or (hi and (not hi.isdigit() or int(hi) < int(lo))):
            raise CgroupError(f"{f}: {v!r} is not a list of numbers and ranges like 0-3,5")
    return v


def _dev(d, f, extra):
    d = _obj(d, f)
    out = {"major": _int(d.get("major"), f + ".major", 0, 2**32 - 1),
           "minor": _int(d.get("minor"), f + ".minor", 0, 2**32 - 1)}
    if out["major"] is None or out["minor"] is None:
        raise CgroupError(f"{f}: major and minor are required")
    for k, lo, hi in extra:
        out[k] = _int(d.get(k), f"{f}.{k}", lo, hi)
    return out


def parse_page_size(s, f):
    """'2MB' -> bytes; the hugetlb file names use the same spelling."""
    if not isinstance(s, str):
        raise CgroupError(f"{f}: must be a string like \"2MB\"")
    units = {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}
    num, unit = s[:-2], s[-2:]
    if unit not in units or not num.isdigit():
        raise CgroupError(f"{f}: invalid page size {s!r} (want e.g. \"2MB\" or \"1GB\")")
    return int(num) * units[unit]


# --- runc's v1 -> v2 conversions ------------------------------------------------

def shares_to_weight(shares):
    if shares == 0:
        return 0
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(w):
    if w == 0:
        return 0
    return 1 + (w - 10) * 9999 // 990


def swap_to_v2(swap, memory):
    """Spec swap is memory+swap (v1 memsw); v2 memory.swap.max is swap alone."""
    if memory == -1 and swap == 0:
        return -1
    if swap in (-1, 0):
        return swap
    if memory in (0, -1, None):
        raise CgroupError(f"{P}.memory.swap: unable to set swap limit without memory limit")
    if swap < memory:
        raise CgroupError(f"{P}.memory.swap: memory+swap limit ({swap}) should be >= memory limit ({memory})")
    return swap - memory


# --- normalisation ----------------------------------------------------------------

def normalize(res):
    """Validate linux.resources; returns a cleaned copy (only known keys, no
    nulls) that is what gets persisted in the state."""
    res = _obj(res, P)
    known = {"devices", "memory", "cpu", "pids", "blockIO", "hugepageLimits", "network", "rdma", "unified"}
    _unknown(res, P, known)
    out = {}
    devs = []
    for i, d in enumerate(_list(res.get("devices"), P + ".devices")):
        f = f"{P}.devices[{i}]"
        d = _obj(d, f)
        allow = _bool(d.get("allow"), f + ".allow")
        if allow is None:
            raise CgroupError(f"{f}.allow: is required")
        t = d.get("type", "a")
        if t not in ("a", "b", "c"):
            raise CgroupError(f"{f}.type: invalid device type {t!r} (want a, b or c)")
        # runc: an absent or empty access is an error; on cgroup v1 letters
        # other than r, w, m are dropped (its rule emulator keeps the set of
        # known ones, in canonical order) and a rule left with none fails
        access = d.get("access")
        if not isinstance(access, str) or not access:
            raise CgroupError(f"{f}.access: must be a non-empty combination of r, w, m")
        if any(c not in "rwm" for c in access):
            kept = "".join(c for c in "rwm" if c in access)
            if not kept:
                raise CgroupError(f"{f}.access: invalid access {access!r} (want a combination of r, w, m)")
            _warn(f"{f}.access: ignoring unknown access letters in {access!r}, using {kept!r}")
        access = "".join(c for c in "rwm" if c in access)
        rule = {"allow": allow, "type": t, "access": access}
        for k in ("major", "minor"):
            v = _int(d.get(k), f"{f}.{k}", -1, 2**32 - 1)
            if v is not None and v != -1:
                rule[k] = v
        devs.append(rule)
    if devs:
        out["devices"] = devs

    m = _obj(res.get("memory"), P + ".memory")
    mem = {}
    for k in ("limit", "reservation", "swap", "kernel", "kernelTCP"):
        v = _limit(m.get(k), f"{P}.memory.{k}")
        if v is not None:
            mem[k] = v
    sw = _int(m.get("swappiness"), f"{P}.memory.swappiness", 0, U64)
    if sw is not None:
        if sw > 100:
            raise CgroupError(f"{P}.memory.swappiness: invalid value {sw}, valid range is 0-100")
        mem["swappiness"] = sw
    for k in ("disableOOMKiller", "useHierarchy", "checkBeforeUpdate"):
        v = _bool(m.get(k), f"{P}.memory.{k}")
        if v is not None:
            mem[k] = v
    _unknown(m, f"{P}.memory", ("limit", "reservation", "swap", "kernel", "kernelTCP", "swappiness",
                                   "disableOOMKiller", "useHierarchy", "checkBeforeUpdate"))
    if mem:
        out["memory"] = mem

    c = _obj(res.get("cpu"), P + ".cpu")
    cpu = {}
    for k, lo, hi in (("shares", 0, U64), ("quota", I64_MIN, I64_MAX), ("burst", 0, U64), ("period", 0, U64),
                      ("realtimeRuntime", I64_MIN, I64_MAX), ("realtimePeriod", 0, U64), ("idle", 0, 1)):
        v = _int(c.get(k), f"{P}.cpu.{k}", lo, hi)
        if v is not None:
            cpu[k] = v
    if cpu.get("quota", 0) < -1:
        raise CgroupError(f"{P}.cpu.quota: must be -1 (unlimited) or positive, got {cpu['quota']}")
    if cpu.get("period") and not 1000 <= cpu["period"] <= 1000000:
        raise CgroupError(f"{P}.cpu.period: {cpu['period']} is out of range [1000, 1000000] microseconds")
    for k in ("cpus", "mems"):
        v = _cpuset_list(c.get(k), f"{P}.cpu.{k}")
        if v is not None:
            cpu[k] = v
    _unknown(c, f"{P}.cpu", ("shares", "quota", "burst", "period", "realtimeRuntime", "realtimePeriod",
                                "cpus", "mems", "idle"))
    if cpu:
        out["cpu"] = cpu

    if res.get("pids") is not None:
        pl = _obj(res["pids"], P + ".pids")
        lim = _int(pl.get("limit"), f"{P}.pids.limit")
        if lim is None:
            raise CgroupError(f"{P}.pids.limit: is required")
        out["pids"] = {"limit": lim}

    b = _obj(res.get("blockIO"), P + ".blockIO")
    bio = {}
    for k in ("weight", "leafWeight"):
        v = _int(b.get(k), f"{P}.blockIO.{k}", 0, 1000)
        if v:  # 0 is "not set" (runc; dockerd sends weight 0 on every container)
            if v < 10:
                raise CgroupError(f"{P}.blockIO.{k}: {v} is out of range [10, 1000]")
            bio[k] = v
    wd = []
    for i, d in enumerate(_list(b.get("weightDevice"), P + ".blockIO.weightDevice")):
        e = _dev(d, f"{P}.blockIO.weightDevice[{i}]", (("weight", 10, 1000), ("leafWeight", 10, 1000)))
        wd.append({k: v for k, v in e.items() if v is not None})
    if wd:
        bio["weightDevice"] = wd
    for k in ("throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice", "throttleWriteIOPSDevice"):
        lst = []
        for i, d in enumerate(_list(b.get(k), f"{P}.blockIO.{k}")):
            e = _dev(d, f"{P}.blockIO.{k}[{i}]", (("rate", 0, U64),))
            if e["rate"] is None:
                raise CgroupError(f"{P}.blockIO.{k}[{i}].rate: is required")
            lst.append(e)
        if lst:
            bio[k] = lst
    if bio:
        out["blockIO"] = bio

    hp = []
    for i, h in enumerate(_list(res.get("hugepageLimits"), P + ".hugepageLimits")):
        f = f"{P}.hugepageLimits[{i}]"
        h = _obj(h, f)
        parse_page_size(h.get("pageSize"), f + ".pageSize")
        lim = _int(h.get("limit"), f + ".limit", 0, U64)
        if lim is None:
            raise CgroupError(f"{f}.limit: is required")
        hp.append({"pageSize": h["pageSize"], "limit": lim})
    if hp:
        out["hugepageLimits"] = hp

    n = _obj(res.get("network"), P + ".network")
    net = {}
    cid = _int(n.get("classID"), f"{P}.network.classID", 0, 2**32 - 1)
    if cid is not None:
        net["classID"] = cid
    prios = []
    for i, p in enumerate(_list(n.get("priorities"), P + ".network.priorities")):
        f = f"{P}.network.priorities[{i}]"
        p = _obj(p, f)
        name = _str(p.get("name"), f + ".name")
        if not name or " " in name or "/" in name:
            raise CgroupError(f"{f}.name: invalid interface name {name!r}")
        prio = _int(p.get("priority"), f + ".priority", 0, 2**32 - 1)
        prios.append({"name": name, "priority": prio or 0})
    if prios:
        net["priorities"] = prios
    if net:
        out["network"] = net

    rd = {}
    for dev, v in _obj(res.get("rdma"), P + ".rdma").items():
        f = f"{P}.rdma.{dev}"
        if not dev or any(ch.isspace() for ch in dev) or "/" in dev:
            raise CgroupError(f"{f}: invalid device name")
        v = _obj(v, f)
        e = {}
        for k in ("hcaHandles", "hcaObjects"):
            x = _int(v.get(k), f"{f}.{k}", 0, 2**32 - 1)
            if x is not None:
                e[k] = x
        rd[dev] = e
    if rd:
        out["rdma"] = rd

    un = {}
    for k, v in _obj(res.get("unified"), P + ".unified").items():
        f = f"{P}.unified.{k}"
        if not k or "/" in k or k.startswith(".") or "." not in k:
            raise CgroupError(f"{f}: invalid cgroup file name {k!r}")
        if not isinstance(v, str):
            raise CgroupError(f"{f}: value must be a string")
        un[k] = v
    if un:
        out["unified"] = un
    return out


def _warn(msg):
    from ocirun import log

    log.warning(msg)


def _unknown(obj, f, keys):
    """The runtime-spec: unknown properties must be ignored (runc's JSON
    decoding drops them); ocirun says so in a warning."""
    for k in obj:
        if k not in keys:
            _warn(f"{f}.{k}: unknown field, ignored")


def merge(old, new):
    """update: fields given in `new` replace those in `old`; 0 means "leave
    as is" for the numeric memory/cpu/blkio fields, as in runc's update."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in (old or {}).items()}
    for k, v in new.items():
        if k == "devices":
            continue  # update never changes device rules (runc)
        if isinstance(v, dict) and k in ("memory", "cpu", "blockIO", "network"):
            cur = out.setdefault(k, {})
            for kk, vv in v.items():
                if vv == 0 and kk not in ("swappiness", "idle") and not isinstance(vv, bool):
                    continue
                cur[kk] = vv
        else:
            out[k] = v
    return out


# --- compile -------------------------------------------------------------------

class Writes:
    """An ordered list of (file, value, field), checked to exist up front."""

    def __init__(self, cg):
        self.cg = cg
        self.ops = []
        # op index -> "soft" (EINVAL is remembered, not fatal) or "retry"
        # (written only if the same file's soft write failed)
        self.flags = {}

    def dir(self, ctrl, field):
        d = controller_dir(self.cg, ctrl)
        if d is None:
            raise CgroupError(f"{field}: the {ctrl} cgroup controller is not available on this host")
        return d

    def add(self, ctrl, fname, value, field, optional=False):
        d = self.dir(ctrl, field)
        path = os.path.join(d, fname)
        if not os.path.exists(path):
            if optional:
                return False
            what = ctrl if self.cg["version"] == 1 else f"{ctrl} (cgroup v2)"
            raise CgroupError(f"{field}: not supported by this host's {what} controller (no {fname})")
        self.ops.append((path, str(value), field))
        return True


def compile(cg, res, *, update=False, device_paths=()):
    """A validated, normalised resources object -> Writes.  device_paths:
    linux.devices[].path, whose default allow rules runc drops."""
    w = Writes(cg)
    w.device_paths = device_paths
    if cg["version"] == 2:
        _v2(w, res, update)
    else:
        _v1(w, res, update)
    return w


def _current_int(path):
    v = _read(path)
    try:
        return int(v.split()[0]) if v else None
    except ValueError:
        return None


def _check_usage(w, ctrl, usage_file, limit, field):
    if limit is None or limit <= 0:
        return
    d = w.dir(ctrl, field)
    used = _current_int(os.path.join(d, usage_file))
    if used is not None and used > limit:
        raise CgroupError(f"{field}: rejecting memory limit {limit} below current usage {used}")


def _cpu_idle_and_sets(w, cpu, f):
    """The same files on v1 and v2."""
    if "idle" in cpu:
        w.add("cpu", "cpu.idle", cpu["idle"], f + ".idle")
    if cpu.get("cpus"):
        w.add("cpuset", "cpuset.cpus", cpu["cpus"], f + ".cpus")
    if cpu.get("mems"):
        w.add("cpuset", "cpuset.mems", cpu["mems"], f + ".mems")


def _pids(w, res):
    if "pids" in res:
        lim = res["pids"]["limit"]
        if lim != 0:
            w.add("pids", "pids.max", lim if lim > 0 else "max", P + ".pids.limit")


def _v1(w, res, update):
    if "unified" in res:
        raise CgroupError(f"{P}.unified: cgroup v2 is not enabled on this host, can't use unified resources")
    mem = res.get("memory", {})
    if mem:
        f = P + ".memory"
        limit, swap = mem.get("limit", 0), mem.get("swap", 0)
        d = w.dir("memory", f)
        if limit == -1 and swap == 0 and os.path.exists(os.path.join(d, "memory.memsw.limit_in_bytes")):
            swap = -1
        if mem.get("checkBeforeUpdate") and update:
            _check_usage(w, "memory", "memory.usage_in_bytes", limit, f + ".limit")
        if limit and swap:
            cur = _current_int(os.path.join(d, "memory.limit_in_bytes"))
            # the kernel wants memsw >= limit at every step, so raise memsw first
            if swap == -1 or cur is None or cur < swap:
                w.add("memory", "memory.memsw.limit_in_bytes", swap, f + ".swap")
                w.add("memory", "memory.limit_in_bytes", limit, f + ".limit")
            else:
                w.add("memory", "memory.limit_in_bytes", limit, f + ".limit")
                w.add("memory", "memory.memsw.limit_in_bytes", swap, f + ".swap")
        else:
            if limit:
                w.add("memory", "memory.limit_in_bytes", limit, f + ".limit")
            if swap:
                w.add("memory", "memory.memsw.limit_in_bytes", swap, f + ".swap")
        if mem.get("reservation"):
            w.add("memory", "memory.soft_limit_in_bytes", mem["reservation"], f + ".reservation")
        if mem.get("kernelTCP"):
            w.add("memory", "memory.kmem.tcp.limit_in_bytes", mem["kernelTCP"], f + ".kernelTCP")
        if "swappiness" in mem:
            w.add("memory", "memory.swappiness", mem["swappiness"], f + ".swappiness")
        if mem.get("disableOOMKiller"):
            w.add("memory", "memory.oom_control", 1, f + ".disableOOMKiller")
        if mem.get("useHierarchy"):
            w.add("memory", "memory.use_hierarchy", 1, f + ".useHierarchy", optional=True)
        # memory.kernel: kernel memory limits are gone from current kernels;
        # runc ignores them too.
    cpu = res.get("cpu", {})
    if cpu:
        f = P + ".cpu"
        if cpu.get("shares"):
            w.add("cpu", "cpu.shares", cpu["shares"], f + ".shares")
        if cpu.get("period"):
            w.add("cpu", "cpu.cfs_period_us", cpu["period"], f + ".period")
            if cpu.get("quota"):
                # a smaller period can be refused (EINVAL) while the old
                # quota/new period exceeds the parent's quota: as runc, write
                # the quota and then the period again
                w.flags[len(w.ops) - 1] = "soft"
        if cpu.get("quota"):
            w.add("cpu", "cpu.cfs_quota_us", cpu["quota"], f + ".quota")
            if cpu.get("period"):
                w.add("cpu", "cpu.cfs_period_us", cpu["period"], f + ".period")
                w.flags[len(w.ops) - 1] = "retry"
        if "burst" in cpu:
            w.add("cpu", "cpu.cfs_burst_us", cpu["burst"], f + ".burst")
        if cpu.get("realtimePeriod"):
            w.add("cpu", "cpu.rt_period_us", cpu["realtimePeriod"], f + ".realtimePeriod")
        if cpu.get("realtimeRuntime"):
            w.add("cpu", "cpu.rt_runtime_us", cpu["realtimeRuntime"], f + ".realtimeRuntime")
        _cpu_idle_and_sets(w, cpu, f)
    _pids(w, res)
    bio = res.get("blockIO", {})
    if bio:
        f = P + ".blockIO"
        d = w.dir("blkio", f)
        bfq = os.path.exists(os.path.join(d, "blkio.bfq.weight"))
        if bio.get("weight"):
            w.add("blkio", "blkio.bfq.weight" if bfq else "blkio.weight", bio["weight"], f + ".weight")
        if bio.get("leafWeight"):
            w.add("blkio", "blkio.leaf_weight", bio["leafWeight"], f + ".leafWeight")
        for i, e in enumerate(bio.get("weightDevice", [])):
            ff = f"{f}.weightDevice[{i}]"
            if e.get("weight"):
                w.add("blkio", "blkio.bfq.weight_device" if bfq else "blkio.weight_device",
                      f"{e['major']}:{e['minor']} {e['weight']}", ff + ".weight")
            if e.get("leafWeight"):
                w.add("blkio", "blkio.leaf_weight_device", f"{e['major']}:{e['minor']} {e['leafWeight']}",
                      ff + ".leafWeight")
        for key, fname in (("throttleReadBpsDevice", "read_bps_device"), ("throttleWriteBpsDevice", "write_bps_device"),
                           ("throttleReadIOPSDevice", "read_iops_device"),
                           ("throttleWriteIOPSDevice", "write_iops_device")):
            for i, e in enumerate(bio.get(key, [])):
                w.add("blkio", "blkio.throttle." + fname, f"{e['major']}:{e['minor']} {e['rate']}", f"{f}.{key}[{i}]")
    for i, h in enumerate(res.get("hugepageLimits", [])):
        w.add("hugetlb", f"hugetlb.{h['pageSize']}.limit_in_bytes", h["limit"], f"{P}.hugepageLimits[{i}]")
    net = res.get("network", {})
    if net.get("classID"):
        w.add("net_cls", "net_cls.classid", net["classID"], P + ".network.classID")
    for i, p in enumerate(net.get("priorities", [])):
        w.add("net_prio", "net_prio.ifpriomap", f"{p['name']} {p['priority']}", f"{P}.network.priorities[{i}]")
    _rdma(w, res)
    if not update:
        # always, as runc: deny-all, its default allow list, then the
        # config's rules; an absent list never leaves the host's a *:* rwm
        from ocirun.cgroups import devices

        devices.v1_writes(w, res.get("devices", []), w.device_paths)


def _rdma(w, res):
    for dev, e in res.get("rdma", {}).items():
        parts = [dev]
        if "hcaHandles" in e:
            parts.append(f"hca_handle={e['hcaHandles']}")
        if "hcaObjects" in e:
            parts.append(f"hca_object={e['hcaObjects']}")
        if len(parts) > 1:
            w.add("rdma", "rdma.max", " ".join(parts), f"{P}.rdma.{dev}")


def _v2(w, res, update):
    f = P + ".memory"
    mem = res.get("memory", {})
    if mem:
        limit, swap = mem.get("limit", 0), mem.get("swap", 0)
        s2 = swap_to_v2(swap, limit)
        if mem.get("checkBeforeUpdate") and update:
            _check_usage(w, "memory", "memory.current", limit, f + ".limit")
        # memory.swap.max before memory.max, as runc: a lower swap first
        # never trips the kernel's checks
        if s2:
            if not w.add("memory", "memory.swap.max", "max" if s2 == -1 else s2, f + ".swap",
                         optional=s2 == -1):
                pass
        if limit:
            w.add("memory", "memory.max", "max" if limit == -1 else limit, f + ".limit")
        if mem.get("reservation"):
            w.add("memory", "memory.low", "max" if mem["reservation"] == -1 else mem["reservation"],
                  f + ".reservation")
    cpu = res.get("cpu", {})
    if cpu:
        f = P + ".cpu"
        if cpu.get("realtimePeriod") or cpu.get("realtimeRuntime"):
            raise CgroupError(f"{f}.realtimeRuntime: realtime scheduling is not supported on cgroup v2")
        if cpu.get("shares"):
            w.add("cpu", "cpu.weight", shares_to_weight(cpu["shares"]), f + ".shares")
        if cpu.get("quota") or cpu.get("period"):
            q = cpu.get("quota", 0)
            val = str(q) if q > 0 else "max"
            if cpu.get("period"):
                val += f" {cpu['period']}"
            w.add("cpu", "cpu.max", val, f + ".quota")
        if "burst" in cpu:
            w.add("cpu", "cpu.max.burst", cpu["burst"], f + ".burst")
        _cpu_idle_and_sets(w, cpu, f)
    _pids(w, res)
    bio = res.get("blockIO", {})
    if bio:
        f = P + ".blockIO"
        d = w.dir("io", f)
        bfq = os.path.exists(os.path.join(d, "io.bfq.weight"))
        if bio.get("leafWeight"):
            raise CgroupError(f"{f}.leafWeight: not supported on cgroup v2")
        if bio.get("weight"):
            if bfq:
                w.add("io", "io.bfq.weight", bio["weight"], f + ".weight")
            else:
                w.add("io", "io.weight", f"default {blkio_weight_to_io_weight(bio['weight'])}", f + ".weight")
        for i, e in enumerate(bio.get("weightDevice", [])):
            if e.get("leafWeight"):
                raise CgroupError(f"{f}.weightDevice[{i}].leafWeight: not supported on cgroup v2")
            if e.get("weight"):
                if bfq:
                    w.add("io", "io.bfq.weight", f"{e['major']}:{e['minor']} {e['weight']}", f"{f}.weightDevice[{i}]")
                else:
                    w.add("io", "io.weight", f"{e['major']}:{e['minor']} {blkio_weight_to_io_weight(e['weight'])}",
                          f"{f}.weightDevice[{i}]")
        for key, k in (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                       ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops")):
            for i, e in enumerate(bio.get(key, [])):
                w.add("io", "io.max", f"{e['major']}:{e['minor']} {k}={e['rate'] or 'max'}", f"{f}.{key}[{i}]")
    for i, h in enumerate(res.get("hugepageLimits", [])):
        ff = f"{P}.hugepageLimits[{i}]"
        w.add("hugetlb", f"hugetlb.{h['pageSize']}.max", h["limit"], ff)
        w.add("hugetlb", f"hugetlb.{h['pageSize']}.rsvd.max", h["limit"], ff, optional=True)
    if res.get("network"):
        raise CgroupError(f"{P}.network: net_cls/net_prio do not exist on cgroup v2")
    _rdma(w, res)
    for k, v in res.get("unified", {}).items():
        ctrl = k.split(".", 1)[0]
        ff = f"{P}.unified.{k}"
        if ctrl != "cgroup" and controller_dir(w.cg, ctrl) is None:
            raise CgroupError(f"{ff}: the {ctrl} controller is not enabled for this cgroup")
        w.add(ctrl, k, v, ff)
    if not update and not w.cg.get("rootless"):
        from ocirun.cgroups import devices

        devices.v2_prepare(w, res.get("devices", []), w.device_paths)


def apply_writes(w):
    import errno

    flags = getattr(w, "flags", {})
    failed = set()
    for i, (path, value, field) in enumerate(w.ops):
        kind = flags.get(i)
        if kind == "retry" and path not in failed:
            continue
        try:
            _write(path, value)
        except OSError as e:
            if kind == "soft" and e.errno == errno.EINVAL:
                failed.add(path)
                continue
            from ocirun.errors import strerror

            raise CgroupError(f"{field}: writing {value!r} to {path}: {strerror(e.errno)}") from None
    for fn in getattr(w, "after", []):
        fn()
