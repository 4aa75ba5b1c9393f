#!/usr/bin/env python3
"""Where a warm `run` and a warm `exec` of /bin/true spend their time.

For each command, N times: the wall time of the `ocirun` process the caller
starts, and what the warm worker says the command cost it (its --debug line:
wall and CPU of the CLI code in the worker).  The rest of the wall time is
the front-end, the request round trip, and the waiting for the init and the
container that the worker does not see as its own CPU.  Floors measured the
same way: the front-end alone (a `state` of a missing container, answered
without Python), and the kernel's namespace set-up (`unshare -fmpinu true`).
Run as root:

    python3 benchmarks/profile_warm.py [--runs 50] [--v2]

--v2 runs inside a private mount namespace whose /sys/fs/cgroup is cgroup2
(the config then has no linux.resources), as bench.py does.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
OCIRUN = os.environ.get("OCIRUN", "/usr/local/bin/ocirun")
LINE = re.compile(r"the command took ([0-9.]+) ms, ([0-9.]+) ms CPU")


def timed(argv, env):
    t0 = time.perf_counter()
    p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = (time.perf_counter() - t0) * 1000
    if p.returncode != 0 and "does not exist" not in p.stderr.decode():
        raise RuntimeError(f"{argv}: {p.stderr.decode().strip()}")
    return dt


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def measured(argv_of, n, log, env, warmup=3):
    """Medians of (wall, the worker's wall, the worker's CPU) over n runs of
    argv_of(i), each with a fresh --debug log to read the worker's line from."""
    walls, wk, cpu = [], [], []
    for i in range(n + warmup):
        open(log, "w").close()
        dt = timed(argv_of(i), env)
        m = LINE.search(open(log).read())
        if i >= warmup and m:
            walls.append(dt)
            wk.append(float(m.group(1)))
            cpu.append(float(m.group(2)))
    return med(walls), med(wk), med(cpu)


def worker(n, v2):
    sys.path.insert(0, REPO)
    from ocirun.spec.template import default_spec

    work = tempfile.mkdtemp(prefix="ocirun-profw-")
    root = os.path.join(work, "state")
    os.makedirs(root)
    bundle = os.path.join(work, "bundle")
    subprocess.run([os.path.join(REPO, "bundles", "busybox", "build-rootfs.sh"), os.path.join(bundle, "rootfs")],
                   check=True, stdout=subprocess.DEVNULL)
    cfg = default_spec()
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["/bin/true"]
    if v2:
        cfg["linux"].pop("resources", None)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(cfg, f)
    sleeper = os.path.join(work, "sleeper")
    os.mkdir(sleeper)
    cfg["root"]["path"] = os.path.join(bundle, "rootfs")
    cfg["process"]["args"] = ["sleep", "100000"]
    with open(os.path.join(sleeper, "config.json"), "w") as f:
        json.dump(cfg, f)
    env = dict(os.environ, OCIRUN_WARM="1", OCIRUN_WARM_IDLE="600")
    log = os.path.join(work, "log")
    base = [OCIRUN, "--root", root]
    subprocess.run(base + ["warm", "start"], env=env, check=True, stdout=subprocess.DEVNULL)
    out = {}
    try:
        out["run"] = measured(lambda i: base + ["--debug", "--log", log, "run", "-b", bundle, f"pw-{i}"], n, log, env)
        subprocess.run(base + ["run", "-d", "-b", sleeper, "pw-exec"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        out["exec"] = measured(lambda i: base + ["--debug", "--log", log, "exec", "pw-exec", "/bin/true"], n, log, env)
        out["front-end alone (`state` of that container)"] = med([timed(base + ["state", "pw-exec"], env)
                                                                 for _ in range(n)])
        subprocess.run(base + ["delete", "--force", "pw-exec"], env=env, stdout=subprocess.DEVNULL)
        out["kernel: unshare -fmpinu true"] = med([timed(["unshare", "-fmpinu", "true"], env) for _ in range(n)])
    finally:
        subprocess.run(base + ["warm", "stop"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["rm", "-rf", work])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--v2", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(a.runs, a.v2)))
        return 0
    argv = [sys.executable, os.path.abspath(__file__), "--runs", str(a.runs), "--worker"] + (["--v2"] if a.v2 else [])
    if a.v2:
        script = ("umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && exec "
                  + " ".join(f"'{x}'" for x in argv))
        p = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True)
    else:
        p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(p.stderr)
    res = json.loads(p.stdout)
    print(f"{'warm, medians of ' + str(a.runs):<44}{'wall':>10}{'worker':>10}{'worker CPU':>12}{'rest':>10}")
    for k in ("run", "exec"):
        wall, wk, cpu = res[k]
        print(f"{k + ' /bin/true':<44}{wall:>8.2f}ms{wk:>8.2f}ms{cpu:>10.2f}ms{wall - wk:>8.2f}ms")
    for k, v in res.items():
        if k not in ("run", "exec"):
            print(f"{k:<44}{v:>8.2f}ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
