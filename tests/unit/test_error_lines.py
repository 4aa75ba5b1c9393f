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
