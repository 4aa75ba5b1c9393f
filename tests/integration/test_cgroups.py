"""cgroups on real kernels: this host's v1 controllers, and v2 in a private
mount namespace with cgroup2 mounted on /sys/fs/cgroup.  Limits are asserted
on what the container itself read where it can read them."""

import json
import os
import shlex
import subprocess
import time

import pytest

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


def wait_status(env, cid, want, limit=20):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if env.state(cid)["status"] == want:
            return
        time.sleep(0.05)
    raise AssertionError(f"{cid} never became {want}")


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
    wait_status(env, cid, "stopped")
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
    wait_status(env, cid, "stopped")
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
    wait_status(env, cid, "stopped")
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
    assert not os.listdir(env.root)  # leftover cgroups are checked by the env fixture


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
