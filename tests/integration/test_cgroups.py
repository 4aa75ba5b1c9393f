"""cgroups on real kernels: this host's v1 controllers, and v2 in a private
mount namespace with cgroup2 mounted on /sys/fs/cgroup.  Limits are asserted
on what the container itself read where it can read them."""

import json
import os
import shlex
import subprocess
import time

import pytest

from tests.conftest import state_entries

MiB = 1 << 20


def host_cgroup(pid, ctrl):
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _h, ctrls, path = line.rstrip("\n").split(":", 2)
            if ctrl in ctrls.split(","):
                return f"/sys/fs/cgroup/{ctrl}{path}"
    raise AssertionError(f"no {ctrl} cgroup for {pid}")


def read(path):
    with open(path) as f:
        return f.read().strip()


def shared_dir(env):
    d = os.path.join(env.tmp, "shared")
    os.makedirs(d, exist_ok=True)
    env.cfg["mounts"].append({"destination": "/shared", "type": "bind", "source": d, "options": ["rbind", "rw"]})
    return d


def a_block_device():
    for name in sorted(os.listdir("/sys/block")):
        if not name.startswith(("loop", "ram", "zram")):
            return read(f"/sys/block/{name}/dev").split(":")
    pytest.skip("no disk to throttle")


def test_limits_seen_inside_and_on_host(env):
    major, minor = a_block_device()
    env.cfg["linux"]["resources"].update({
        "memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 96 * MiB, "swappiness": 10,
                   "kernelTCP": 16 * MiB},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 42},
        "blockIO": {"throttleReadBpsDevice": [{"major": int(major), "minor": int(minor), "rate": 1048576}]},
    })
    g = "/sys/fs/cgroup"
    r = env.sh(f"cat {g}/memory/memory.limit_in_bytes {g}/memory/memory.soft_limit_in_bytes "
               f"{g}/memory/memory.memsw.limit_in_bytes {g}/memory/memory.swappiness "
               f"{g}/memory/memory.kmem.tcp.limit_in_bytes {g}/cpu/cpu.shares {g}/cpu/cpu.cfs_quota_us "
               f"{g}/cpu/cpu.cfs_period_us {g}/cpuset/cpuset.cpus {g}/pids/pids.max "
               f"{g}/blkio/blkio.throttle.read_bps_device")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(64 * MiB), str(32 * MiB), str(96 * MiB), "10", str(16 * MiB), "512", "20000",
                                "100000", "0", "42", f"{major}:{minor}", "1048576"]


def test_devices_v1_default_deny(env):
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no fuse device on this host")
    env.cfg["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]
    r = env.sh("(: < /dev/fuse) 2>/dev/null; echo fuse=$?; head -c4 /dev/zero | wc -c; "
               "cat /sys/fs/cgroup/devices/devices.list")
    out = r.stdout.split("\n")
    assert out[0] == "fuse=1" and out[1].strip() == "4"  # a node alone is not access
    assert "c 1:3 rwm" in out and not any(line.startswith("c 10:229") for line in out)
    env.cfg["linux"]["resources"]["devices"].append({"allow": True, "type": "c", "major": 10, "minor": 229,
                                                      "access": "rw"})
    r = env.sh("(: < /dev/fuse); echo fuse=$?; cat /sys/fs/cgroup/devices/devices.list")
    assert r.stdout.startswith("fuse=0") and "c 10:229 rw" in r.stdout


def test_unknown_resource_keys_warn_and_access_letters(env):
    """Unknown keys in linux.resources are ignored with a warning (runtime-
    spec; runc decodes past them) and the known limits still hold; an access
    letter other than r/w/m is dropped, as runc's v1 rule emulator does."""
    env.cfg["linux"]["resources"].update({"pids": {"limit": 17}, "memory": {"frobnicate": 1},
                                           "futureController": {"x": 1}})
    env.cfg["linux"]["resources"]["devices"].append({"allow": True, "type": "c", "major": 4, "minor": 7,
                                                      "access": "wxr"})
    r = env.sh("cat /sys/fs/cgroup/pids/pids.max; grep '^c 4:7 ' /sys/fs/cgroup/devices/devices.list")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["17", "c 4:7 rw"], r.stdout
    assert "level=warning" in r.stderr and "linux.resources.futureController: unknown field, ignored" in r.stderr
    assert "linux.resources.memory.frobnicate: unknown field, ignored" in r.stderr


def test_pause_resume(env):
    cid = env.create(["sleep", "100"])
    r = env.cli("resume", cid)
    assert r.returncode == 1 and "container not paused" in r.stderr
    assert env.cli("pause", cid).returncode == 0  # created containers can be paused
    assert env.state(cid)["status"] == "paused"
    assert env.cli("resume", cid).returncode == 0
    assert env.state(cid)["status"] == "created"
    assert env.cli("start", cid).returncode == 0
    pid = env.state(cid)["pid"]
    r = env.cli("pause", cid)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == ""
    assert env.state(cid)["status"] == "paused"
    assert read(os.path.join(host_cgroup(pid, "freezer"), "freezer.state")) == "FROZEN"
    r = env.cli("pause", cid)
    assert r.returncode == 1 and "container not running" in r.stderr
    assert env.cli("resume", cid).returncode == 0
    assert env.state(cid)["status"] == "running"
    assert read(os.path.join(host_cgroup(pid, "freezer"), "freezer.state")) == "THAWED"
    # delete --force of a paused container thaws and kills it
    assert env.cli("pause", cid).returncode == 0
    assert env.cli("delete", "--force", cid).returncode == 0


@pytest.mark.parametrize("verb", [("kill", "KILL"), ("delete", "--force")])
def test_python_side_thaws_a_paused_container_it_kills(env, verb):
    """What the front-end hands to Python (hooks, odd flags) thaws a paused
    container before its SIGKILL: on v1 a frozen task dies only once thawed."""
    from tests.integration.test_front import call, front_and_python

    _front, py = front_and_python(env)
    cid = env.create(["sleep", "100"])
    assert env.cli("start", cid).returncode == 0
    pid = env.state(cid)["pid"]
    assert env.cli("pause", cid).returncode == 0
    rc, _out, err = call(py, env, verb[0], cid, verb[1]) if verb[0] == "kill" else call(py, env, *verb, cid)
    assert rc == 0, err
    if verb[0] == "kill":
        env.wait_status(cid, "stopped")
        assert env.cli("delete", cid).returncode == 0
    try:
        with open(f"/proc/{pid}/stat") as f:
            assert f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")  # dead, not reaped yet
    except FileNotFoundError:
        pass
    assert env.cli("state", cid).returncode == 1


def test_update_seen_inside_and_persisted(env):
    d = shared_dir(env)
    env.cfg["linux"]["resources"].update({"memory": {"limit": 64 * MiB}, "cpu": {"quota": 20000, "period": 50000}})
    g = "/sys/fs/cgroup"
    script = (f"while [ ! -e /shared/go ]; do sleep 0.05; done; cat {g}/memory/memory.limit_in_bytes "
              f"{g}/cpu/cpu.cfs_quota_us {g}/cpu/cpu.cfs_period_us {g}/pids/pids.max {g}/cpu/cpu.shares > /shared/out")
    env.cfg["process"]["args"] = ["sh", "-c", script]
    env.write()
    cid = env.new_id()
    assert env.cli("run", "-d", "-b", env.bundle, cid).returncode == 0
    r = env.cli("update", "--memory", "128M", "--cpu-quota", "30000", "--pids-limit", "77", cid)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stderr
    r = env.cli("update", "-r", "-", cid, input=json.dumps({"cpu": {"shares": 300}}) + "\n")
    assert r.returncode == 0, r.stderr
    # nothing half-applied: a bad value anywhere rejects the whole update
    r = env.cli("update", "-r", "-", cid, input=json.dumps({"cpu": {"shares": 400}, "memory": {"limit": -3}}))
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "linux.resources.memory.limit" in r.stderr
    open(os.path.join(d, "go"), "w").close()
    env.wait_status(cid, "stopped")
    with open(os.path.join(d, "out")) as f:
        # period kept when only the quota is updated, as runc
        assert f.read().split() == [str(128 * MiB), "30000", "50000", "77", "300"]
    r = env.cli("update", "--memory", "32M", cid)
    assert r.returncode == 1 and "container not running" in r.stderr
    with open(os.path.join(env.root, cid, "state.json")) as f:
        res = json.load(f)["cgroup"]["resources"]
    assert res["memory"]["limit"] == 128 * MiB and res["cpu"] == {"quota": 30000, "period": 50000, "shares": 300}
    assert res["pids"] == {"limit": 77}
    assert env.cli("delete", cid).returncode == 0


def test_ps(env):
    cid = env.create(["sh", "-c", "sleep 100 & exec sleep 101"])
    assert env.cli("start", cid).returncode == 0
    init = env.state(cid)["pid"]
    r = env.cli("ps", "--format", "json", cid)
    pids = json.loads(r.stdout)
    assert r.stdout.endswith("\n") and init in pids and len(pids) == 2
    r = env.cli("ps", cid)
    lines = r.stdout.splitlines()
    assert lines[0].split()[:2] == ["UID", "PID"] and len(lines) == 3
    assert {int(line.split()[1]) for line in lines[1:]} == set(pids)
    r = env.cli("ps", cid, "-o", "pid,comm")  # ps arguments after the id
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[:2] == ["PID", "COMMAND"] and r.stdout.count("sleep") == 2
    r = env.cli("ps", cid, "-o", "comm")
    assert r.returncode == 1 and "couldn't find PID field in ps output" in r.stderr
    assert env.cli("kill", "--all", cid, "KILL").returncode == 0
    env.wait_status(cid, "stopped")
    r = env.cli("ps", "-f", "json", cid)
    assert r.stdout == "null\n"
    assert env.cli("delete", cid).returncode == 0


def test_kill_all_and_cgroup_removed(env):
    cid = env.create(["sh", "-c", "trap '' TERM; sleep 200 & sleep 201 & wait"])
    assert env.cli("start", cid).returncode == 0
    pid = env.state(cid)["pid"]
    cgdirs = [host_cgroup(pid, c) for c in ("memory", "pids", "freezer", "cpu")]
    r = env.cli("ps", "-f", "json", cid)
    pids = json.loads(r.stdout)
    assert len(pids) == 3
    assert env.cli("kill", "--all", cid, "9").returncode == 0
    env.wait_status(cid, "stopped")
    for p in pids:
        assert not os.path.exists(f"/proc/{p}") or "State:\tZ" in read(f"/proc/{p}/status")
    assert env.cli("kill", "--all", cid, "9").returncode == 0  # stopped: still success (containerd)
    assert env.cli("delete", cid).returncode == 0
    for d in cgdirs:
        assert not os.path.exists(d)


def test_events_stats_shape(env):
    env.cfg["linux"]["resources"].update({"memory": {"limit": 64 * MiB}, "pids": {"limit": 10}})
    cid = env.create(["sleep", "100"])
    r = env.cli("events", "--stats", cid)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("\n") == 1
    ev = json.loads(r.stdout)
    assert list(ev) == ["type", "id", "data"] and ev["type"] == "stats" and ev["id"] == cid
    d = ev["data"]
    assert list(d)[:3] == ["cpu", "cpuset", "memory"]
    assert {"pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"} <= set(d)
    assert d["memory"]["usage"]["limit"] == 64 * MiB and d["memory"]["usage"]["usage"] > 0
    assert "failcnt" in d["memory"]["usage"] and "cache" not in d["memory"] or d["memory"]["cache"] > 0
    assert d["pids"] == {"current": 1, "limit": 10}
    assert "kernel" in d["cpu"]["usage"] and "user" in d["cpu"]["usage"]
    assert d["network_interfaces"] is None
    r = env.cli("events", "--interval", "0s", cid)
    assert r.returncode == 1 and "duration interval must be greater than 0" in r.stderr
    assert env.cli("delete", "--force", cid).returncode == 0
    r = env.cli("events", "--stats", cid)
    assert r.returncode == 1 and "container does not exist" in r.stderr


def test_events_oom(env):
    env.cfg["linux"]["resources"]["memory"] = {"limit": 16 * MiB}
    # busybox tail buffers a "line" of /dev/zero forever: it grows until the OOM killer
    cid = env.create(["sh", "-c", "tail /dev/zero; sleep 100"])
    cmd = env.cmd + ["--root", env.root, "events", "--interval", "100ms", cid]
    ev = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(ev.stdout.readline())  # the OOM watch is set up before the first stats
        assert first["type"] == "stats"
        assert env.cli("start", cid).returncode == 0
        seen = []
        for line in ev.stdout:
            seen.append(json.loads(line))
            if seen[-1]["type"] == "oom":
                break
        assert seen[-1] == {"type": "oom", "id": cid}
        assert env.cli("delete", "--force", cid).returncode == 0
        assert ev.wait(timeout=30) == 0  # the stream ends when the cgroup goes away
    finally:
        if ev.poll() is None:
            ev.kill()
            ev.wait()


@pytest.mark.parametrize("res,field", [
    ({"memory": {"limit": -5}}, "linux.resources.memory.limit"),
    ({"memory": {"limit": "1G"}}, "linux.resources.memory.limit"),
    ({"memory": {"swappiness": 200}}, "linux.resources.memory.swappiness"),
    ({"cpu": {"cpus": "0-x"}}, "linux.resources.cpu.cpus"),
    ({"pids": {"limit": 1.5}}, "linux.resources.pids.limit"),
    ({"devices": [{"allow": True, "type": "x"}]}, "linux.resources.devices[0].type"),
    ({"devices": [{"allow": True, "access": "z"}]}, "linux.resources.devices[0].access"),
    ({"devices": [{"allow": True, "type": "c", "major": 10, "minor": 229}]}, "linux.resources.devices[0].access"),
    ({"unified": {"memory.max": "1"}}, "linux.resources.unified"),
    ({"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}, "linux.resources.hugepageLimits[0]"),
    ({"blockIO": {"weight": 5}}, "linux.resources.blockIO.weight"),
])
def test_bad_resources(env, res, field):
    env.cfg["linux"]["resources"] = dict(res, memory=dict(res.get("memory", {}), limit=res.get("memory", {}).get(
        "limit", 64 * MiB)))
    env.cfg["process"]["args"] = ["true"]
    env.write()
    cid = env.new_id()
    r = env.cli("create", "-b", env.bundle, cid)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and field in r.stderr, r.stderr
    assert not state_entries(env.root)  # leftover cgroups are checked by the env fixture


def test_systemd_cgroup_without_systemd(env):
    if os.path.isdir("/run/systemd/system"):
        pytest.skip("systemd is running here")
    env.cfg["linux"]["cgroupsPath"] = "system.slice:ocirun:x"
    env.cfg["process"]["args"] = ["true"]
    env.write()
    r = env.cli("--systemd-cgroup", "run", "-b", env.bundle, env.new_id(), root=True)
    assert r.returncode == 1
    assert "systemd cgroup flag passed, but systemd support for managing cgroups is not available" in r.stderr


def test_cgroups_path_absolute_and_joined(env):
    parent = f"/ocirun-test-join-{os.getpid()}"
    env.cfg["linux"]["cgroupsPath"] = parent + "/c1"
    env.cfg["linux"]["resources"]["pids"] = {"limit": 9}
    cid = env.create(["sleep", "100"])
    pid = env.state(cid)["pid"]
    try:
        assert host_cgroup(pid, "pids") == f"/sys/fs/cgroup/pids{parent}/c1"
        assert read(f"/sys/fs/cgroup/pids{parent}/c1/pids.max") == "9"
    finally:
        assert env.cli("delete", "--force", cid).returncode == 0
        for c in os.listdir("/sys/fs/cgroup"):
            p = f"/sys/fs/cgroup/{c}{parent}"
            if os.path.isdir(p):
                os.rmdir(p)


# --- cgroup v2 in a private mount namespace ------------------------------------------

def v2(env, script):
    """Run a shell script in a private mount namespace where /sys/fs/cgroup is
    cgroup2 (this host's unified hierarchy: core files and hugetlb only)."""
    o = " ".join(shlex.quote(c) for c in env.cmd) + " --root " + shlex.quote(env.root)
    full = ("umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && O=" + shlex.quote(o) + "\n"
            + script)
    return subprocess.run(["unshare", "-m", "sh", "-c", full], capture_output=True, text=True, timeout=60)


def test_v2_devices_hugetlb_pause_kill(env):
    if not os.path.exists("/sys/fs/cgroup/unified/cgroup.controllers"):
        pytest.skip("no cgroup2 hierarchy on this host")
    env.cfg["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]
    env.cfg["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"}],
                                     "hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MiB}]}
    env.cfg["process"]["args"] = ["sh", "-c", "cat /sys/fs/cgroup/hugetlb.2MB.max; (: < /dev/fuse) 2>/dev/null; "
                                  "echo fuse=$?; head -c3 /dev/zero | wc -c"]
    env.write()
    cid = env.new_id()
    r = v2(env, f"$O run -b {env.bundle} {cid}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(4 * MiB), "fuse=1", "3"]

    env.cfg["linux"]["resources"] = {"pids": {"limit": 5}}
    env.write()
    r = v2(env, f"$O run -b {env.bundle} {env.new_id()}")
    assert r.returncode == 1 and "linux.resources.pids.limit: the pids cgroup controller is not available" in r.stderr

    env.cfg["linux"]["resources"] = {"unified": {"hugetlb.2MB.max": "2097152"}}
    env.cfg["process"]["args"] = ["sh", "-c", "sleep 100 & sleep 101 & wait"]
    env.write()
    cid = env.new_id()
    r = v2(env, f"""$O create -b {env.bundle} {cid} </dev/null >/dev/null 2>&1
cat /sys/fs/cgroup/{cid}/hugetlb.2MB.max
$O start {cid}; $O pause {cid}; $O state {cid} | grep status; cat /sys/fs/cgroup/{cid}/cgroup.freeze
$O resume {cid}; $O state {cid} | grep status
$O events --stats {cid} | head -c 20; echo
$O kill --all {cid} 9; while $O state {cid} | grep -q running; do sleep 0.05; done
$O ps --format json {cid}; $O delete {cid}; test -d /sys/fs/cgroup/{cid} || echo removed""")
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0] == "2097152"
    assert out[1].strip() == '"status": "paused",' and out[2] == "1"
    assert out[3].strip() == '"status": "running",'
    assert out[4] == '{"type":"stats","id"'
    assert out[5:] == ["null", "removed"]


def test_v2_stats_carry_psi(env):
    """events --stats on cgroup v2 reports the container's own pressure
    (cpu.pressure etc.): four busy loops on this 2-core VM make CPU waits."""
    if not os.path.exists("/sys/fs/cgroup/unified/cpu.pressure"):
        pytest.skip("no PSI on this host's cgroup2")
    env.cfg["linux"]["resources"] = {}
    env.cfg["process"]["args"] = ["sh", "-c", "for i in 1 2 3 4; do (while :; do :; done) & done; sleep 100"]
    env.write()
    cid = env.new_id()
    r = v2(env, f"""$O create -b {env.bundle} {cid} </dev/null >/dev/null 2>&1; $O start {cid}; sleep 0.5
cat /sys/fs/cgroup/{cid}/cpu.pressure >&2; $O events --stats {cid}; $O delete --force {cid}""")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout.splitlines()[0])["data"]
    assert "psi" in data["memory"] and "psi" in data["blkio"]
    some = data["cpu"]["psi"]["some"]
    assert set(some) == {"avg10", "avg60", "avg300", "total"} and some["total"] > 0, r.stdout


# --- deny by default, ownership, placement ------------------------------------------

def disk_numbers():
    for name in sorted(os.listdir("/sys/block")):
        if not name.startswith(("loop", "ram")):
            return read(f"/sys/block/{name}/dev").split(":")
    pytest.skip("no disk on this host")


# kmsg is opened write-only (reading needs CAP_SYSLOG here); fuse answers an
# open whenever the device cgroup lets it through; a block device's open
# fails on this VM even for host root, so "disk" only shows it stays closed
DEVICE_PROBE = ("mknod /dev/x-kmsg c 1 11 && echo mknod=ok; (: > /dev/x-kmsg) 2>/dev/null; echo kmsg=$?; "
                "mknod /dev/x-fuse c 10 229; (: < /dev/x-fuse) 2>/dev/null; echo fuse=$?; "
                "mknod /dev/x-disk b {0} {1}; (: < /dev/x-disk) 2>/dev/null; echo disk=$?; "
                "(: < /dev/null); echo null=$?")


def no_devices_field(env, keep_resources):
    """A bundle whose init holds CAP_MKNOD and whose config names no device rule."""
    if keep_resources:
        env.cfg["linux"]["resources"] = {"pids": {"limit": 50}}
    else:
        env.cfg["linux"].pop("resources", None)
    for k in ("bounding", "effective", "permitted"):
        env.cfg["process"]["capabilities"][k] = sorted(set(env.cfg["process"]["capabilities"][k]) | {"CAP_MKNOD"})
    return DEVICE_PROBE.format(*disk_numbers())


@pytest.mark.parametrize("keep_resources", [False, True])
def test_devices_deny_by_default_v1(env, keep_resources):
    script = no_devices_field(env, keep_resources)
    r = env.sh(script + "; cat /sys/fs/cgroup/devices/devices.list")
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[:5] == ["mknod=ok", "kmsg=1", "fuse=1", "disk=1", "null=0"], r.stdout
    assert "a *:* rwm" not in out and "c 1:3 rwm" in out and "c *:* m" in out and "b *:* m" in out


def test_devices_deny_by_default_v2(env):
    if not os.path.exists("/sys/fs/cgroup/unified/cgroup.controllers"):
        pytest.skip("no cgroup2 hierarchy on this host")
    script = no_devices_field(env, False)
    env.cfg["process"]["args"] = ["sh", "-c", script]
    env.write()
    r = v2(env, f"$O run -b {env.bundle} {env.new_id()}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["mknod=ok", "kmsg=1", "fuse=1", "disk=1", "null=0"], r.stdout


@pytest.mark.parametrize("with_userns", [False, True])
def test_v1_cgroup_mount_without_cgroupns_is_the_containers_own(env, with_userns):
    """No cgroup namespace (docker's and containerd's default on v1): each
    hierarchy at /sys/fs/cgroup/<controller> is the container's own group."""
    env.cfg["linux"]["namespaces"] = [n for n in env.cfg["linux"]["namespaces"] if n["type"] != "cgroup"]
    env.cfg["linux"]["resources"].update({"memory": {"limit": 64 * MiB}, "pids": {"limit": 42}})
    if with_userns:
        env.use_userns()
    sibling = f"/sys/fs/cgroup/pids/ocirun-test-sibling-{os.getpid()}"
    os.mkdir(sibling)
    try:
        r = env.sh("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; "
                   "find /sys/fs/cgroup/pids/ /sys/fs/cgroup/memory/ -mindepth 1 -type d | wc -l; "
                   "wc -w < /sys/fs/cgroup/pids/cgroup.procs")
    finally:
        os.rmdir(sibling)
    assert r.returncode == 0, r.stderr
    # its own limits, no host group (the sibling, the runtime's) in sight, only its own process
    assert r.stdout.split() == [str(64 * MiB), "42", "0", "1"], r.stdout


def test_hybrid_joins_the_unified_group(env):
    """On a v1 + cgroup2 hybrid host the container is in the unified
    hierarchy's group of the same path too (as runc), and it goes on delete."""
    if not os.path.exists("/sys/fs/cgroup/unified/cgroup.procs"):
        pytest.skip("not a hybrid host")
    env.cfg["linux"]["namespaces"] = [n for n in env.cfg["linux"]["namespaces"] if n["type"] != "cgroup"]
    env.cfg["linux"]["cgroupsPath"] = cg = f"/ocirun-test-uni-{os.getpid()}"
    r = env.sh("grep -E '^(0::|[0-9]+:pids:)' /proc/self/cgroup")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert f"0::{cg}" in lines and any(line.endswith(f":pids:{cg}") for line in lines), r.stdout
    assert not os.path.exists("/sys/fs/cgroup/unified" + cg)


def test_cgroups_path_root_and_busy_groups_refused(env):
    """cgroupsPath "/" is refused; so is an existing group holding a host
    process, which survives, with its group (runc >= 1.2)."""
    env.cfg["linux"]["cgroupsPath"] = "/"
    env.cfg["process"]["args"] = ["true"]
    env.write()
    r = env.cli("run", "-b", env.bundle, env.new_id())
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "linux.cgroupsPath: '/' names an existing group of the host" in r.stderr
    busy = f"/ocirun-test-busy-{os.getpid()}"
    dirs = [f"/sys/fs/cgroup/{c}{busy}" for c in ("pids", "memory")]
    for d in dirs:
        os.mkdir(d)
    host = subprocess.Popen(["sleep", "100"])
    try:
        for d in dirs:
            with open(d + "/cgroup.procs", "w") as f:
                f.write(str(host.pid))
        env.cfg["linux"]["cgroupsPath"] = busy
        env.write()
        cid = env.new_id()
        r = env.cli("run", "-b", env.bundle, cid)
        assert r.returncode == 1 and r.stderr.count("\n") == 1
        assert "linux.cgroupsPath: container's cgroup is not empty: 1 process(es) found" in r.stderr
        assert host.poll() is None and all(os.path.isdir(d) for d in dirs)
        assert not state_entries(env.root)
    finally:
        host.kill()
        host.wait()
        for d in dirs:
            for _ in range(100):
                try:
                    os.rmdir(d)
                    break
                except OSError:
                    time.sleep(0.05)


def test_cgroups_path_only_what_ocirun_made_is_removed(env):
    """Relative a/b/c with a/ pre-existing: delete removes b and c (made by
    ocirun) in every hierarchy, and keeps a (the host's)."""
    a = f"ocirun-test-own-{os.getpid()}"
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _h, ctrls, path = line.rstrip("\n").split(":", 2)
            own[ctrls] = path
    pre = [f"/sys/fs/cgroup/pids{own['pids']}/{a}".replace("//", "/"),
           f"/sys/fs/cgroup/memory{own['memory']}/{a}".replace("//", "/")]
    for d in pre:
        os.mkdir(d)
    try:
        env.cfg["linux"]["cgroupsPath"] = f"{a}/b/c"
        cid = env.create(["sleep", "100"])
        pid = env.state(cid)["pid"]
        assert host_cgroup(pid, "pids") == pre[0] + "/b/c"
        assert env.cli("delete", "--force", cid).returncode == 0
        for d in pre:
            assert os.path.isdir(d) and not os.path.exists(d + "/b"), d
        # the hierarchies where ocirun made a/ too have nothing of it left
        assert not os.path.exists(f"/sys/fs/cgroup/freezer{own['freezer']}/{a}".replace("//", "/"))
    finally:
        for d in pre:
            os.rmdir(d)


def test_cgroup_frozen_before_create_is_refused(env):
    g = f"/ocirun-test-frozen-{os.getpid()}"
    d = "/sys/fs/cgroup/freezer" + g
    os.mkdir(d)
    try:
        with open(d + "/freezer.state", "w") as f:
            f.write("FROZEN")
        env.cfg["linux"]["cgroupsPath"] = g
        env.cfg["process"]["args"] = ["true"]
        env.write()
        r = env.cli("run", "-b", env.bundle, env.new_id(), timeout=20)
        assert r.returncode == 1 and r.stderr.count("\n") == 1
        assert "container's cgroup unexpectedly frozen" in r.stderr
        assert os.path.isdir(d) and not state_entries(env.root)
    finally:
        with open(d + "/freezer.state", "w") as f:
            f.write("THAWED")
        os.rmdir(d)


@pytest.mark.parametrize("own_pidns", [True, False])
def test_delete_force_removes_sub_cgroups(env, own_pidns):
    """The container's processes made sub-groups and moved into them: delete
    --force kills them and removes the tree, depth first."""
    if not own_pidns:
        env.cfg["linux"]["namespaces"] = [n for n in env.cfg["linux"]["namespaces"] if n["type"] != "pid"]
    env.cfg["linux"]["namespaces"] = [n for n in env.cfg["linux"]["namespaces"] if n["type"] != "cgroup"]
    env.cfg["mounts"] = [dict(m, options=[o for o in m.get("options", []) if o != "ro"])
                         if m["type"] == "cgroup" else m for m in env.cfg["mounts"]]
    d = shared_dir(env)
    cid = env.create(["sh", "-c", "for c in pids memory; do mkdir -p /sys/fs/cgroup/$c/sub/deeper; done; "
                      "sleep 100 & echo $! > /sys/fs/cgroup/pids/sub/deeper/cgroup.procs; "
                      "echo $! > /sys/fs/cgroup/memory/sub/cgroup.procs; echo ok > /shared/ready; wait"])
    pid = env.state(cid)["pid"]
    top = host_cgroup(pid, "pids")
    assert env.cli("start", cid).returncode == 0
    assert env.wait_file(os.path.join(d, "ready")) == "ok\n"
    assert os.path.isdir(top + "/sub/deeper")
    r = env.cli("delete", "--force", cid)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(top)


def test_exec_cgroup_stays_inside_and_pid_file_checked_first(env):
    d = shared_dir(env)
    cid = env.create(["sleep", "100"])
    assert env.cli("start", cid).returncode == 0
    top = host_cgroup(env.state(cid)["pid"], "pids")
    os.mkdir(top + "/sub")
    try:
        r = env.cli("exec", "--cgroup", "pids:sub", cid, "grep", ":pids:", "/proc/self/cgroup")
        assert r.returncode == 0 and r.stdout.strip().endswith(":pids:/sub"), r.stdout + r.stderr
        marker = "touch /shared/ran"
        for spec, msg in [("..", "bad sub cgroup path"), ("../..", "bad sub cgroup path"),
                          ("pids:../..", "bad sub cgroup path"), ("/..", "bad sub cgroup path"),
                          ("pids:sub/../../x", "bad sub cgroup path"), ("nosuch:sub", "unknown controller nosuch"),
                          (",pids:sub", "empty <controller> prefix")]:
            r = env.cli("exec", "--cgroup", spec, cid, "sh", "-c", marker)
            assert r.returncode == 255 and r.stderr.count("\n") == 1 and msg in r.stderr, (spec, r.stderr)
        r = env.cli("exec", "--pid-file", os.path.join(env.tmp, "no-such-dir", "x.pid"), cid, "sh", "-c", marker)
        assert r.returncode == 255 and "--pid-file" in r.stderr and r.stderr.count("\n") == 1, r.stderr
        assert not os.path.exists(os.path.join(d, "ran"))  # nothing ran
        pid_file = os.path.join(env.tmp, "ok.pid")
        r = env.cli("exec", "--pid-file", pid_file, cid, "true")
        assert r.returncode == 0 and open(pid_file).read().isdigit()
        assert not os.path.exists(os.path.join(env.tmp, ".ok.pid"))
    finally:
        assert env.cli("delete", "--force", cid).returncode == 0


def test_update_memory_unlimited_resets_swap_first(env):
    env.cfg["linux"]["resources"]["memory"] = {"limit": 64 * MiB, "swap": 96 * MiB}
    cid = env.create(["sleep", "100"])
    try:
        r = env.cli("update", "--memory", "-1", cid)
        assert r.returncode == 0, r.stderr
        r = env.cli("exec", cid, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                    "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
        unlimited = read("/sys/fs/cgroup/memory/memory.limit_in_bytes")  # the root's: the kernel's "max"
        assert r.stdout.split() == [unlimited, unlimited], r.stdout + r.stderr
    finally:
        assert env.cli("delete", "--force", cid).returncode == 0


def test_update_smaller_period_under_a_parent_quota(env):
    """Parent quota 0.5 CPU; the container at 0.25 moves to a 10 ms period:
    the new period alone breaks the parent's limit (EINVAL), so the quota is
    written first and the period again (runc's order)."""
    parent = f"/ocirun-test-quota-{os.getpid()}"
    pdir = "/sys/fs/cgroup/cpu" + parent
    os.mkdir(pdir)
    try:
        with open(pdir + "/cpu.cfs_quota_us", "w") as f:
            f.write("50000")
        env.cfg["linux"]["cgroupsPath"] = parent + "/c"
        env.cfg["linux"]["resources"]["cpu"] = {"quota": 25000, "period": 100000}
        cid = env.create(["sleep", "100"])
        try:
            r = env.cli("update", "--cpu-period", "10000", "--cpu-quota", "2500", cid)
            assert r.returncode == 0, r.stderr
            r = env.cli("exec", cid, "cat", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us")
            assert r.stdout.split() == ["2500", "10000"], r.stdout + r.stderr
        finally:
            assert env.cli("delete", "--force", cid).returncode == 0
        assert os.path.isdir(pdir) and not os.path.exists(pdir + "/c")
    finally:
        os.rmdir(pdir)


def test_v2_ownership_and_frozen_group(env):
    """The cgroup2 path: parents ocirun made go with the container, a
    pre-existing one stays; a frozen group is refused, not waited on."""
    if not os.path.exists("/sys/fs/cgroup/unified/cgroup.controllers"):
        pytest.skip("no cgroup2 hierarchy on this host")
    env.cfg["linux"]["resources"] = {}
    env.cfg["process"]["args"] = ["grep", "^0::", "/proc/self/cgroup"]
    env.cfg["linux"]["namespaces"] = [n for n in env.cfg["linux"]["namespaces"] if n["type"] != "cgroup"]
    n = os.getpid()
    bundles = []
    for i, path in enumerate((f"ocirun-test-made-{n}/y/z", f"ocirun-test-pre-{n}/y", f"/ocirun-test-frz-{n}",
                              f"/ocirun-test-frzp-{n}/c")):
        env.cfg["linux"]["cgroupsPath"] = path
        b = os.path.join(env.tmp, f"config{i}.json")
        with open(b, "w") as f:
            json.dump(env.cfg, f)
        bundles.append(b)
    c = "/sys/fs/cgroup"
    r = v2(env, f"""cp {bundles[0]} {env.bundle}/config.json; $O run -b {env.bundle} {env.new_id()}
test -e {c}/ocirun-test-made-{n} || echo made-gone
mkdir {c}/ocirun-test-pre-{n}; cp {bundles[1]} {env.bundle}/config.json; $O run -b {env.bundle} {env.new_id()}
test -d {c}/ocirun-test-pre-{n} && ! test -e {c}/ocirun-test-pre-{n}/y && echo pre-kept; rmdir {c}/ocirun-test-pre-{n}
mkdir {c}/ocirun-test-frz-{n}; echo 1 > {c}/ocirun-test-frz-{n}/cgroup.freeze
cp {bundles[2]} {env.bundle}/config.json; timeout 20 $O run -b {env.bundle} {env.new_id()}; echo rc=$?
rmdir {c}/ocirun-test-frz-{n}
mkdir {c}/ocirun-test-frzp-{n}; echo 1 > {c}/ocirun-test-frzp-{n}/cgroup.freeze
cp {bundles[3]} {env.bundle}/config.json; timeout 20 $O run -b {env.bundle} {env.new_id()}; echo rc=$?
test -e {c}/ocirun-test-frzp-{n}/c || echo made-gone; rmdir {c}/ocirun-test-frzp-{n}""")
    out = r.stdout.splitlines()
    assert out == [f"0::/ocirun-test-made-{n}/y/z", "made-gone", f"0::/ocirun-test-pre-{n}/y", "pre-kept", "rc=1",
                   "rc=1", "made-gone"], r.stdout + r.stderr
    # the group's own cgroup.freeze, and a frozen parent (cgroup.events)
    assert r.stderr.count("\n") == 2 and r.stderr.count("container's cgroup unexpectedly frozen") == 2, r.stderr
