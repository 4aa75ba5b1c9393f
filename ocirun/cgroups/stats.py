"""Statistics in the shape of runc's `events --stats` (runc types/events.go):
key names, key order and which keys are omitted when zero are runc's,
because tools decode this output with runc's Go types."""

import os

from ocirun.host import controller_dir, read as _read


def _int(path):
    v = _read(path)
    if v is None:
        return 0
    v = v.strip()
    if v == "max":
        return 2**64 - 1
    try:
        return int(v)
    except ValueError:
        return 0


def _kv(path):
    out = {}
    for line in (_read(path) or "").splitlines():
        k, _, v = line.partition(" ")
        try:
            out[k] = int(v)
        except ValueError:
            pass
    return out


def _omit(d, keys):
    for k in keys:
        if not d.get(k):
            d.pop(k, None)
    return d


def _entry(limit, usage, max_, failcnt):
    return _omit({"limit": limit, "usage": usage, "max": max_, "failcnt": failcnt}, ("usage", "max"))


def _cpuset_list(s):
    out = []
    for part in (s or "").strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def _cpuset(d):
    if d is None:
        return None
    c = {"cpus": _cpuset_list(_read(os.path.join(d, "cpuset.effective_cpus")) or _read(os.path.join(d, "cpuset.cpus")))}
    for k in ("cpu_exclusive",):
        c[k] = _int(os.path.join(d, "cpuset." + k))
    c["mems"] = _cpuset_list(_read(os.path.join(d, "cpuset.effective_mems")) or _read(os.path.join(d, "cpuset.mems")))
    for k in ("mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page", "memory_spread_slab",
              "memory_pressure", "sched_load_balance", "sched_relax_domain_level"):
        c[k] = _int(os.path.join(d, "cpuset." + k))
    return c


def _blkio_v1(d):
    out = {}
    if d is None:
        return out

    def entries(name):
        res = []
        for line in (_read(os.path.join(d, name)) or "").splitlines():
            f = line.split()
            if len(f) == 3 and ":" in f[0]:
                ma, mi = f[0].split(":")
                res.append({"major": int(ma), "minor": int(mi), "op": f[1], "value": int(f[2])})
            elif len(f) == 2 and ":" in f[0]:
                ma, mi = f[0].split(":")
                res.append({"major": int(ma), "minor": int(mi), "op": "", "value": int(f[1])})
        return res

    # CFQ/BFQ statistics when the scheduler provides them, else the
    # throttling layer's (runc's order)
    pre = "blkio." if os.path.exists(os.path.join(d, "blkio.io_service_bytes_recursive")) else "blkio.throttle."
    if pre == "blkio.throttle." and os.path.exists(os.path.join(d, "blkio.bfq.io_service_bytes_recursive")):
        pre = "blkio.bfq."
    for key, name in (("ioServiceBytesRecursive", "io_service_bytes_recursive"),
                      ("ioServicedRecursive", "io_serviced_recursive"),
                      ("ioQueueRecursive", "io_queued_recursive"),
                      ("ioServiceTimeRecursive", "io_service_time_recursive"),
                      ("ioWaitTimeRecursive", "io_wait_time_recursive"),
                      ("ioMergedRecursive", "io_merged_recursive"),
                      ("ioTimeRecursive", "time_recursive"),
                      ("sectorsRecursive", "sectors_recursive")):
        e = entries(pre + name)
        if e:
            out[key] = e
    return out


def _hugetlb(d, v2):
    out = {}
    if d is None:
        return out
    for name in sorted(os.listdir(d)):
        parts = name.split(".")
        if len(parts) != 3 or parts[0] != "hugetlb":
            continue
        size = parts[1]
        if size in out:
            continue
        if v2:
            ev = _kv(os.path.join(d, f"hugetlb.{size}.events"))
            e = {"usage": _int(os.path.join(d, f"hugetlb.{size}.current")), "failcnt": ev.get("max", 0)}
        else:
            e = {"usage": _int(os.path.join(d, f"hugetlb.{size}.usage_in_bytes")),
                 "max": _int(os.path.join(d, f"hugetlb.{size}.max_usage_in_bytes")),
                 "failcnt": _int(os.path.join(d, f"hugetlb.{size}.failcnt"))}
        out[size] = _omit(e, ("usage", "max"))
    return out


def collect(cg):
    """The `data` object of a stats event."""
    if cg["version"] == 2:
        return _collect_v2(cg)
    tick = os.sysconf("SC_CLK_TCK")
    cpu_usage = {}
    acct = controller_dir(cg, "cpuacct")
    if acct:
        cpu_usage["total"] = _int(os.path.join(acct, "cpuacct.usage"))
        cpu_usage["percpu"] = [int(x) for x in (_read(os.path.join(acct, "cpuacct.usage_percpu")) or "").split()]
        cpu_usage["percpu_kernel"] = [int(x) for x in
                                      (_read(os.path.join(acct, "cpuacct.usage_percpu_sys")) or "").split()]
        cpu_usage["percpu_user"] = [int(x) for x in
                                    (_read(os.path.join(acct, "cpuacct.usage_percpu_user")) or "").split()]
        st = _kv(os.path.join(acct, "cpuacct.stat"))
        _omit(cpu_usage, ("total", "percpu", "percpu_kernel", "percpu_user"))
        cpu_usage["kernel"] = st.get("system", 0) * 1_000_000_000 // tick
        cpu_usage["user"] = st.get("user", 0) * 1_000_000_000 // tick
    else:
        cpu_usage = {"kernel": 0, "user": 0}
    thr = {}
    cd = controller_dir(cg, "cpu")
    if cd:
        s = _kv(os.path.join(cd, "cpu.stat"))
        thr = _omit({"periods": s.get("nr_periods", 0), "throttledPeriods": s.get("nr_throttled", 0),
                     "throttledTime": s.get("throttled_time", 0)}, ("periods", "throttledPeriods", "throttledTime"))
    data = {"cpu": {"usage": cpu_usage, "throttling": thr}}
    cs = _cpuset(controller_dir(cg, "cpuset"))
    if cs is not None:
        data["cpuset"] = cs
    md = controller_dir(cg, "memory")
    mem = {}
    if md:
        raw = _kv(os.path.join(md, "memory.stat"))

        def ent(prefix):
            return _entry(_int(os.path.join(md, prefix + "limit_in_bytes")),
                          _int(os.path.join(md, prefix + "usage_in_bytes")),
                          _int(os.path.join(md, prefix + "max_usage_in_bytes")),
                          _int(os.path.join(md, prefix + "failcnt")))

        mem = {"cache": raw.get("cache", 0), "usage": ent("memory."), "swap": ent("memory.memsw."),
               "kernel": ent("memory.kmem."), "kernelTCP": ent("memory.kmem.tcp."), "raw": raw}
        _omit(mem, ("cache", "raw"))
    data["memory"] = mem
    pd = controller_dir(cg, "pids")
    data["pids"] = _omit({"current": _int(os.path.join(pd, "pids.current")) if pd else 0,
                          "limit": _pids_limit(pd)}, ("current", "limit"))
    data["blkio"] = _blkio_v1(controller_dir(cg, "blkio"))
    data["hugetlb"] = _hugetlb(controller_dir(cg, "hugetlb"), False)
    data["intel_rdt"] = {}
    data["network_interfaces"] = None
    return data


def _psi_number(v):
    """Go prints a float64 with no fraction as an integer (0, not 0.0)."""
    f = float(v)
    return int(f) if f.is_integer() else f


def _psi(d, name):
    """runc's PSIStats from a cgroup v2 <res>.pressure file: {"some": …,
    "full": …}, a line of zeros left out (Go's omitzero); None without PSI
    (kernel < 4.20, CONFIG_PSI off, or cgroup.pressure set to 0)."""
    text = _read(os.path.join(d, name))  # None also for EOPNOTSUPP (psi=1 needed)
    if text is None:
        return None
    out = {}
    for line in text.splitlines():
        kind, *fields = line.split()
        if kind not in ("some", "full"):
            continue
        data = {"avg10": 0, "avg60": 0, "avg300": 0, "total": 0}
        for f in fields:
            k, _, v = f.partition("=")
            try:
                if k == "total":
                    data[k] = int(v)
                elif k in data:
                    data[k] = _psi_number(v)
            except ValueError:
                pass
        if any(data.values()):
            out[kind] = data
    return out


def _pids_limit(d):
    if not d:
        return 0
    v = (_read(os.path.join(d, "pids.max")) or "").strip()
    return int(v) if v.isdigit() else 0


def _collect_v2(cg):
    d = next(iter(cg["paths"].values()))
    s = _kv(os.path.join(d, "cpu.stat"))
    usage = _omit({"total": s.get("usage_usec", 0) * 1000}, ("total",))
    usage["kernel"] = s.get("system_usec", 0) * 1000
    usage["user"] = s.get("user_usec", 0) * 1000
    thr = _omit({"periods": s.get("nr_periods", 0), "throttledPeriods": s.get("nr_throttled", 0),
                 "throttledTime": s.get("throttled_usec", 0) * 1000}, ("periods", "throttledPeriods", "throttledTime"))
    data = {"cpu": {"usage": usage, "throttling": thr}}
    psi = _psi(d, "cpu.pressure")
    if psi is not None:
        data["cpu"]["psi"] = psi
    if controller_dir(cg, "cpuset"):
        data["cpuset"] = _cpuset(d)
    mem = {}
    if controller_dir(cg, "memory"):
        raw = _kv(os.path.join(d, "memory.stat"))
        ev = _kv(os.path.join(d, "memory.events"))
        mem = {"cache": raw.get("file", 0),
               "usage": _entry(_int(os.path.join(d, "memory.max")), _int(os.path.join(d, "memory.current")),
                               _int(os.path.join(d, "memory.peak")), ev.get("max", 0)),
               "swap": _entry(_int(os.path.join(d, "memory.swap.max")), _int(os.path.join(d, "memory.swap.current")),
                              _int(os.path.join(d, "memory.swap.peak")), 0),
               "kernel": {"limit": 0, "failcnt": 0}, "kernelTCP": {"limit": 0, "failcnt": 0}, "raw": raw}
        _omit(mem, ("cache", "raw"))
    psi = _psi(d, "memory.pressure")
    if psi is not None:
        mem["psi"] = psi
    data["memory"] = mem
    pd = controller_dir(cg, "pids")
    data["pids"] = _omit({"current": _int(os.path.join(d, "pids.current")) if pd else 0, "limit": _pids_limit(pd)},
                         ("current", "limit"))
    bl = {}
    if controller_dir(cg, "io"):
        sb, sv = [], []
        for line in (_read(os.path.join(d, "io.stat")) or "").splitlines():
            f = line.split()
            if not f or ":" not in f[0]:
                continue
            ma, mi = (int(x) for x in f[0].split(":"))
            kv = dict(x.split("=", 1) for x in f[1:] if "=" in x)
            for key, op, lst in (("rbytes", "Read", sb), ("wbytes", "Write", sb), ("rios", "Read", sv),
                                 ("wios", "Write", sv)):
                if key in kv:
                    lst.append({"major": ma, "minor": mi, "op": op, "value": int(kv[key])})
        if sb:
            bl["ioServiceBytesRecursive"] = sb
        if sv:
            bl["ioServicedRecursive"] = sv
    psi = _psi(d, "io.pressure")
    if psi is not None:
        bl["psi"] = psi
    data["blkio"] = bl
    data["hugetlb"] = _hugetlb(d if controller_dir(cg, "hugetlb") else None, True)
    data["intel_rdt"] = {}
    data["network_interfaces"] = None
    return data
