"""Units of the bad-input handling: the error-line formatter, the SemVer
check, and the CLI's last-resort handler."""

import json

import pytest

from ocirun import log
from ocirun.plan import is_semver


@pytest.mark.parametrize("msg", [
    "linux.namespaces[0].path: " + "/x" * 3000 + ": no such file or directory",
    "v: " + "a b " * 2000,
    "v: " + " ".join(["\u1234" * 100] * 30),
    "x\n\ud800y" + "\u00e9" * 3000,
    "k" * 100000,
])
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_every_line_stays_under_1k(msg, fmt):
    log.configure(None, fmt)
    try:
        line = log.format_line("error", msg)
    finally:
        log.configure()
    assert line.endswith("\n") and line.count("\n") == 1
    assert len(line.encode()) < 900
    assert len(log.fit(msg).encode("utf-8", "backslashreplace")) < 900


def test_field_and_cause_survive():
    out = log.fit("linux.namespaces[0].path: " + "/x" * 3000 + ": no such file or directory")
    assert out.startswith("linux.namespaces[0].path: /x/x/x")
    assert out.endswith("/x/x: no such file or directory")
    assert "(5841 more)" in out


def test_short_lines_untouched():
    msg = 'ocirun run failed: process.cwd: must be an absolute path "x"'
    assert log.fit(msg) is msg or log.fit(msg) == msg


@pytest.mark.parametrize("v,ok", [
    ("1.0.0", True), ("1.2.1", True), ("1.0.2-dev", True), ("1.0.0-rc.1+build.5", True), ("1.0.0-alpha-1", True),
    ("1.0.0+001", True), ("invalid", False), ("1.0", False), ("01.0.0", False), ("1.0.0-", False),
    ("1.0.0+", False), ("1.0.0-01", False), ("1.0.0-a..b", False), ("\uff11.0.0", False), ("", False),
])
def test_semver(v, ok):
    assert is_semver(v) is ok


def test_stray_exception_is_one_line(monkeypatch, capfd, tmp_path):
    """Whatever a command raises that nothing turned into an error: one
    line, one log record, exit 1, no traceback."""
    from ocirun import cli
    from ocirun.cli import commands

    def boom(*_a):
        raise KeyError("x" * 5000)

    monkeypatch.setattr(commands, "cmd_list", boom)
    logf = tmp_path / "log.json"
    assert cli.main(["--root", str(tmp_path), "--log", str(logf), "--log-format", "json", "list"]) == 1
    err = capfd.readouterr().err
    (line,) = err.splitlines()
    assert line.startswith("ocirun list failed: internal error: KeyError: 'xxx") and len(line) < 900
    (rec,) = [json.loads(x) for x in logf.read_text().splitlines()]
    assert rec["level"] == "error" and rec["msg"] == line
    monkeypatch.setattr(commands, "cmd_list", lambda *_a: (_ for _ in ()).throw(RecursionError()))
    assert cli.main(["--root", str(tmp_path), "list"]) == 1
    assert "ocirun list failed: input nested too deeply" in capfd.readouterr().err


def _state(cg):
    return {"id": "c", "pid": 4242, "start_time": 1, "bundle": "/b", "rootfs": "/b/rootfs", "created": "x",
            "ociVersion": "1.2.1", "cgroup": cg, "hooks": {}}


V1 = {"/sys/fs/cgroup/pids": "/sys/fs/cgroup/pids/c", "/sys/fs/cgroup/freezer": "/sys/fs/cgroup/freezer/a/c"}


@pytest.mark.parametrize("cg,ok", [
    (None, True),
    ({"version": 1, "paths": V1}, True),
    ({"version": 2, "paths": {"/sys/fs/cgroup": "/sys/fs/cgroup/c"}}, True),
    # a hierarchy's root: delete would kill every process in it
    ({"version": 1, "paths": dict(V1, **{"/sys/fs/cgroup/pids": "/sys/fs/cgroup/pids"})}, False),
    ({"version": 1, "paths": {"/sys/fs/cgroup/pids": "/sys/fs/cgroup/cpu"}}, False),
    ({"version": 2, "paths": {"/sys/fs/cgroup": "/sys/fs/cgroup"}}, False),
    ({"version": 2, "paths": {"/sys/fs/cgroup": "/sys/fs/cgroup/c/.."}}, False),
    ({"version": 1, "paths": {"/sys/fs/cgroup/pids": "relative/c"}}, False),
    ({"version": 3, "paths": V1}, False),
    ({"version": 1, "paths": {}}, False),
    ("x", False),
])
def test_state_cgroup_paths_checked(cg, ok):
    from ocirun.state import check_state

    if ok:
        assert check_state(_state(cg), "c")
    else:
        with pytest.raises(ValueError):
            check_state(_state(cg), "c")


@pytest.mark.parametrize("field,value", [("pid", "1"), ("pid", -1), ("pid", 2**40), ("pid", True),
                                         ("start_time", "x"), ("id", "other"), ("hooks", []),
                                         ("hooks", {"poststop": [{"path": 5}]}), ("annotations", {"k": 1})])
def test_state_fields_checked(field, value):
    from ocirun.state import check_state

    st = _state(None)
    st[field] = value
    with pytest.raises(ValueError):
        check_state(st, "c")


def test_front_end_record_refuses_root_cgroups_and_bad_numbers(tmp_path):
    """The C parser hands such a record to Python rather than act on it."""
    import os
    import shutil
    import subprocess

    from ocirun.state import fast_record

    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    front = os.path.join(repo, "csrc", "front")
    exe = tmp_path / "check"
    srcs = [os.path.join(repo, "tests", "unit", "c", "front_record_check.c")] + [
        os.path.join(front, f) for f in ("record.c", "log.c", "commands.c", "state.c", "start.c", "kill.c", "delete.c")] + [
        os.path.join(os.path.join(repo, "csrc", "core"), "lifecycle.c")]
    b = subprocess.run([cc, "-O1", "-I", front, "-I", os.path.join(repo, "csrc", "core"), "-o", str(exe), *srcs], capture_output=True, text=True)
    assert b.returncode == 0, b.stderr

    def parse(rec):
        (tmp_path / "fast").write_bytes(rec)
        return subprocess.run([str(exe), str(tmp_path)], capture_output=True, text=True).stdout.strip()

    good = fast_record(_state({"version": 1, "paths": V1}))
    assert parse(good) == "ok 2"
    assert parse(good.replace(b"cg /sys/fs/cgroup/pids/c\n", b"cg /sys/fs/cgroup/pids\n")) == "rejected"
    assert parse(good.replace(b"cg /sys/fs/cgroup/pids/c\n", b"cg /sys/fs/cgroup/pids/c/..\n")) == "rejected"
    assert parse(good.replace(b"cg /sys/fs/cgroup/pids/c\n", b"cg /sys/fs/cgroup/pids//c\n")) == "rejected"
    v2 = fast_record(_state({"version": 2, "paths": {"/sys/fs/cgroup": "/sys/fs/cgroup/c"}}))
    assert parse(v2) == "ok 1"
    assert parse(v2.replace(b"cg /sys/fs/cgroup/c\n", b"cg /sys/fs/cgroup\n")) == "rejected"
    assert parse(good.replace(b"pid 4242", b"pid 99999999999999999999")) == "rejected"
    assert parse(good.replace(b"pid 4242", b"pid -4242")) == "rejected"
    assert parse(good.replace(b"pid 4242", b"pid 4294967296")) == "rejected"
