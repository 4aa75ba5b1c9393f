"""Rootless containers: ocirun run by an unprivileged user (nobody here),
with the config `ocirun spec --rootless` writes, as runc does: state under
$XDG_RUNTIME_DIR/ocirun, the user's own uid and gid mapped to root in a new
user namespace, no cgroup."""

import json
import os
import re
import subprocess

import pytest

from tests.conftest import NOBODY, reachable_by_others, state_entries, wait_status

@pytest.fixture
def rl(env):
    """env, set up for nobody: its XDG_RUNTIME_DIR, a rootless config."""
    xdg = os.path.join(env.tmp, "xdg")
    os.mkdir(xdg, 0o700)
    os.chown(xdg, NOBODY, NOBODY)
    env.xdg = xdg
    env.root = os.path.join(xdg, "ocirun")  # what the leftovers check looks at
    reachable_by_others(env.bundle)
    r = as_nobody(env, "spec", "--rootless", "--bundle", xdg)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(xdg, "config.json")) as f:
        env.cfg = json.load(f)
    os.unlink(os.path.join(xdg, "config.json"))
    env.cfg["process"]["terminal"] = False
    return env


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def as_nobody(env, *args, xdg=True, timeout=30, cmd=None, userns=False):
    """Run ocirun as nobody; with userns, as root of a user namespace of
    nobody's (`unshare -Ur`, what rootless podman and rootlesskit look like)."""
    pre = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "env"]
    pre += [f"XDG_RUNTIME_DIR={env.xdg}"] if xdg else ["-u", "XDG_RUNTIME_DIR"]
    if userns:
        pre += ["unshare", "-Ur"]
    with open(os.path.join(env.tmp, "out"), "w+") as out, open(os.path.join(env.tmp, "err"), "w+") as err:
        p = subprocess.run(pre + list(cmd or env.cmd) + [str(a) for a in args], stdout=out, stderr=err,
                           stdin=subprocess.DEVNULL, timeout=timeout, cwd=env.bundle)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(p.args, p.returncode, out.read(), err.read())


def test_spec_rootless_maps_the_users_own_ids(rl):
    assert rl.cfg["linux"]["uidMappings"] == [{"containerID": 0, "hostID": NOBODY, "size": 1}]
    assert {"type": "user"} in rl.cfg["linux"]["namespaces"]
    assert "resources" not in rl.cfg["linux"]


def test_run_as_nobody(rl):
    rl.cfg["process"]["args"] = ["sh", "-c", "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; "
                                             "cat /proc/self/setgroups; ls /dev/null && echo dev-ok"]
    rl.write()
    r = as_nobody(rl, "run", rl.new_id("rl"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0:2] == ["0", "0"], r.stdout
    assert lines[2].split() == ["0", str(NOBODY), "1"] and lines[3].split() == ["0", str(NOBODY), "1"]
    assert lines[4] == "deny" and "dev-ok" in r.stdout, r.stdout
    assert state_entries(rl.root) == []


def test_lifecycle_through_the_front_end(rl):
    """create/state/start/kill/delete, the host seeing the user's uid; all
    but create answered by a copy of the C front-end that cannot hand off,
    so its default --root ($XDG_RUNTIME_DIR/ocirun) is the Python CLI's."""
    import shutil

    front = os.path.realpath(rl.cmd[0]) if len(rl.cmd) == 1 else None
    if front is None or not front.endswith("/ocirun"):
        pytest.skip("the front-end is not installed")
    lone_dir = os.path.join(rl.tmp, "lone", "bin")
    os.makedirs(lone_dir)
    shutil.copy(front, lone_dir)
    reachable_by_others(lone_dir)
    lone = [os.path.join(lone_dir, "ocirun")]
    rl.cfg["process"]["args"] = ["sleep", "100"]
    rl.write()
    cid = rl.new_id("rl")
    r = as_nobody(rl, "create", cid)
    assert r.returncode == 0, r.stderr
    st = json.loads(as_nobody(rl, "state", cid, cmd=lone).stdout)
    assert st["status"] == "created" and os.path.isdir(os.path.join(rl.xdg, "ocirun", cid))
    assert as_nobody(rl, "start", cid, cmd=lone).returncode == 0
    with open(f"/proc/{st['pid']}/status") as f:
        uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
    assert uids == [str(NOBODY)] * 4
    listed = as_nobody(rl, "list").stdout
    assert cid in listed and "nobody" in listed
    assert as_nobody(rl, "kill", cid, "KILL", cmd=lone).returncode == 0
    wait_status(lambda c: json.loads(as_nobody(rl, "state", c, cmd=lone).stdout), cid)
    r = as_nobody(rl, "delete", cid, cmd=lone)
    assert r.returncode == 0, r.stderr
    assert state_entries(rl.root) == []


def test_limits_are_refused_not_ignored(rl):
    rl.cfg["linux"]["resources"] = {"pids": {"limit": 10}}
    rl.cfg["process"]["args"] = ["true"]
    rl.write()
    r = as_nobody(rl, "run", rl.new_id("rl"))
    assert r.returncode == 1
    assert "linux.resources.pids: cgroup limits need root" in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1


def test_without_xdg_runtime_dir_one_clear_line(rl):
    rl.cfg["process"]["args"] = ["true"]
    rl.write()
    cid = rl.new_id("rl")
    r = as_nobody(rl, "run", cid, xdg=False)
    assert r.returncode == 1
    # /run/ocirun itself, or the container's directory in it when root made
    # /run/ocirun before (a fresh machine has none)
    assert re.search(rf"ocirun run failed: mkdir /run/ocirun(/{cid})?: permission denied", r.stderr), r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_wider_maps_need_newuidmap_and_subuids(rl):
    """nobody has no /etc/subuid range: newuidmap refuses, ocirun says so."""
    rl.cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": NOBODY, "size": 1},
                                      {"containerID": 1, "hostID": 200000, "size": 100}]
    rl.cfg["process"]["args"] = ["true"]
    rl.write()
    r = as_nobody(rl, "run", rl.new_id("rl"))
    assert r.returncode == 1
    assert "linux.uidMappings: newuidmap" in r.stderr, r.stderr
    assert state_entries(rl.root) == []


def test_exec_as_nobody(rl):
    rl.cfg["process"]["args"] = ["sleep", "100"]
    rl.write()
    cid = rl.new_id("rl")
    assert as_nobody(rl, "run", "-d", cid).returncode == 0
    try:
        r = as_nobody(rl, "exec", cid, "sh", "-c", "id -u; readlink /proc/self/ns/user")
        assert r.returncode == 0, r.stderr
        pid = json.loads(as_nobody(rl, "state", cid).stdout)["pid"]
        assert r.stdout.split() == ["0", os.readlink(f"/proc/{pid}/ns/user")], r.stdout
    finally:
        assert as_nobody(rl, "delete", "--force", cid).returncode == 0


def test_ps_and_kill_all_without_a_cgroup(rl):
    """No cgroup: the container's processes are those of its pid namespace."""
    rl.cfg["process"]["args"] = ["sh", "-c", "sleep 100 & sleep 101 & wait"]
    rl.write()
    cid = rl.new_id("rl")
    assert as_nobody(rl, "run", "-d", cid).returncode == 0
    try:
        pid = json.loads(as_nobody(rl, "state", cid).stdout)["pid"]
        ns = os.readlink(f"/proc/{pid}/ns/pid")
        for _ in range(100):
            pids = json.loads(as_nobody(rl, "ps", "--format", "json", cid).stdout)
            if len(pids) == 3:
                break
        assert pid in pids and len(pids) == 3, pids
        assert all(os.readlink(f"/proc/{p}/ns/pid") == ns for p in pids)
        assert as_nobody(rl, "kill", "--all", cid, "KILL").returncode == 0
        wait_status(lambda c: json.loads(as_nobody(rl, "state", c).stdout), cid)
        assert not any(_alive(p) for p in pids)
    finally:
        assert as_nobody(rl, "delete", "--force", cid).returncode == 0


def test_root_of_a_user_namespace_is_rootless_too(rl):
    """runc's --rootless auto: root in a user namespace (the identity map is
    not the initial one) gets no cgroup, state in $XDG_RUNTIME_DIR, and maps
    written as an unprivileged user would (setgroups is denied there)."""
    rl.cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 1}]
    rl.cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 1}]
    rl.cfg["process"]["args"] = ["sh", "-c", "id -u; cat /proc/self/uid_map; sleep 100"]
    rl.write()
    cid = rl.new_id("rl")
    r = as_nobody(rl, "run", "-d", cid, userns=True)
    assert r.returncode == 0, r.stderr
    st = json.loads(as_nobody(rl, "state", cid, userns=True).stdout)
    with open(f"/proc/{st['pid']}/status") as f:
        uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
    assert uids == [str(NOBODY)] * 4
    assert os.path.isdir(os.path.join(rl.root, cid))
    with open(f"/proc/{st['pid']}/cgroup") as f:
        mine = open("/proc/self/cgroup").read()
        assert f.read() == mine  # no cgroup of its own: where the caller was
    r = as_nobody(rl, "delete", "--force", cid, userns=True)
    assert r.returncode == 0, r.stderr
    assert state_entries(rl.root) == []


def test_a_config_without_user_namespace_is_explained(rl):
    rl.cfg["linux"]["namespaces"] = [n for n in rl.cfg["linux"]["namespaces"] if n["type"] != "user"]
    rl.cfg["linux"].pop("uidMappings")
    rl.cfg["linux"].pop("gidMappings")
    rl.cfg["process"]["args"] = ["true"]
    rl.write()
    r = as_nobody(rl, "run", rl.new_id("rl"))
    assert r.returncode == 1
    assert "linux.namespaces: a rootless container needs a user namespace" in r.stderr, r.stderr


def test_unsearchable_paths_report_permission_denied(rl):
    """A namespace path or a bind source the user may not reach is
    "permission denied", the real errno, not the "no such file or
    directory" an existence check would say."""
    private = os.path.join(rl.tmp, "root-only")
    os.mkdir(private, 0o700)
    with open(os.path.join(private, "f"), "w"):
        pass
    target = os.path.join(private, "f")
    rl.cfg["process"]["args"] = ["true"]
    base = json.loads(json.dumps(rl.cfg))
    rl.cfg["linux"]["namespaces"].append({"type": "network", "path": target})
    rl.cfg["linux"]["namespaces"] = [n for n in rl.cfg["linux"]["namespaces"] if n != {"type": "network"}]
    idx = rl.cfg["linux"]["namespaces"].index({"type": "network", "path": target})
    rl.write()
    r = as_nobody(rl, "run", rl.new_id("rl"))
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert f"linux.namespaces[{idx}].path: {target}: permission denied" in r.stderr, r.stderr
    base["mounts"].append({"destination": "/mnt", "type": "bind", "source": target, "options": ["rbind"]})
    rl.write(base)
    r = as_nobody(rl, "run", rl.new_id("rl"))
    assert r.returncode == 1 and f"mounts[{len(base['mounts']) - 1}].source: {target}: permission denied" in r.stderr, \
        r.stderr


def _v2_mount():
    """Where the host mounts cgroup2 (a hybrid host: /sys/fs/cgroup/unified)."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] == "cgroup2":
                return left.split()[4]
    return None


@pytest.mark.parametrize("delegated", [True, False])
def test_delegated_cgroup2_subtree_gives_a_cgroup(rl, delegated):
    """runc's rootless cgroupfs on v2: when the user owns a delegated cgroup2
    subtree (the group holding its own one, chowned to it as systemd's
    Delegate= does), the container gets a group of its own next to the
    user's, with its limits (hugetlb, the controller this host's cgroup2
    has); the group goes with the container.  Without delegation the limit
    is refused, as before.  Run in a private mount namespace where
    /sys/fs/cgroup is cgroup2 (the container binds the host's /sys)."""
    import secrets
    import shlex

    v2 = _v2_mount()
    if v2 is None:
        pytest.skip("no cgroup2 hierarchy on this host")
    name = f"ocirun-deleg-{secrets.token_hex(4)}"
    host_d = os.path.join(v2, name)
    os.mkdir(host_d)
    os.mkdir(os.path.join(host_d, "own"))
    try:
        if delegated:
            for p in (host_d, os.path.join(host_d, "own")):
                for f in ("", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"):
                    os.chown(os.path.join(p, f), NOBODY, NOBODY)
        have_hugetlb = "hugetlb" in open(os.path.join(host_d, "cgroup.controllers")).read().split()
        size = "2MB" if os.path.exists(os.path.join(host_d, "hugetlb.2MB.max")) else None
        cid = rl.new_id("rl")
        rl.cfg["linux"]["namespaces"] = [n for n in rl.cfg["linux"]["namespaces"] if n["type"] != "cgroup"]
        script = "grep '^0::' /proc/self/cgroup"
        if have_hugetlb and size:
            rl.cfg["linux"]["resources"] = {"hugepageLimits": [{"pageSize": size, "limit": 4 << 21}]}
            script += f"; cat /sys/fs/cgroup/hugetlb.{size}.max"  # its own group, mounted there
        else:
            rl.cfg["linux"]["resources"] = {"pids": {"limit": 10}}  # cannot be honoured: refused either way
        rl.cfg["process"]["args"] = ["sh", "-c", script]
        rl.write()
        ocirun = " ".join(shlex.quote(c) for c in rl.cmd)
        # cold (OCIRUN_WARM=0): a warm server started from here would live in
        # `own` for its idle time, and the group could not be removed until
        # then (README, "Why off by default")
        full = (f"umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && "
                f"echo $$ > /sys/fs/cgroup/{name}/own/cgroup.procs && cd {shlex.quote(rl.bundle)} && "
                f"exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups env XDG_RUNTIME_DIR={rl.xdg} OCIRUN_WARM=0 "
                f"{ocirun} run {cid}")
        r = subprocess.run(["unshare", "-m", "sh", "-c", full], capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        if not delegated or not (have_hugetlb and size):
            assert r.returncode == 1, r.stdout + r.stderr
            assert "cgroup limits need root" in r.stderr and r.stderr.count("\n") == 1, r.stderr
        else:
            assert r.returncode == 0, r.stderr
            lines = r.stdout.split()
            assert lines == [f"0::/{name}/{cid}", str(4 << 21)], r.stdout
        assert not os.path.exists(os.path.join(host_d, cid))
        assert not os.path.exists(rl.root) or state_entries(rl.root) == []
    finally:
        for d in (os.path.join(host_d, "own"), host_d):
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    import time

                    time.sleep(0.1)
        assert not os.path.exists(host_d), f"{host_d} could not be removed: a process still in it?"
