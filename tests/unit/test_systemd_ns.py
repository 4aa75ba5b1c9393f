"""The private systemd fixture's checks (tests/systemd_ns.py): it says why
it cannot boot, before creating anything, where systemd 252+ or D-Bus is
missing."""

import os

import pytest

from tests import systemd_ns


@pytest.fixture
def as_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)


def test_no_systemd(as_root, monkeypatch, tmp_path):
    monkeypatch.setattr(systemd_ns, "SYSTEMD", str(tmp_path / "no-systemd"))
    assert systemd_ns.unavailable() == f"systemd is not installed ({tmp_path / 'no-systemd'})"
    assert os.listdir(tmp_path) == []


def test_old_systemd(as_root, monkeypatch, tmp_path):
    fake = tmp_path / "systemd"
    fake.write_text("#!/bin/sh\necho 'systemd 247 (247.3-7+deb11u4)'\n")
    fake.chmod(0o755)
    monkeypatch.setattr(systemd_ns, "SYSTEMD", str(fake))
    assert systemd_ns.systemd_version() == 247
    assert systemd_ns.unavailable() == "systemd 247 is older than 252"


def test_no_dbus(as_root, monkeypatch, tmp_path):
    fake = tmp_path / "systemd"
    fake.write_text("#!/bin/sh\necho 'systemd 252 (252.38-1~deb12u1)'\n")
    fake.chmod(0o755)
    monkeypatch.setattr(systemd_ns, "SYSTEMD", str(fake))
    real_which = systemd_ns.shutil.which
    monkeypatch.setattr(systemd_ns.shutil, "which",
                        lambda name, *a, **k: None if name.startswith("dbus") else real_which(name, *a, **k))
    assert systemd_ns.unavailable() == "no D-Bus daemon (apt-get install dbus)"


def test_not_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert systemd_ns.unavailable() == "a private systemd needs root"


def test_v1_hierarchies_parse(monkeypatch, tmp_path):
    text = "12:cpu,cpuacct:/a\n1:name=systemd:/b\n0::/c\n"
    real_open = open

    def fake_open(path, *a, **k):
        if path == "/proc/self/cgroup":
            import io
            return io.StringIO(text)
        return real_open(path, *a, **k)

    monkeypatch.setattr("builtins.open", fake_open)
    assert systemd_ns.v1_hierarchies() == [("cpu,cpuacct", "cpu,cpuacct", "/a"), ("none,name=systemd", "systemd", "/b")]
