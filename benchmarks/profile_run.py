#!/usr/bin/env python3
"""Where the time of one `ocirun run` of /bin/true goes, phase by phase.

Runs the Python CLI in-process (as the launcher does: the interpreter the
front-end hands off to, -IS) with monotonic timestamps around each phase of
verbs.run.run, many times, and prints the median of each phase.  The
interpreter start-up and the imports are measured as separate processes
(they happen before any ocirun code runs).  Run as root:

    python3 benchmarks/profile_run.py [--runs 30] [--v2]

--v2 profiles inside a private mount namespace whose /sys/fs/cgroup is
cgroup2 (the config then has no linux.resources), as bench.py does.
"""

import argparse
import ast
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

PHASES = [
    # (module, attribute, label)
    ("ocirun.spec.load", "load_config", "read config.json"),
    ("ocirun.plan", "build", "config -> plan"),
    ("ocirun.cgroups", "create", "cgroup mkdir"),
    ("ocirun.cgroups", "apply", "cgroup limits"),
    ("ocirun.launch", "spawn", "spawn init (memfd, posix_spawn)"),
    ("ocirun.launch", "converse", "init set-up until blocked on the fifo (incl. cgroup join)"),
    ("ocirun.cgroups", "add_pid", "  of which: cgroup.procs writes (v1)"),
    ("ocirun.verbs.start", "start", "start (fifo)"),
    ("ocirun.foreground", "wait_status", "exec + wait for exit"),
    ("ocirun.verbs.delete", "force_delete", "delete (cgroups, state)"),
]


def worker(bundle, runs):
    """In the launcher's interpreter: time each phase of `run`, many runs."""
    import importlib

    sys.argv = ["ocirun"]
    from ocirun.state import Store
    from ocirun.verbs import run as R
    from ocirun.verbs.create import CreateOptions

    times = {label: [] for _m, _a, label in PHASES}
    totals = []
    current = {}

    def wrap(mod, attr, label):
        m = importlib.import_module(mod)
        orig = getattr(m, attr)

        def timed(*a, **kw):
            t0 = time.perf_counter_ns()
            try:
                return orig(*a, **kw)
            finally:
                current[label] = current.get(label, 0) + (time.perf_counter_ns() - t0) / 1e6

        setattr(m, attr, timed)
        # modules that imported the name directly
        for other in list(sys.modules.values()):
            if other is not m and getattr(other, attr, None) is orig and other.__name__.startswith("ocirun"):
                setattr(other, attr, timed)

    for mod, attr, label in PHASES:
        wrap(mod, attr, label)
    root = tempfile.mkdtemp(prefix="ocirun-prof-")
    devnull = os.open(os.devnull, os.O_RDWR)
    saved = [os.dup(i) for i in (0, 1, 2)]
    try:
        for i in range(runs + 3):
            current.clear()
            for fd in (0, 1):
                os.dup2(devnull, fd)
            t0 = time.perf_counter_ns()
            rc = R.run(Store(root), f"prof-{os.getpid()}-{i}", CreateOptions(bundle=bundle, detach=False))
            total = (time.perf_counter_ns() - t0) / 1e6
            for fd in (0, 1):
                os.dup2(saved[fd], fd)
            if rc != 0:
                raise SystemExit(f"run exited {rc}")
            if i >= 3:
                totals.append(total)
                for label in times:
                    times[label].append(current.get(label, 0.0))
    finally:
        os.rmdir(root)
    out = {label: statistics.median(v) for label, v in times.items()}
    out["total in-process"] = statistics.median(totals)
    print(json.dumps(out))


def median_ms(argv, n):
    res = []
    for _ in range(n + 3):
        t0 = time.perf_counter_ns()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        res.append((time.perf_counter_ns() - t0) / 1e6)
    return statistics.median(res[3:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--v2", action="store_true")
    ap.add_argument("--ocirun", default="/usr/local/bin/ocirun")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--syspath", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        sys.path[:0] = a.syspath.split(":")
        worker(a.worker, a.runs)
        return 0
    sys.path.insert(0, HERE)
    from bench import RUN_MODULES, make_bundle, python_cli

    interp, path_line = python_cli(a.ocirun)
    work = tempfile.mkdtemp(prefix="ocirun-prof-")
    try:
        bundle = make_bundle(os.path.join(work, "bundle"), resources=not a.v2)
        paths = ast.literal_eval(path_line.split("=", 1)[1].strip())
        argv = [interp, "-IS", os.path.abspath(__file__), "--worker", bundle, "--runs", str(a.runs),
                "--syspath", ":".join(paths)]
        if a.v2:
            script = ("umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && exec "
                      + " ".join(f"'{x}'" for x in argv))
            argv = ["unshare", "-m", "sh", "-c", script]
        p = subprocess.run(argv, capture_output=True, text=True)
        if p.returncode:
            sys.exit(p.stderr)
        phases = json.loads(p.stdout.strip().splitlines()[-1])
    finally:
        subprocess.run(["rm", "-rf", work])
    bare = median_ms([interp, "-IS", "-c", "pass"], a.runs)
    imports = median_ms([interp, "-IS", "-c", f"import sys; {path_line}; import " + ", ".join(RUN_MODULES)], a.runs)
    print(f"`ocirun run` of /bin/true, {'cgroup v2 namespace' if a.v2 else 'host (cgroup v1)'}, "
          f"medians of {a.runs} runs, {time.strftime('%Y-%m-%d')}")
    print(f"{'interpreter start-up (' + os.path.basename(interp) + ' -IS -c pass)':<62}{bare:7.2f} ms")
    print(f"{'imports of the run path':<62}{imports - bare:7.2f} ms")
    for label, v in phases.items():
        print(f"{label:<62}{v:7.2f} ms")
    accounted = sum(v for k, v in phases.items() if not k.startswith("  ") and k != "total in-process")
    print(f"{'  (in-process, outside the phases above)':<62}{phases['total in-process'] - accounted:7.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
