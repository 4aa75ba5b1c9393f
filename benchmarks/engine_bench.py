#!/usr/bin/env python3
"""End to end through containerd: `ctr run --rm` of /bin/true with runc and
with ocirun as the shim's runc binary, interleaved, on a private containerd
(the engine tests' own set-up: tests/engines).  Shows how much of what an
engine user waits for is the runtime.  Run as root from the repository:

    python3 benchmarks/engine_bench.py [--runs 20]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--ocirun", default="/usr/local/bin/ocirun")
    a = ap.parse_args()
    if a.runs < 2:
        sys.exit("--runs must be at least 2")
    if os.geteuid() != 0:
        sys.exit("run as root")
    for b in ("containerd", "ctr", "containerd-shim-runc-v2", "runc"):
        if not shutil.which(b):
            sys.exit(f"{b} is not installed (apt-get install containerd runc)")
    from tests.engines import ociimage
    from tests.engines.conftest import private_tmpdir, remove_tree
    from tests.engines.test_containerd import Containerd

    tmp = private_tmpdir("ctd-bench")
    work = tempfile.mkdtemp(prefix="ocirun-engine-bench-")
    c = None
    try:
        archive = ociimage.build_archive(ociimage.build_rootfs(os.path.join(work, "rootfs")),
                                         os.path.join(work, "busybox-oci.tar"))
        c = Containerd(tmp, None)
        r = c.ctr("images", "import", archive["path"], timeout=120)
        if r.returncode:
            sys.exit(r.stderr)
        runtimes = {"ocirun": os.path.realpath(a.ocirun), "runc": shutil.which("runc")}
        samples = {n: [] for n in runtimes}
        for i in range(a.runs + 2):
            for name, path in runtimes.items():
                argv = ["ctr", "--address", c.address, "--namespace", c.ns, "run", "--rm", "--runc-binary", path,
                        ociimage.FULL_REF, f"bench-{name}-{i}", "true"]
                t0 = time.perf_counter_ns()
                p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
                dt = (time.perf_counter_ns() - t0) / 1e6
                if p.returncode:
                    sys.exit(f"{name}: {p.stderr.decode()}")
                if i >= 2:
                    samples[name].append(dt)
        med = {n: statistics.median(v) for n, v in samples.items()}
        print(f"`ctr run --rm` of true through containerd, medians of {a.runs} "
              f"({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cpus, kernel {os.uname().release})")
        for n, v in samples.items():
            q = statistics.quantiles(sorted(v), n=10)
            print(f"  {n:<7}{med[n]:8.1f} ms ({q[0]:.1f}-{q[-1]:.1f})")
        print(f"  ocirun/runc {med['ocirun'] / med['runc']:.2f}; "
              f"difference {med['runc'] - med['ocirun']:.1f} ms per container")
    finally:
        if c is not None:
            c.stop()
        remove_tree(tmp)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
