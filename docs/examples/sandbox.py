"""Run untrusted shell code in a throw-away container: 32 MiB of memory (no
swap beyond it), 16 processes, half a CPU, no network, a read-only root and
a time limit.  Every container is deleted before run_untrusted returns.

    python3 sandbox.py ROOTFS [STATE_ROOT]      (as root)

prints one JSON line per sample program: what it gave back, or that it was
stopped by the timeout."""

import json
import sys

import ocirun


def run_untrusted(rootfs, script, *, timeout=5.0, root=None):
    try:
        r = ocirun.run(rootfs, ["sh", "-c", script],
                       memory="32M", pids=16, cpus=0.5,    # linux.resources
                       network="none",                     # its own network namespace: loopback only
                       readonly=True,                      # root.readonly
                       timeout=timeout, text=True, root=root)
    except ocirun.Timeout as e:
        return {"timed_out": True, "stdout": e.stdout}
    return {"exit_code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr}


SAMPLES = {
    "hello": "echo hello from $(hostname)",
    "write_root": "echo x > /etc/owned",
    "network": "ls /sys/class/net; nc -w 2 192.0.2.1 80 </dev/null || echo no network",
    "fork_bomb": "i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i + 1)); done; echo all $i started",
    "memory_hog": "awk 'BEGIN { s = \"x\"; while (1) s = s s }'",
    "forever": "echo spinning; while :; do :; done",
}


def main(argv):
    rootfs = argv[1]
    root = argv[2] if len(argv) > 2 else None
    for name, script in SAMPLES.items():
        res = run_untrusted(rootfs, script, timeout=3 if name == "forever" else 30, root=root)
        print(json.dumps({"sample": name, **res}), flush=True)


if __name__ == "__main__":
    main(sys.argv)
