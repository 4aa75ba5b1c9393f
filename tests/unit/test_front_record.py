"""The C front-end's record parser against malformed records: mutations of a
real record (written by state.py:fast_record) parsed under ASan/UBSan.  The
front-end trusts nothing in the file beyond what it parses."""

import os
import shutil
import subprocess

import pytest

from ocirun.state import fast_record

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FRONT = os.path.join(REPO, "csrc", "front")


def sample_state():
    return {"id": "c", "pid": 4242, "start_time": 123456, "bundle": "/b/ünï", "rootfs": "/b/rootfs",
            "created": "2026-11-28T00:00:00Z", "ociVersion": "1.2.1",
            "annotations": {"k": 'v "q" \\', "e": "\U0001f433"}, "hooks": {"poststop": [{"path": "/bin/true"}]},
            "cgroup": {"version": 1, "paths": {"/sys/fs/cgroup/freezer": "/sys/fs/cgroup/freezer/c",
                                               "/sys/fs/cgroup/pids": "/sys/fs/cgroup/pids/c"},
                       "made": ["/sys/fs/cgroup/freezer/c", "/sys/fs/cgroup/pids/c"]}, "ns": ["pid"]}


def test_record_round_trips_through_the_parser_shape():
    rec = fast_record(sample_state())
    head, _, rest = rec.partition(b"\nhead ")
    assert head.splitlines()[0] == b"ocirun-fast 2"
    assert b"py delete" in head and b"cg /sys/fs/cgroup/pids/c" in head
    n = int(rest.split(b"\n", 1)[0])
    assert rest.split(b"\n", 1)[1][:n].endswith(b'"pid": ')


def test_no_record_when_a_value_holds_a_newline():
    st = sample_state()
    st["cgroup"]["paths"]["/sys/fs/cgroup/pids"] = "/sys/fs/cgroup/pids/c\nfreeze /etc/passwd"
    assert fast_record(st) is None


def test_parser_survives_mutated_records(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler")
    exe = tmp_path / "fuzz"
    srcs = [os.path.join(REPO, "tests", "unit", "c", "front_record_fuzz.c")] + [
        os.path.join(FRONT, f) for f in ("record.c", "log.c", "commands.c", "state.c", "start.c", "kill.c", "delete.c")] + [
        os.path.join(os.path.join(REPO, "csrc", "core"), "lifecycle.c")]
    build = subprocess.run([cc, "-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                            "-I", FRONT, "-I", os.path.join(REPO, "csrc", "core"), "-o", str(exe), *srcs], capture_output=True, text=True)
    if build.returncode != 0 and "asan" in build.stderr.lower():
        pytest.skip("no sanitizer runtime: " + build.stderr.strip().splitlines()[-1])
    assert build.returncode == 0, build.stderr
    seed = tmp_path / "seed"
    seed.write_bytes(fast_record(sample_state()))
    work = tmp_path / "work"
    work.mkdir()
    for s in (1, 2):
        r = subprocess.run([str(exe), str(seed), str(work), str(s), "1500"], capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
