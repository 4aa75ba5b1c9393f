"""Rootless with the systemd driver: an unprivileged user's container is a
unit of that user's own systemd (systemd --user, reached on the session bus
at $XDG_RUNTIME_DIR/bus), in its user.slice, delegated, as runc does; exec
joins it through systemd (AttachProcessesToUnit: the user may not move a
process into its manager's subtree from outside), delete stops it.

Run in a private systemd (tests/systemd_ns.py, the private_systemd fixture of
tests/conftest.py) where user@65534.service (nobody's manager) is started;
skipped where that fixture is not there."""

import json
import os
import subprocess
import tempfile

import pytest

from tests.conftest import NOBODY, reachable_by_others

pytest.importorskip("tests.systemd_ns")

XDG = f"/run/user/{NOBODY}"


@pytest.fixture
def user_sd(env, private_systemd):
    # before the boot: the private systemd's root is an overlay of the host's
    reachable_by_others(env.bundle)
    spec_dir = os.path.join(env.tmp, "spec")
    os.mkdir(spec_dir)
    os.chown(spec_dir, NOBODY, NOBODY)
    env.sd = private_systemd(binds=[env.tmp])
    r = env.sd.run("systemctl", "start", f"user@{NOBODY}.service")
    if r.returncode != 0:
        pytest.skip(f"no user manager in the private systemd: {r.stderr.strip()}")
    base = list(env.cmd)
    env.as_nobody = lambda *a: _run(env.sd.cmd("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                                               "--clear-groups", "env", f"XDG_RUNTIME_DIR={XDG}", *a))
    env.ocirun = lambda *a: env.as_nobody(*base, *a)
    r = env.ocirun("spec", "--rootless", "--bundle", spec_dir)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(spec_dir, "config.json")) as f:
        cfg = json.load(f)
    os.unlink(os.path.join(spec_dir, "config.json"))
    cfg["root"] = env.cfg["root"]
    cfg["process"]["terminal"] = False
    # no cgroup namespace: /proc/self/cgroup names the unit
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "cgroup"]
    env.cfg = cfg
    return env


def _run(argv):
    """Output through files, not pipes: a created container keeps the
    caller's stdio."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=60)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(argv, p.returncode, out.read().decode(errors="replace"),
                                           err.read().decode(errors="replace"))


def user_units(env, pattern):
    r = env.as_nobody("systemctl", "--user", "list-units", "--all", "--plain", "--no-legend", pattern)
    assert r.returncode == 0, r.stderr
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def test_rootless_container_is_a_unit_of_the_users_systemd(user_sd):
    env = user_sd
    cid = env.new_id("rl")
    unit = f"ocirun-{cid}.scope"
    want = f"0::/user.slice/user-{NOBODY}.slice/user@{NOBODY}.service/user.slice/{unit}"
    env.cfg["process"]["args"] = ["sh", "-c", "cat /proc/self/cgroup"]
    env.write()
    r = env.ocirun("--systemd-cgroup", "run", "-b", env.bundle, cid)
    assert r.returncode == 0, r.stderr
    assert want in r.stdout.splitlines(), r.stdout
    assert user_units(env, unit) == []

    cid = env.new_id("rl")
    unit = f"ocirun-{cid}.scope"
    want = f"0::/user.slice/user-{NOBODY}.slice/user@{NOBODY}.service/user.slice/{unit}"
    env.cfg["process"]["args"] = ["sleep", "100"]
    env.write()
    r = env.ocirun("--systemd-cgroup", "create", "-b", env.bundle, cid)
    assert r.returncode == 0, r.stderr
    try:
        r = env.as_nobody("systemctl", "--user", "show", "-p", "Delegate,ActiveState", unit)
        assert sorted(r.stdout.split()) == ["ActiveState=active", "Delegate=yes"], r.stdout + r.stderr
        assert env.ocirun("start", cid).returncode == 0
        r = env.ocirun("exec", cid, "sh", "-c", "cat /proc/self/cgroup")
        assert r.returncode == 0, r.stderr
        assert want in r.stdout.splitlines(), r.stdout
    finally:
        r = env.ocirun("delete", "--force", cid)
    assert r.returncode == 0, r.stderr
    assert user_units(env, unit) == []
    assert env.ocirun("list", "-q").stdout.split() == []


def test_rootless_limits_without_their_controller_are_refused(user_sd):
    """The user's unit has no pids controller here (this host binds it to
    v1): the limit is refused, naming the field; no unit is left."""
    env = user_sd
    cid = env.new_id("rl")
    env.cfg["linux"]["resources"] = {"pids": {"limit": 10}}
    env.cfg["process"]["args"] = ["true"]
    env.write()
    r = env.ocirun("--systemd-cgroup", "run", "-b", env.bundle, cid)
    if r.returncode == 0:
        pytest.skip("the user's cgroup2 has the pids controller here")
    assert r.returncode == 1 and "linux.resources.pids.limit: the pids cgroup controller is not available" \
        in r.stderr, r.stderr
    assert user_units(env, f"ocirun-{cid}.scope") == []
