"""The systemd cgroup driver's refusals against a real (private) systemd:
a unit name another unit holds, a limit whose controller the unit's group
does not have, bad names and annotations, a stuck bus.  Each is one line
naming the unit or the field, exit status 1, and leaves no container, no
unit and no group behind (and never touches the other unit).

The private systemd is the fixture of tests/systemd_ns.py (private_systemd
in tests/conftest.py); these tests are skipped where it is not there."""

import os
import socket
import subprocess
import time

import pytest

pytest.importorskip("tests.systemd_ns")


@pytest.fixture
def sd_env(env, private_systemd):
    env.sd = private_systemd(binds=[env.tmp])
    env.cmd = env.sd.cmd(*env.cmd)
    env.cfg["linux"]["namespaces"] = [n for n in env.cfg["linux"]["namespaces"] if n["type"] != "cgroup"]
    env.cfg["process"]["args"] = ["true"]
    return env


def units(sd, pattern):
    r = sd.run("systemctl", "list-units", "--all", "--plain", "--no-legend", pattern)
    assert r.returncode == 0, r.stderr
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def active(sd, unit):
    r = sd.run("systemctl", "show", "-p", "ActiveState", unit)
    return r.stdout.strip() == "ActiveState=active"


def host_group(env, cgpath):
    return os.path.join(env.sd.host_v2_dir(), "payload", cgpath.lstrip("/"))


def one_line(r):
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and len(lines[0]) < 1024, r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


def assert_nothing_left(env, cid, unit, cgpath):
    assert env.cli("list", "-q").stdout.split() == []
    assert not os.path.exists(os.path.join(env.root, cid))
    assert units(env.sd, unit) == []
    assert not os.path.exists(host_group(env, cgpath))


def test_unit_name_taken_by_another_unit(sd_env):
    """StartTransientUnit refused (UnitExists): the error names the unit, and
    the failed create never stops the unit that holds the name."""
    env = sd_env
    cid = env.new_id()
    unit = f"libpod-{cid}.scope"
    other = subprocess.Popen(env.sd.cmd("systemd-run", "--quiet", "--scope", "--unit", unit, "sleep", "100"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not active(env.sd, unit):
            assert time.monotonic() < deadline and other.poll() is None, "systemd-run --scope did not start"
            time.sleep(0.05)
        env.cfg["linux"]["cgroupsPath"] = f"machine.slice:libpod:{cid}"
        env.write()
        r = env.cli("--systemd-cgroup", "run", "-b", env.bundle, cid)
        assert one_line(r).endswith(f"unit {unit} exists already (another container's, or a leftover: "
                                    f"`systemctl stop {unit}`)\""), r.stderr
        assert active(env.sd, unit) and other.poll() is None
        assert env.cli("list", "-q").stdout.split() == []
        assert not os.path.exists(os.path.join(env.root, cid))
    finally:
        env.sd.run("systemctl", "stop", unit)
        other.wait(30)
    assert units(env.sd, unit) == []


def test_limit_without_its_controller_leaves_no_unit(sd_env):
    """The unit's group has no memory controller (this host binds it to v1):
    a memory limit systemd would only record is refused, naming the field,
    and the unit started for the container is stopped again."""
    env = sd_env
    cid = env.new_id()
    env.cfg["linux"]["cgroupsPath"] = f"machine.slice:libpod:{cid}"
    env.cfg["linux"]["resources"] = {"memory": {"limit": 64 << 20}}
    env.write()
    r = env.cli("--systemd-cgroup", "run", "-b", env.bundle, cid)
    if r.returncode == 0:
        pytest.skip("this host's cgroup2 has the memory controller")
    assert "linux.resources.memory.limit: the memory cgroup controller is not available" in one_line(r)
    assert_nothing_left(env, cid, f"libpod-{cid}.scope", f"/machine.slice/libpod-{cid}.scope")


@pytest.mark.parametrize("path, annotations, msg", [
    ("a--b.slice:libpod:{id}", {}, 'linux.cgroupsPath: invalid slice name \\"a--b.slice\\"'),
    ("machine.slice:libpod:{id}.slice", {}, "names a slice, which cannot hold the container's processes"),
    ("machine.slice:{id}", {}, 'expected cgroupsPath to be of format \\"slice:prefix:name\\"'),
    ("machine.slice:libpod:{id}", {"org.systemd.property.Foo": "(1, 2)"},
     "annotations.org.systemd.property.Foo: value '(1, 2)': '(' not supported"),
    ("machine.slice:libpod:{id}", {"org.systemd.property.X1": "1"},
     "annotations.org.systemd.property.X1: name incorrect"),
])
def test_bad_names_and_annotations(sd_env, path, annotations, msg):
    env = sd_env
    cid = env.new_id()
    env.cfg["linux"]["cgroupsPath"] = path.format(id=cid)
    env.cfg["annotations"] = annotations
    env.write()
    r = env.cli("--systemd-cgroup", "run", "-b", env.bundle, cid)
    assert msg in one_line(r), r.stderr
    assert_nothing_left(env, cid, f"libpod-{cid}*", f"/machine.slice/libpod-{cid}.scope")


def test_systemd_refuses_a_property(sd_env):
    """A property systemd does not know for a scope: its refusal, in one line
    naming the unit; nothing left."""
    env = sd_env
    cid = env.new_id()
    env.cfg["linux"]["cgroupsPath"] = f"machine.slice:libpod:{cid}"
    env.cfg["annotations"] = {"org.systemd.property.NoSuchProperty": "true"}
    env.write()
    r = env.cli("--systemd-cgroup", "run", "-b", env.bundle, cid)
    line = one_line(r)
    assert f"unit libpod-{cid}.scope: systemd refused StartTransientUnit: " in line, line
    assert "NoSuchProperty" in line
    assert_nothing_left(env, cid, f"libpod-{cid}.scope", f"/machine.slice/libpod-{cid}.scope")


def test_stuck_bus_is_time_bounded(sd_env):
    """A bus that accepts and never answers: one line naming the unit, after
    the connect timeout, not a hang; the spawned init is gone too."""
    env = sd_env
    cid = env.new_id()
    path = os.path.join(env.tmp, "stuck.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(8)
    try:
        env.cfg["linux"]["cgroupsPath"] = f"machine.slice:libpod:{cid}"
        env.write()
        r = env.cli("--systemd-cgroup", "run", "-b", env.bundle, cid, timeout=60,
                    env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=f"unix:path={path}"))
        assert (f"unit libpod-{cid}.scope: cannot connect to systemd over D-Bus ({path}: no answer in time)"
                in one_line(r)), r.stderr
    finally:
        srv.close()
    assert_nothing_left(env, cid, f"libpod-{cid}.scope", f"/machine.slice/libpod-{cid}.scope")


def test_delete_force_of_a_corrupt_state_stops_the_unit(sd_env):
    """state.json unusable: delete --force finds the unit from the saved
    config's slice:prefix:name path, stops it (its processes go with it)
    and removes its group."""
    env = sd_env
    cid = env.new_id()
    unit = f"libpod-{cid}.scope"
    env.cfg["linux"]["cgroupsPath"] = f"machine.slice:libpod:{cid}"
    env.cfg["process"]["args"] = ["sleep", "100"]
    env.write()
    r = env.cli("--systemd-cgroup", "create", "-b", env.bundle, cid)
    assert r.returncode == 0, r.stderr
    assert active(env.sd, unit)
    with open(os.path.join(env.root, cid, "state.json"), "w") as f:
        f.write("{not json")
    r = env.cli("delete", "--force", cid)
    assert r.returncode == 0, r.stderr
    assert_nothing_left(env, cid, unit, f"/machine.slice/{unit}")
