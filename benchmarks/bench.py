#!/usr/bin/env python3
"""Container start-up benchmarks: ocirun side by side with runc and crun.

Measures, for each runtime installed, in one run and on the same bundle
(busybox rootfs, `ocirun spec` defaults, no terminal, /bin/true):

  run        `RT run -b B id` of /bin/true
  lifecycle  create + start + wait + delete as four commands (what
             containerd's shim does); this process is a subreaper, so it
             reaps the container's init itself
  state      `RT state id` of a created container

Scenarios:
  v1  the host as it is (cgroup v1 hybrid here): ocirun vs runc
  v2  a private mount namespace whose /sys/fs/cgroup is cgroup2, config
      without linux.resources: ocirun vs runc vs crun (crun 1.8 refuses v1)

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


def runtimes(wanted):
    found = {}
    paths = {"ocirun": os.environ.get("OCIRUN", "/usr/local/bin/ocirun"), "runc": shutil.which("runc"),
             "crun": shutil.which("crun")}
    for name in wanted:
        p = paths.get(name)
        if p and os.path.exists(p):
            found[name] = p
    return found


def make_bundle(root):
    sys.path.insert(0, REPO)
    from ocirun.spec.template import default_spec

    rootfs = os.path.join(root, "rootfs")
    subprocess.run([os.path.join(REPO, "bundles", "busybox", "build-rootfs.sh"), rootfs], check=True,
                   stdout=subprocess.DEVNULL)
    cfg = default_spec()
    cfg["ociVersion"] = "1.0.2-dev"  # what every runtime here accepts (crun 1.8 rejects 1.2)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["/bin/true"]
    cfg["linux"].pop("resources", None)
    with open(os.path.join(root, "config.json"), "w") as f:
        json.dump(cfg, f)
    return root


def spawn(argv):
    """Start a command with stdio on /dev/null; returns its exit status."""
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[
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


def state_pid(rt, root, cid):
    out = subprocess.run([rt, "--root", root, "state", cid], capture_output=True, text=True, check=True).stdout
    return json.loads(out)["pid"]


def bench_run(rt, root, bundle, n, warm):
    res = []
    for i in range(warm + n):
        cid = f"bench-run-{os.getpid()}-{i}"
        dt = timed([rt, "--root", root, "run", "-b", bundle, cid])
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
    subprocess.run([rt, "--root", root, "create", "-b", bundle, cid], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    try:
        res = [timed([rt, "--root", root, "state", cid]) for _ in range(warm + n)][warm:]
    finally:
        subprocess.run([rt, "--root", root, "delete", "--force", cid], stdout=subprocess.DEVNULL)
        reap_any()
    return res


BENCHES = {"run": bench_run, "lifecycle": bench_lifecycle, "state": bench_state}


def summarize(samples):
    s = sorted(samples)
    q = statistics.quantiles(s, n=10)
    return {"median": statistics.median(s), "p10": q[0], "p90": q[-1], "n": len(s)}


def run_scenario(scenario, names, n, warm):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    rts = runtimes(names)
    if scenario == "v1":
        rts.pop("crun", None)  # crun 1.8 refuses the v1 hybrid hierarchy
    work = tempfile.mkdtemp(prefix="ocirun-bench-")
    try:
        bundle = make_bundle(os.path.join(work, "bundle"))
        results = {}
        for bench, fn in BENCHES.items():
            # interleave runtimes per round to share the machine's noise
            per = {name: [] for name in rts}
            rounds = 4
            for _r in range(rounds):
                for name, path in rts.items():
                    root = os.path.join(work, "state-" + name)
                    per[name] += fn(path, root, bundle, max(1, n // rounds), warm if _r == 0 else 1)
            results[bench] = {name: {"samples": v, **summarize(v)} for name, v in per.items()}
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


def in_cgroup2_namespace(argv):
    script = ("umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && exec "
              + " ".join(f"'{a}'" for a in argv))
    return subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True)


def table(results, scenario):
    lines = []
    names = sorted({n for b in results.values() for n in b}, key=["ocirun", "runc", "crun"].index)
    head = f"{'scenario':<9}{'benchmark':<11}" + "".join(f"{n + ' ms':>22}" for n in names)
    head += "".join(f"{'ocirun/' + ref:>14}" for ref in ("runc", "crun") if ref in names)
    lines.append(head)
    for bench, per in results.items():
        row = f"{scenario:<9}{bench:<11}"
        for n in names:
            r = per[n]
            row += f"{r['median']:>8.1f} ({r['p10']:.1f}-{r['p90']:.1f})".rjust(22)
        for ref in ("runc", "crun"):
            if ref in per and "ocirun" in per:
                row += f"{per['ocirun']['median'] / per[ref]['median']:>14.2f}"
        lines.append(row)
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--runtimes", default="ocirun,runc,crun")
    ap.add_argument("--scenarios", default="v1,v2")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "latest.json"))
    ap.add_argument("--scenario-worker", help=argparse.SUPPRESS)
    a = ap.parse_args()
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
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
