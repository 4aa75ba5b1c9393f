#!/usr/bin/env python3
"""Container start-up benchmarks: ocirun side by side with runc and crun.

Measures, for each runtime installed, in one run and on the same bundle
(busybox rootfs, `ocirun spec` defaults, no terminal, /bin/true):

  run        `RT run -b B id` of /bin/true
  create     `RT create -b B id` alone
  lifecycle  create + start + wait + delete as four commands (what
             containerd's shim does); this process is a subreaper, so it
             reaps the container's init itself
  state      `RT state id` of a created container
  exec       `RT exec id /bin/true` into a running container
  probe100   100 sequential execs (what liveness probes do): wall time, and
             the CPU time (user+sys) of every process involved
  cpu/run    CPU time (user+sys) of every process involved in one `run`

ocirun is measured twice: cold (OCIRUN_WARM=0: the interpreter starts on
every create/run/exec) and warm ("ocirun-warm": OCIRUN_WARM=1 with its server
started first, README "Warm start").  CPU time is getrusage(RUSAGE_CHILDREN)
of this process (the runtime's processes and the container's are all its
waited-for descendants) plus, warm, the server's own and its reaped
workers' (/proc/<server>/stat utime+stime+cutime+cstime, 10 ms ticks, so
only sums over many operations are reported).  The warm server's memory
(PSS of the server and its idle workers) is reported idle and at its peak
during the 50 concurrent runs.

Scenarios:
  v1  the host as it is (cgroup v1 hybrid here), the default config with its
      linux.resources: ocirun vs runc
  v2  a private mount namespace whose /sys/fs/cgroup is cgroup2, config
      without linux.resources: ocirun vs runc vs crun (crun 1.8 refuses v1)
  floors  what no runtime here can go below: the kernel's namespace set-up
      (`unshare -fmpinu true`), and the Python interpreter ocirun's CLI runs
      on, bare and with the modules `run` imports

Prints medians, p10-p90 spreads and ratios against runc and crun, and writes
JSON (--out).  Run as root:  python3 benchmarks/bench.py [--runs 40]
"""

import argparse
import ctypes
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEVNULL = os.open(os.devnull, os.O_RDWR)


ORDER = ["ocirun", "ocirun-warm", "runc", "crun"]
WARM = "warm:"  # a runtime path with this prefix is ocirun with OCIRUN_WARM=1


def runtimes(wanted):
    found = {}
    oci = os.environ.get("OCIRUN", "/usr/local/bin/ocirun")
    paths = {"ocirun": oci, "ocirun-warm": oci, "runc": shutil.which("runc"), "crun": shutil.which("crun")}
    for name in wanted:
        p = paths.get(name)
        if p and os.path.exists(p):
            found[name] = WARM + p if name == "ocirun-warm" else p
    return found


def resolve(argv):
    """(argv, environment) for a runtime command line."""
    env = dict(os.environ, OCIRUN_WARM="0")
    if argv[0].startswith(WARM):
        argv = [argv[0][len(WARM):]] + list(argv[1:])
        env.update(OCIRUN_WARM="1", OCIRUN_WARM_IDLE="600")
    return list(argv), env


def warm_server(rt, root, op):
    """`warm start|status|stop` of the warm runtime's server; its pid."""
    if not rt.startswith(WARM):
        return None
    argv, env = resolve([rt, "--root", root, "warm", op])
    p = subprocess.run(argv, env=env, capture_output=True, text=True)
    if op != "stop" and p.returncode != 0:
        raise RuntimeError(f"warm {op}: {p.stderr.strip()}")
    return int(p.stdout.split()[1].rstrip(",")) if op != "stop" else None


TICK = os.sysconf("SC_CLK_TCK")


def cpu_ms(server=None):
    """CPU time (ms) so far of this process's waited-for descendants, plus
    the warm server's and its reaped workers'."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = (r.ru_utime + r.ru_stime) * 1000
    if server:
        with open(f"/proc/{server}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += sum(int(x) for x in fields[11:15]) * 1000 / TICK
    return total


def warm_pss_mb(server):
    """PSS (MB) of the warm server and its workers."""
    total = 0
    pids = [server]
    try:
        with open(f"/proc/{server}/task/{server}/children") as f:
            pids += [int(x) for x in f.read().split()]
    except OSError:
        return 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def make_bundle(root, resources):
    sys.path.insert(0, REPO)
    from ocirun.spec.template import default_spec

    rootfs = os.path.join(root, "rootfs")
    subprocess.run([os.path.join(REPO, "bundles", "busybox", "build-rootfs.sh"), rootfs], check=True,
                   stdout=subprocess.DEVNULL)
    cfg = default_spec()
    cfg["ociVersion"] = "1.0.2-dev"  # what every runtime here accepts (crun 1.8 rejects 1.2)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["/bin/true"]
    if not resources:
        cfg["linux"].pop("resources", None)
    with open(os.path.join(root, "config.json"), "w") as f:
        json.dump(cfg, f)
    return root


def spawn(argv):
    """Start a command with stdio on /dev/null; returns its exit status."""
    argv, env = resolve(argv)
    pid = os.posix_spawn(argv[0], argv, env, file_actions=[
        (os.POSIX_SPAWN_DUP2, DEVNULL, 0), (os.POSIX_SPAWN_DUP2, DEVNULL, 1), (os.POSIX_SPAWN_DUP2, DEVNULL, 2)])
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def timed(argv):
    t0 = time.perf_counter_ns()
    rc = spawn(argv)
    dt = (time.perf_counter_ns() - t0) / 1e6
    if rc != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {rc}")
    return dt


def reap_any():
    try:
        while True:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return
    except ChildProcessError:
        return


def run_quiet(argv, **kw):
    argv, env = resolve(argv)
    return subprocess.run(argv, env=env, **kw)


def state_pid(rt, root, cid):
    out = run_quiet([rt, "--root", root, "state", cid], capture_output=True, text=True, check=True).stdout
    return json.loads(out)["pid"]


def bench_run(rt, root, bundle, n, warm):
    res = []
    for i in range(warm + n):
        cid = f"bench-run-{os.getpid()}-{i}"
        dt = timed([rt, "--root", root, "run", "-b", bundle, cid])
        if i >= warm:
            res.append(dt)
    return res


def bench_create(rt, root, bundle, n, warm):
    """`create` alone (the delete after each is not timed)."""
    res = []
    for i in range(warm + n):
        cid = f"bench-cr-{os.getpid()}-{i}"
        dt = timed([rt, "--root", root, "create", "-b", bundle, cid])
        run_quiet([rt, "--root", root, "delete", "--force", cid], stdout=subprocess.DEVNULL)
        reap_any()
        if i >= warm:
            res.append(dt)
    return res


def bench_lifecycle(rt, root, bundle, n, warm):
    res = []
    for i in range(warm + n):
        cid = f"bench-lc-{os.getpid()}-{i}"
        t0 = time.perf_counter_ns()
        rc = spawn([rt, "--root", root, "create", "-b", bundle, cid])
        # the init was reparented to us (subreaper): wait for it directly
        rc |= spawn([rt, "--root", root, "start", cid])
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            pass
        rc |= spawn([rt, "--root", root, "delete", cid])
        dt = (time.perf_counter_ns() - t0) / 1e6
        if rc:
            raise RuntimeError(f"{rt} lifecycle failed")
        if i >= warm:
            res.append(dt)
    return res


def bench_state(rt, root, bundle, n, warm):
    cid = f"bench-state-{os.getpid()}"
    run_quiet([rt, "--root", root, "create", "-b", bundle, cid], check=True, stdout=subprocess.DEVNULL,
              stderr=subprocess.DEVNULL)
    try:
        res = [timed([rt, "--root", root, "state", cid]) for _ in range(warm + n)][warm:]
    finally:
        run_quiet([rt, "--root", root, "delete", "--force", cid], stdout=subprocess.DEVNULL)
        reap_any()
    return res


def running(rt, root, sleeper, cid):
    """A started container running `sleep`, for exec."""
    run_quiet([rt, "--root", root, "run", "-d", "-b", sleeper, cid], check=True, stdin=subprocess.DEVNULL,
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def bench_exec(rt, root, bundle, n, warm, sleeper=None):
    cid = f"bench-exec-{os.getpid()}"
    running(rt, root, sleeper, cid)
    try:
        return [timed([rt, "--root", root, "exec", cid, "/bin/true"]) for _ in range(warm + n)][warm:]
    finally:
        run_quiet([rt, "--root", root, "delete", "--force", cid], stdout=subprocess.DEVNULL)
        reap_any()


def bench_probes(rt, root, sleeper, rounds, server=None, count=100):
    """Wall (ms) and CPU (ms) of `count` sequential execs, per round."""
    cid = f"bench-probe-{os.getpid()}"
    running(rt, root, sleeper, cid)
    wall, cpu = [], []
    try:
        for _ in range(rounds):
            c0, t0 = cpu_ms(server), time.perf_counter_ns()
            for _ in range(count):
                if spawn([rt, "--root", root, "exec", cid, "/bin/true"]) != 0:
                    raise RuntimeError(f"{rt} exec failed")
            wall.append((time.perf_counter_ns() - t0) / 1e6)
            if server:
                warm_server(rt, root, "status")  # wakes the server: it reaps the finished workers
                time.sleep(0.05)
            cpu.append(cpu_ms(server) - c0)
    finally:
        run_quiet([rt, "--root", root, "delete", "--force", cid], stdout=subprocess.DEVNULL)
        reap_any()
    return wall, cpu


def bench_run_cpu(rt, root, bundle, rounds, server=None, count=20):
    """CPU (ms) per `run`, averaged over `count` runs, per round."""
    out = []
    for r in range(rounds):
        c0 = cpu_ms(server)
        for i in range(count):
            timed([rt, "--root", root, "run", "-b", bundle, f"bench-cpu-{os.getpid()}-{r}-{i}"])
        if server:
            warm_server(rt, root, "status")
            time.sleep(0.05)
        out.append((cpu_ms(server) - c0) / count)
    return out


def create_rss_and_parked_pss(rt, root, bundle):
    """Peak RSS of the `create` process (KiB, from wait4) and the PSS of
    what stays parked until `start` (KiB, /proc/<init>/smaps_rollup)."""
    cid = f"bench-mem-{os.getpid()}"
    # through GNU time (a small fork+exec parent): a vfork/posix_spawn child
    # would be charged this benchmark's own high-water RSS
    out = tempfile.TemporaryFile()
    argv, env = resolve([rt, "--root", root, "create", "-b", bundle, cid])
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + argv, env=env,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=out)
    out.seek(0)
    if p.returncode != 0:
        raise RuntimeError(f"{rt} create failed: {out.read()!r}")
    maxrss = int(out.read().split()[-1])
    try:
        init = state_pid(rt, root, cid)
        pss = 0
        with open(f"/proc/{init}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
    finally:
        run_quiet([rt, "--root", root, "delete", "--force", cid], stdout=subprocess.DEVNULL)
        reap_any()
    return maxrss, pss


def bench_memory(rt, root, bundle, n, warm):
    if not os.path.exists("/usr/bin/time"):
        raise RuntimeError("GNU time is needed for peak RSS: apt-get install time")
    rss, pss = [], []
    for _ in range(max(3, n // 8)):
        a, b = create_rss_and_parked_pss(rt, root, bundle)
        rss.append(a / 1024)
        pss.append(b / 1024)
    return {"create_peak_rss_mb": rss, "parked_pss_mb": pss}


def bench_concurrent(rt, root, bundle, n, warm, count=50):
    """Wall time (ms) to `run` `count` containers at once."""
    res = []
    for r in range(2):
        t0 = time.perf_counter_ns()
        pids = []
        for i in range(count):
            argv, env = resolve([rt, "--root", root, "run", "-b", bundle, f"bench-cc-{os.getpid()}-{r}-{i}"])
            pids.append(os.posix_spawn(argv[0], argv, env, file_actions=[
                (os.POSIX_SPAWN_DUP2, DEVNULL, 0), (os.POSIX_SPAWN_DUP2, DEVNULL, 1),
                (os.POSIX_SPAWN_DUP2, DEVNULL, 2)]))
        bad = 0
        for p in pids:
            _, st = os.waitpid(p, 0)
            bad += os.waitstatus_to_exitcode(st) != 0
        reap_any()
        if bad:
            raise RuntimeError(f"{rt}: {bad} of {count} concurrent runs failed")
        res.append((time.perf_counter_ns() - t0) / 1e6)
    return res


BENCHES = {"run": bench_run, "create": bench_create, "lifecycle": bench_lifecycle, "state": bench_state,
           "exec": bench_exec}


def summarize(samples):
    s = sorted(samples)
    q = statistics.quantiles(s, n=10) if len(s) > 1 else [s[0], s[0]]
    return {"median": statistics.median(s), "p10": q[0], "p90": q[-1], "n": len(s)}


def run_scenario(scenario, names, n, warm):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    rts = runtimes(names)
    if scenario == "v1":
        rts.pop("crun", None)  # crun 1.8 refuses the v1 hybrid hierarchy
    work = tempfile.mkdtemp(prefix="ocirun-bench-")
    servers = {}
    try:
        # v1: the default `spec` config as is (its linux.resources holds the
        # default device rules); v2: without linux.resources, which crun 1.8
        # needs on this host
        bundle = make_bundle(os.path.join(work, "bundle"), resources=scenario == "v1")
        sleeper = os.path.join(work, "sleeper")
        os.mkdir(sleeper)
        with open(os.path.join(bundle, "config.json")) as f:
            cfg = json.load(f)
        cfg["root"]["path"] = os.path.join(bundle, "rootfs")
        cfg["process"]["args"] = ["sleep", "100000"]
        with open(os.path.join(sleeper, "config.json"), "w") as f:
            json.dump(cfg, f)
        results = {}
        for name, path in rts.items():
            root = os.path.join(work, "state-" + name)
            os.makedirs(root, exist_ok=True)
            servers[name] = warm_server(path, root, "start")
        mem = {name: bench_memory(path, os.path.join(work, "state-" + name), bundle, n, warm)
               for name, path in rts.items()}
        for key in ("create_peak_rss_mb", "parked_pss_mb"):
            results[key] = {name: {"samples": v[key], **summarize(v[key])} for name, v in mem.items()}
        results["concurrent50"] = {}
        for name, path in rts.items():
            peak = [0.0]
            stop = [False]
            if servers.get(name):
                import threading

                idle = [warm_pss_mb(servers[name])]

                def sample(server=servers[name]):
                    while not stop[0]:
                        peak[0] = max(peak[0], warm_pss_mb(server))
                        time.sleep(0.005)

                th = threading.Thread(target=sample, daemon=True)
                th.start()
            v = bench_concurrent(path, os.path.join(work, "state-" + name), bundle, n, warm)
            stop[0] = True
            results["concurrent50"][name] = {"samples": v, **summarize(v)}
            if servers.get(name):
                th.join()
                results["warm_server_pss_mb"] = {name: {"samples": idle, **summarize(idle)}}
                results["warm_server_peak_pss_mb"] = {name: {"samples": peak, **summarize(peak)}}
        for bench, fn in BENCHES.items():
            # interleave runtimes per round to share the machine's noise
            per = {name: [] for name in rts}
            rounds = 4
            for _r in range(rounds):
                for name, path in rts.items():
                    root = os.path.join(work, "state-" + name)
                    kw = {"sleeper": sleeper} if bench == "exec" else {}
                    per[name] += fn(path, root, bundle, max(1, n // rounds), warm if _r == 0 else 1, **kw)
            results[bench] = {name: {"samples": v, **summarize(v)} for name, v in per.items()}
        probes_wall, probes_cpu, run_cpu = {}, {}, {}
        for name, path in rts.items():
            root = os.path.join(work, "state-" + name)
            wall, cpu = bench_probes(path, root, sleeper, 3, servers.get(name))
            probes_wall[name] = {"samples": wall, **summarize(wall)}
            probes_cpu[name] = {"samples": cpu, **summarize(cpu)}
            rc = bench_run_cpu(path, root, bundle, 3, servers.get(name))
            run_cpu[name] = {"samples": rc, **summarize(rc)}
        results["probe100_wall"] = probes_wall
        results["probe100_cpu"] = probes_cpu
        results["cpu_per_run"] = run_cpu
        return results
    finally:
        for name, path in rts.items():
            if servers.get(name):
                warm_server(path, os.path.join(work, "state-" + name), "stop")
        shutil.rmtree(work, ignore_errors=True)


def in_cgroup2_namespace(argv):
    script = ("umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && exec "
              + " ".join(f"'{a}'" for a in argv))
    return subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True)


RUN_MODULES = ("ocirun.cli", "ocirun.cli.commands", "ocirun.verbs.run", "ocirun.verbs.create", "ocirun.verbs.start",
               "ocirun.verbs.delete", "ocirun.verbs.common", "ocirun.verbs.spawn", "ocirun.launch", "ocirun.plan",
               "ocirun.cgroups", "ocirun.cgroups.resources", "ocirun.cgroups.devices", "ocirun.spec.load",
               "ocirun.jsonutil", "ocirun.state", "ocirun.foreground", "ocirun.front", "ocirun.notify")


def python_cli(ocirun):
    """(interpreter, sys.path line) of the Python CLI behind the front-end."""
    py = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(ocirun))), "libexec", "ocirun", "ocirun-py")
    with open(py) as f:
        lines = f.read().splitlines()
    interp = lines[0][2:].split()[0]
    path_line = next(line for line in lines if line.startswith("sys.path"))
    return interp, path_line


def floors(ocirun, n):
    """Medians (ms) of what a container start cannot go below here."""
    interp, path_line = python_cli(ocirun)
    cmds = {
        "kernel: unshare -fmpinu true": ["unshare", "-fmpinu", "true"],
        "python -IS -c pass": [interp, "-IS", "-c", "pass"],
        "python -IS + run's imports": [interp, "-IS", "-c", f"import sys; {path_line}; import " + ", ".join(RUN_MODULES)],
    }
    out = {}
    for name, argv in cmds.items():
        argv[0] = shutil.which(argv[0]) or argv[0]
        samples = [timed(argv) for _ in range(3 + n)][3:]
        out[name] = {"samples": samples, **summarize(samples)}
    return out


UNITS = {"create_peak_rss_mb": "MB", "parked_pss_mb": "MB", "warm_server_pss_mb": "MB",
         "warm_server_peak_pss_mb": "MB"}


def table(results, scenario):
    lines = []
    names = sorted({n for b in results.values() for n in b}, key=ORDER.index)
    mine = [n for n in ("ocirun", "ocirun-warm") if n in names]
    refs = [r for r in ("runc", "crun") if r in names]
    head = f"{'scenario':<9}{'benchmark':<24}" + "".join(f"{n:>22}" for n in names)
    head += "".join(f"{m.replace('ocirun', 'oci') + '/' + ref:>14}" for m in mine for ref in refs)
    lines.append(head)
    for bench, per in results.items():
        row = f"{scenario:<9}{bench:<24}"
        for n in names:
            r = per.get(n)
            unit = UNITS.get(bench, "ms")
            row += (f"{r['median']:>8.1f} {unit} ({r['p10']:.1f}-{r['p90']:.1f})" if r else "-").rjust(22)
        for m in mine:
            for ref in refs:
                ok = ref in per and m in per
                row += f"{per[m]['median'] / per[ref]['median']:>14.2f}" if ok else f"{'-':>14}"
        lines.append(row)
    return "\n".join(lines)


def plot(report, path):
    """Latency distributions: one row of box plots per scenario."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot (pip install -r benchmarks/requirements.txt)")
        return
    order = ["run", "create", "exec", "lifecycle", "state", "concurrent50"]
    rows = [(sc, [b for b in order if b in res]) for sc, res in report["scenarios"].items()]
    rows = [(sc, bs) for sc, bs in rows if bs]
    if not rows:
        return
    ncols = max(len(bs) for _, bs in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(3.3 * ncols, 3.2 * len(rows)), squeeze=False)
    for r, (sc, benches) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r][c]
            if c >= len(benches):
                ax.axis("off")
                continue
            b = benches[c]
            per = report["scenarios"][sc][b]
            names = [n for n in ORDER if n in per]
            ax.boxplot([per[n]["samples"] for n in names], showfliers=False)
            ax.set_xticks(range(1, len(names) + 1), names)
            ax.set_title(f"{sc}: {LABELS.get(b, b)}", fontsize=9)
            ax.set_ylabel("ms")
            ax.set_ylim(bottom=0)
    fig.suptitle(f"ocirun / runc / crun, {report['date']}, {report['machine']['cpus']} cpus, "
                 f"kernel {report['machine']['kernel']} (boxes: quartiles, whiskers: 1.5 IQR)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


LABELS = {"run": "run /bin/true", "create": "create", "lifecycle": "create+start+wait+delete", "state": "state",
          "exec": "exec /bin/true", "concurrent50": "50 concurrent runs (wall)",
          "create_peak_rss_mb": "peak RSS of `create`", "parked_pss_mb": "PSS parked until `start`",
          "probe100_wall": "100 sequential execs (wall)", "probe100_cpu": "100 sequential execs (CPU)",
          "cpu_per_run": "CPU per run", "warm_server_pss_mb": "warm server PSS, idle",
          "warm_server_peak_pss_mb": "warm server PSS, 50 concurrent runs"}


def markdown(report):
    """The README's table, from a results JSON."""
    names = ORDER
    out = ["| scenario | benchmark | ocirun cold | ocirun warm | runc | crun | cold/runc | cold/crun | warm/runc "
           "| warm/crun |", "|---|---|---|---|---|---|---|---|---|---|"]
    for sc, res in report["scenarios"].items():
        for bench in ("run", "create", "exec", "lifecycle", "state", "concurrent50", "probe100_wall", "probe100_cpu",
                      "cpu_per_run", "create_peak_rss_mb", "parked_pss_mb", "warm_server_pss_mb",
                      "warm_server_peak_pss_mb"):
            per = res.get(bench)
            if not per:
                continue
            unit = UNITS.get(bench, "ms")
            cells = []
            for n in names:
                r = per.get(n)
                if not r:
                    cells.append("–")
                elif bench in ("run", "create", "lifecycle", "state", "exec", "cpu_per_run"):
                    cells.append(f"{r['median']:.1f} {unit} ({r['p10']:.1f}–{r['p90']:.1f})")
                else:
                    cells.append(f"{r['median']:.1f} {unit}" if unit == "MB" else f"{r['median']:.0f} {unit}")
            ratios = [f"{per[m]['median'] / per[ref]['median']:.2f}" if ref in per and m in per
                      else "–" for m in ("ocirun", "ocirun-warm") for ref in ("runc", "crun")]
            out.append(f"| {sc} | {LABELS[bench]} | " + " | ".join(cells + ratios) + " |")
    if report.get("floors"):
        out += ["", "| floor (no runtime here goes below it) | median |", "|---|---|"]
        for name, r in report["floors"].items():
            out.append(f"| {name} | {r['median']:.1f} ms ({r['p10']:.1f}–{r['p90']:.1f}) |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--runtimes", default="ocirun,ocirun-warm,runc,crun")
    ap.add_argument("--scenarios", default="v1,v2")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "latest.json"))
    ap.add_argument("--scenario-worker", help=argparse.SUPPRESS)
    ap.add_argument("--markdown", metavar="RESULTS_JSON", help="print the README table of a results file")
    ap.add_argument("--plot", metavar="RESULTS_JSON", help="draw the PNG of a results file (next to it)")
    a = ap.parse_args()
    if a.plot:
        with open(a.plot) as f:
            plot(json.load(f), os.path.splitext(a.plot)[0] + ".png")
        return 0
    if a.markdown:
        with open(a.markdown) as f:
            print(markdown(json.load(f)))
        return 0
    names = a.runtimes.split(",")
    if a.scenario_worker:
        print(json.dumps(run_scenario(a.scenario_worker, names, a.runs, a.warmup)))
        return 0
    if os.geteuid() != 0:
        sys.exit("run as root")
    report = {"machine": {"kernel": platform.release(), "cpus": os.cpu_count(), "python": platform.python_version()},
              "date": time.strftime("%Y-%m-%d"), "runs": a.runs, "scenarios": {}}
    for sc in a.scenarios.split(","):
        argv = [sys.executable, os.path.abspath(__file__), "--runs", str(a.runs), "--warmup", str(a.warmup),
                "--runtimes", a.runtimes, "--scenario-worker", sc]
        if sc == "v2":
            p = in_cgroup2_namespace(argv)
        else:
            p = subprocess.run(argv, capture_output=True, text=True)
        if p.returncode != 0:
            print(f"scenario {sc} failed:\n{p.stderr}", file=sys.stderr)
            continue
        report["scenarios"][sc] = json.loads(p.stdout)
        print(table(report["scenarios"][sc], sc))
        print()
    rts = runtimes(names)
    if "ocirun" in rts:
        report["floors"] = floors(rts["ocirun"], a.runs)
        for name, r in report["floors"].items():
            print(f"floor  {name:<36}{r['median']:>7.1f} ms ({r['p10']:.1f}-{r['p90']:.1f})")
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {a.out}")
    plot(report, os.path.splitext(a.out)[0] + ".png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
