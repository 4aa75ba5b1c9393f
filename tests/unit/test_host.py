"""ocirun/host.py: the host facts, read from this very host (no root)."""

import os

import pytest

from ocirun import host


def test_read_and_write(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"ok \xff\n")
    assert host.read(str(p)) == "ok \udcff\n"  # never a UnicodeDecodeError
    assert host.read(str(tmp_path / "missing")) is None
    host.write(str(p), "AB")
    assert p.read_bytes() == b"AB \xff\n"  # one write, no truncation (cgroupfs semantics)
    os.symlink(str(p), str(tmp_path / "link"))
    with pytest.raises(OSError):
        host.write(str(tmp_path / "link"), "x")  # never through a symlink


def test_unescape_and_mounts_at():
    assert host.unescape(r"/a\040b\134c") == "/a b\\c"
    assert host.unescape("/plain") == "/plain"
    root = host.mounts_at("/")
    assert root and all(isinstance(i, int) and isinstance(p, int) for i, p in root)


def test_capabilities():
    with open("/proc/sys/kernel/cap_last_cap") as f:
        assert host.cap_last_cap(41) == int(f.read())
    with open("/proc/self/status") as f:
        bnd = [int(line.split()[1], 16) for line in f if line.startswith("CapBnd:")][0]
    assert host.own_bounding_set() == bnd


def test_cgroup_facts_of_this_process():
    own = host.own_cgroup_paths()
    assert own and all(p.startswith("/") for p in own.values())
    for fstype, mp, _opts in host.cgroup_hierarchies():
        assert fstype in ("cgroup", "cgroup2") and mp.startswith("/")
    assert host.cgroup_hierarchies() == host.cgroup_hierarchies()  # read once, copies handed out


def test_freezer_file_and_frozen(tmp_path):
    v1 = {str(tmp_path / "freezer"): str(tmp_path / "freezer/c"), str(tmp_path / "cpu"): str(tmp_path / "cpu/c")}
    assert host.freezer_file(1, v1) == str(tmp_path / "freezer/c/freezer.state")
    assert host.freezer_file(1, {str(tmp_path / "cpu"): str(tmp_path / "cpu/c")}) is None
    os.makedirs(tmp_path / "freezer/c")
    assert not host.cgroup_frozen(1, v1)  # no file: not frozen
    for text, frozen in (("THAWED\n", False), ("FREEZING\n", True), ("FROZEN\n", True)):
        (tmp_path / "freezer/c/freezer.state").write_text(text)
        assert host.cgroup_frozen(1, v1) is frozen
    v2 = {str(tmp_path): str(tmp_path / "g")}
    os.makedirs(tmp_path / "g")
    assert host.freezer_file(2, v2) == str(tmp_path / "g/cgroup.freeze")
    (tmp_path / "g/cgroup.freeze").write_text("1\n")
    assert host.cgroup_frozen(2, v2)
    (tmp_path / "g/cgroup.freeze").write_text("0\n")
    assert not host.cgroup_frozen(2, v2)
