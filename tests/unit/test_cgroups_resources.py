"""linux.resources -> cgroup files, against temporary trees shaped like
cgroupfs v1 and v2 (no root needed: the files are plain files)."""

import os
import struct

import pytest

from ocirun import cgroups
from ocirun.cgroups import CgroupError, devices, resources as R, stats
from ocirun.errors import OcirunError

V1_FILES = {
    "memory": ["memory.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.memsw.limit_in_bytes",
               "memory.swappiness", "memory.oom_control", "memory.use_hierarchy", "memory.kmem.tcp.limit_in_bytes",
               "memory.usage_in_bytes", "memory.stat", "memory.max_usage_in_bytes", "memory.failcnt"],
    "cpu": ["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.cfs_burst_us", "cpu.rt_period_us",
            "cpu.rt_runtime_us", "cpu.idle", "cpu.stat"],
    "cpuacct": ["cpuacct.usage", "cpuacct.usage_percpu", "cpuacct.stat"],
    "cpuset": ["cpuset.cpus", "cpuset.mems"],
    "pids": ["pids.max", "pids.current"],
    "blkio": ["blkio.weight", "blkio.leaf_weight", "blkio.weight_device", "blkio.leaf_weight_device",
              "blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
              "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device"],
    "devices": ["devices.allow", "devices.deny"],
    "freezer": ["freezer.state"],
    "hugetlb": ["hugetlb.2MB.limit_in_bytes", "hugetlb.1GB.limit_in_bytes"],
    "net_cls": ["net_cls.classid"],
    "net_prio": ["net_prio.ifpriomap"],
    "rdma": ["rdma.max"],
}
V2_FILES = ["cgroup.controllers", "cgroup.freeze", "cgroup.kill", "cgroup.procs", "cpu.weight", "cpu.max",
            "cpu.max.burst", "cpu.idle", "cpu.stat", "memory.max", "memory.low", "memory.swap.max", "memory.current",
            "memory.stat", "memory.events", "pids.max", "pids.current", "io.weight", "io.max", "io.stat",
            "hugetlb.2MB.max", "hugetlb.2MB.rsvd.max", "cpuset.cpus", "cpuset.mems", "rdma.max"]


@pytest.fixture
def v1(tmp_path):
    paths = {}
    for ctrl, files in V1_FILES.items():
        mp = tmp_path / ctrl
        d = mp / "ctr"
        d.mkdir(parents=True)
        for f in files + ["cgroup.procs"]:
            (d / f).write_text("")
        paths[str(mp)] = str(d)
    return {"version": 1, "paths": paths}


@pytest.fixture
def v2(tmp_path):
    d = tmp_path / "ctr"
    d.mkdir()
    for f in V2_FILES:
        (d / f).write_text("")
    (d / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma\n")
    return {"version": 2, "paths": {str(tmp_path): str(d)}}


def content(cg, ctrl, name):
    with open(os.path.join(cgroups.controller_dir(cg, ctrl), name)) as f:
        return f.read()


def everything_empty(cg):
    for path in cg["paths"].values():
        for f in os.listdir(path):
            if f != "cgroup.controllers":
                with open(os.path.join(path, f)) as fh:
                    assert fh.read() == "", f


def test_v1_all_resources(v1):
    cgroups.apply(v1, {
        "memory": {"limit": 1000, "reservation": 500, "swap": 2000, "swappiness": 0, "disableOOMKiller": True,
                   "kernelTCP": 300, "kernel": 400, "useHierarchy": True},
        "cpu": {"shares": 512, "quota": 5000, "period": 10000, "burst": 100, "realtimeRuntime": 900,
                "realtimePeriod": 1000, "cpus": "0-1", "mems": "0", "idle": 1},
        "pids": {"limit": -1},
        "blockIO": {"weight": 300, "leafWeight": 200, "weightDevice": [{"major": 8, "minor": 0, "weight": 100}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 70}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "network": {"classID": 0x100001, "priorities": [{"name": "eth0", "priority": 5}]},
        "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
        "devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 10, "minor": 229,
                                                        "access": "rw"}],
    })
    assert content(v1, "memory", "memory.limit_in_bytes") == "1000"
    assert content(v1, "memory", "memory.memsw.limit_in_bytes") == "2000"
    assert content(v1, "memory", "memory.soft_limit_in_bytes") == "500"
    assert content(v1, "memory", "memory.swappiness") == "0"
    assert content(v1, "memory", "memory.oom_control") == "1"
    assert content(v1, "memory", "memory.kmem.tcp.limit_in_bytes") == "300"
    assert content(v1, "cpu", "cpu.shares") == "512"
    assert content(v1, "cpu", "cpu.cfs_quota_us") == "5000" and content(v1, "cpu", "cpu.cfs_period_us") == "10000"
    assert content(v1, "cpu", "cpu.cfs_burst_us") == "100" and content(v1, "cpu", "cpu.idle") == "1"
    assert content(v1, "cpu", "cpu.rt_runtime_us") == "900" and content(v1, "cpu", "cpu.rt_period_us") == "1000"
    assert content(v1, "cpuset", "cpuset.cpus") == "0-1"
    assert content(v1, "pids", "pids.max") == "max"
    assert content(v1, "blkio", "blkio.weight") == "300"
    assert content(v1, "blkio", "blkio.weight_device") == "8:0 100"
    assert content(v1, "blkio", "blkio.throttle.read_bps_device") == "8:0 600"
    assert content(v1, "blkio", "blkio.throttle.write_iops_device") == "8:16 70"
    assert content(v1, "hugetlb", "hugetlb.2MB.limit_in_bytes") == "4194304"
    assert content(v1, "net_cls", "net_cls.classid") == str(0x100001)
    assert content(v1, "net_prio", "net_prio.ifpriomap") == "eth0 5"
    assert content(v1, "rdma", "rdma.max") == "mlx5_1 hca_handle=3 hca_object=10000"
    # the last write wins in a plain file: runc's default rules come after the config's
    assert content(v1, "devices", "devices.allow") == "c 10:200 rwm"
    assert v1["resources"]["memory"]["limit"] == 1000  # persisted, normalised


def test_v1_device_rule_order(v1):
    w = R.Writes(v1)
    devices.v1_writes(w, [{"allow": False, "type": "a", "access": "rwm"},
                          {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"},
                          {"allow": False, "type": "b", "major": 8, "access": "m"}])
    lines = [(os.path.basename(p), v) for p, v, _f in w.ops]
    # deny-all first whatever the config says (a new v1 group inherits its parent's a *:* rwm)
    assert lines[:4] == [("devices.deny", "a"), ("devices.deny", "a"), ("devices.allow", "c 10:229 rw"),
                         ("devices.deny", "b 8:* m")]
    assert ("devices.allow", "c 1:3 rwm") in lines and ("devices.allow", "c 136:* rwm") in lines


def test_v1_memory_write_order(v1):
    # memsw must stay >= the limit at every step: raising above the current
    # limit (unknown here) writes memsw first, lowering writes the limit first
    w = R.compile(v1, R.normalize({"memory": {"limit": 1000, "swap": 2000}}), update=True)
    assert [os.path.basename(p) for p, _v, _f in w.ops] == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
    with open(os.path.join(cgroups.controller_dir(v1, "memory"), "memory.limit_in_bytes"), "w") as f:
        f.write("5000")
    w = R.compile(v1, R.normalize({"memory": {"limit": 1000, "swap": 2000}}), update=True)
    assert [os.path.basename(p) for p, _v, _f in w.ops] == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
    # limit -1 without swap: swap unlimited too
    w = R.compile(v1, R.normalize({"memory": {"limit": -1}}), update=True)
    assert [(os.path.basename(p), v) for p, v, _f in w.ops] == [("memory.memsw.limit_in_bytes", "-1"),
                                                                ("memory.limit_in_bytes", "-1")]


@pytest.mark.parametrize("res,msg", [
    ({"memory": {"limit": -2}}, "linux.resources.memory.limit: must be -1"),
    ({"memory": {"limit": True}}, "linux.resources.memory.limit: must be an integer"),
    ({"memory": {"swappiness": 101}}, "linux.resources.memory.swappiness: invalid value 101"),
    ({"cpu": {"shares": -1}}, "linux.resources.cpu.shares: must not be negative"),
    ({"cpu": {"quota": -5}}, "linux.resources.cpu.quota"),
    ({"cpu": {"period": 10}}, "linux.resources.cpu.period"),
    ({"cpu": {"cpus": "1-0"}}, "linux.resources.cpu.cpus"),
    ({"cpu": {"idle": 2}}, "linux.resources.cpu.idle"),
    ({"pids": {}}, "linux.resources.pids.limit: is required"),
    ({"blockIO": {"weight": 1001}}, "linux.resources.blockIO.weight"),
    ({"blockIO": {"weightDevice": [{"major": 8, "weight": 10}]}}, "linux.resources.blockIO.weightDevice[0]"),
    ({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": -1}]}},
     "linux.resources.blockIO.throttleReadBpsDevice[0].rate"),
    ({"hugepageLimits": [{"pageSize": "2M", "limit": 1}]}, "linux.resources.hugepageLimits[0].pageSize"),
    ({"devices": [{"allow": True, "type": "p"}]}, "linux.resources.devices[0].type: invalid device type"),
    ({"devices": [{"type": "c"}]}, "linux.resources.devices[0].allow: is required"),
    ({"devices": [{"allow": True, "access": ""}]}, "linux.resources.devices[0].access"),
    ({"network": {"priorities": [{"name": "a b", "priority": 1}]}}, "linux.resources.network.priorities[0].name"),
    ({"unified": {"../x": "1"}}, "linux.resources.unified.../x"),
    ({"devices": [{"allow": True, "type": "c"}]}, "linux.resources.devices[0].access: must be a non-empty"),
    ({"devices": [{"allow": True, "access": "xyz"}]}, "linux.resources.devices[0].access: invalid access"),
    ({"memory": []}, "linux.resources.memory: must be an object"),
])
def test_bad_values_write_nothing(v1, res, msg):
    good = {"cpu": {"shares": 100}, "pids": {"limit": 5}}
    with pytest.raises(OcirunError) as e:  # ConfigError from ocirun.config, CgroupError from resources
        cgroups.apply(v1, dict(good, **res))
    assert msg in str(e.value) and "\n" not in str(e.value)
    everything_empty(v1)


def test_missing_controller_and_unsupported_file(v1):
    del v1["paths"][[mp for mp in v1["paths"] if mp.endswith("hugetlb")][0]]
    with pytest.raises(CgroupError, match=r"hugepageLimits\[0\]: the hugetlb cgroup controller is not available"):
        cgroups.apply(v1, {"pids": {"limit": 5}, "hugepageLimits": [{"pageSize": "2MB", "limit": 1}]})
    os.unlink(os.path.join(cgroups.controller_dir(v1, "blkio"), "blkio.weight"))
    with pytest.raises(CgroupError, match=r"blockIO.weight: not supported by this host's blkio controller"):
        cgroups.apply(v1, {"pids": {"limit": 5}, "blockIO": {"weight": 100}})
    with pytest.raises(CgroupError, match="can't use unified resources"):
        cgroups.apply(v1, {"unified": {"memory.max": "10"}})
    everything_empty(v1)


def test_conversions():
    assert R.shares_to_weight(0) == 0 and R.shares_to_weight(2) == 1 and R.shares_to_weight(262144) == 10000
    assert R.shares_to_weight(1024) == 1 + ((1024 - 2) * 9999) // 262142 == 39
    assert R.blkio_weight_to_io_weight(10) == 1 and R.blkio_weight_to_io_weight(1000) == 10000
    assert R.blkio_weight_to_io_weight(500) == 1 + (490 * 9999) // 990
    assert R.swap_to_v2(0, -1) == -1 and R.swap_to_v2(-1, 100) == -1 and R.swap_to_v2(300, 100) == 200
    with pytest.raises(CgroupError, match="should be >= memory limit"):
        R.swap_to_v2(50, 100)
    with pytest.raises(CgroupError, match="without memory limit"):
        R.swap_to_v2(50, 0)


def test_v2_all_resources(v2, monkeypatch):
    monkeypatch.setattr(devices, "v2_prepare", lambda w, rules, paths=(): None)  # the BPF attach needs the kernel
    cgroups.apply(v2, {
        "memory": {"limit": 1000, "reservation": 500, "swap": 3000, "swappiness": 10},
        "cpu": {"shares": 1024, "quota": 5000, "period": 10000, "burst": 7, "cpus": "0", "mems": "0", "idle": 0},
        "pids": {"limit": 20},
        "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}],
        "rdma": {"mlx5_1": {"hcaHandles": 1}},
        "unified": {"cpu.weight": "77"},
    })
    assert content(v2, "memory", "memory.max") == "1000"
    assert content(v2, "memory", "memory.swap.max") == "2000"
    assert content(v2, "memory", "memory.low") == "500"
    assert content(v2, "cpu", "cpu.max") == "5000 10000" and content(v2, "cpu", "cpu.max.burst") == "7"
    assert content(v2, "cpu", "cpu.weight") == "77"  # unified wins over the converted shares
    assert content(v2, "pids", "pids.max") == "20"
    assert content(v2, "io", "io.weight") == f"default {1 + (490 * 9999) // 990}"
    assert content(v2, "io", "io.max") == "8:0 rbps=600"
    assert content(v2, "hugetlb", "hugetlb.2MB.max") == "2097152"
    assert content(v2, "hugetlb", "hugetlb.2MB.rsvd.max") == "2097152"
    assert content(v2, "rdma", "rdma.max") == "mlx5_1 hca_handle=1"


def test_v2_errors(v2):
    for res, msg in [
        ({"cpu": {"realtimeRuntime": 5}}, "realtime scheduling is not supported on cgroup v2"),
        ({"network": {"classID": 1}}, "linux.resources.network: net_cls/net_prio do not exist on cgroup v2"),
        ({"unified": {"misc.max": "x"}}, "linux.resources.unified.misc.max: the misc controller is not enabled"),
        ({"unified": {"memory.nonexistent": "1"}}, "linux.resources.unified.memory.nonexistent: not supported"),
        ({"memory": {"swap": 100}}, "unable to set swap limit without memory limit"),
        ({"blockIO": {"leafWeight": 100}}, "leafWeight: not supported on cgroup v2"),
    ]:
        with pytest.raises(CgroupError, match=msg):
            cgroups.apply(v2, dict({"pids": {"limit": 3}}, **res))
    everything_empty(v2)
    (open(os.path.join(v2["paths"][next(iter(v2["paths"]))], "cgroup.controllers"), "w")).write("cpu\n")
    with pytest.raises(CgroupError, match="pids.limit: the pids cgroup controller is not available"):
        cgroups.apply(v2, {"pids": {"limit": 3}})


def test_update_merges_and_keeps_period(v1):
    cgroups.apply(v1, {"cpu": {"quota": 20000, "period": 50000}, "memory": {"limit": 1 << 20}})
    rules = content(v1, "devices", "devices.allow"), content(v1, "devices", "devices.deny")
    merged = cgroups.update(v1, {"cpu": {"quota": 30000}, "pids": {"limit": 7},
                                 "devices": [{"allow": True, "access": "rwm"}]})
    assert merged["cpu"] == {"quota": 30000, "period": 50000}
    assert merged["memory"] == {"limit": 1 << 20} and merged["pids"] == {"limit": 7} and "devices" not in merged
    assert content(v1, "cpu", "cpu.cfs_quota_us") == "30000" and content(v1, "cpu", "cpu.cfs_period_us") == "50000"
    # update never touches device rules
    assert (content(v1, "devices", "devices.allow"), content(v1, "devices", "devices.deny")) == rules


def test_update_check_before_update(v1):
    with open(os.path.join(cgroups.controller_dir(v1, "memory"), "memory.usage_in_bytes"), "w") as f:
        f.write("5000\n")
    with pytest.raises(CgroupError, match="rejecting memory limit 4096 below current usage 5000"):
        cgroups.update(v1, {"memory": {"limit": 4096, "checkBeforeUpdate": True}})
    cgroups.update(v1, {"memory": {"limit": 8192, "checkBeforeUpdate": True}})
    assert content(v1, "memory", "memory.limit_in_bytes") == "8192"


def test_bpf_program_shape():
    prog = devices.program(devices.effective_rules([{"allow": False, "type": "a", "access": "rwm"}]))
    insns = [struct.unpack("<BBhi", prog[i:i + 8]) for i in range(0, len(prog), 8)]
    assert insns[-1][0] == devices.EXIT and insns[-2] == (devices.MOV64K, 0, 0, 0)  # default deny
    # every jump lands inside the program, on the start of the next block
    for i, (code, _regs, off, _imm) in enumerate(insns):
        if code == devices.JNEK:
            target = i + 1 + off
            assert 0 < target < len(insns) and insns[target - 1][0] == devices.EXIT
    allow_all = devices.program([{"allow": True, "type": "a", "access": "rwm"}])
    assert struct.unpack("<BBhi", allow_all[-16:-8]) == (devices.MOV64K, 0, 0, 1)


def test_systemd_driver_is_passed_in_not_global(monkeypatch):
    """The driver is an argument: the systemd one refuses a host without
    systemd (runc's words) and places a scope; cgroupfs places the group."""
    monkeypatch.setattr(cgroups.host, "systemd_running", lambda: False)
    assert not hasattr(cgroups, "SYSTEMD")
    with pytest.raises(CgroupError, match="systemd support for managing cgroups is not available"):
        cgroups.resolve("system.slice:ocirun:x", "x", driver=cgroups.driver(systemd=True))
    monkeypatch.setattr(cgroups.host, "systemd_running", lambda: True)
    with pytest.raises(CgroupError, match='expected cgroupsPath to be of format "slice:prefix:name"'):
        cgroups.driver(systemd=True).resolve("a/b", "x")
    assert cgroups.driver(systemd=True).resolve("system.slice:ocirun:x", "x").desc["systemd"]["unit"] == \
        "ocirun-x.scope"
    with pytest.raises(CgroupError, match="linux.cgroupsPath: must be a string"):
        cgroups.driver(systemd=True).resolve(["a"], "x")  # was an AttributeError
    with pytest.raises(CgroupError, match="looks like a systemd slice:prefix:name path"):
        cgroups.driver().resolve("system.slice:ocirun:x", "x")


def test_cgroupfs_driver_places_under_the_tree(tmp_path, monkeypatch):
    mp = tmp_path / "cg2"
    mp.mkdir()
    monkeypatch.setattr(cgroups.host, "cgroup_hierarchies", lambda: [("cgroup2", str(mp), "rw")])
    monkeypatch.setattr(cgroups.host, "own_cgroup_paths", lambda: {"": "/user.slice"})
    cg = cgroups.driver().resolve("/abs/ctr", "id", root=str(mp))
    assert cg.desc == {"version": 2, "paths": {str(mp): str(mp / "abs/ctr")},
                       "made": [str(mp / "abs/ctr"), str(mp / "abs")]}
    cg = cgroups.driver().resolve(None, "id", root=str(mp))
    assert cg.paths == {str(mp): str(mp / "user.slice/id")}
    for bad in ("/", ".", "a/../b"):
        with pytest.raises(CgroupError, match="linux.cgroupsPath"):
            cgroups.driver().resolve(bad, "id", root=str(mp))


def test_cgroup_object_freeze_thaw_v1(v1):
    cg = cgroups.Cgroup(v1)
    fz = cg.freezer_file()
    assert fz == os.path.join(cgroups.controller_dir(v1, "freezer"), "freezer.state")
    with open(fz, "w") as f:
        f.write("FREEZING\n")
    assert cg.is_frozen()  # as runc and the C front-end: FREEZING counts
    with open(fz, "w") as f:  # (cgroupfs files are not truncated on write)
        f.write("FROZEN")
    cg.thaw(wait=False)
    assert content(v1, "freezer", "freezer.state") == "THAWED" and not cg.is_frozen()
    cg.freeze()  # the plain file reads back what was written: done at once
    assert content(v1, "freezer", "freezer.state") == "FROZEN" and cg.is_frozen()
    del v1["paths"][next(mp for mp in v1["paths"] if mp.endswith("freezer"))]
    assert cgroups.Cgroup(v1).freezer_file() is None and not cgroups.Cgroup(v1).is_frozen()
    with pytest.raises(CgroupError, match="freezer cgroup controller is not available"):
        cgroups.Cgroup(v1).freeze()


def test_state_status_reads_the_freezer_without_cgroups(v2, tmp_path):
    """The state store derives "paused" from the freezer file itself (the
    same rule as the C front-end), and the fast record names that file."""
    from ocirun import state

    d = next(iter(v2["paths"].values()))
    with open(os.path.join(d, "cgroup.freeze"), "w") as f:
        f.write("1\n")
    st = {"id": "x", "pid": os.getpid(), "start_time": state.pid_start_time(os.getpid()), "cgroup": v2}
    assert state.status(state.Store(str(tmp_path / "root")), st) == "paused"
    rec = state.fast_record(dict(st, cgroup=dict(v2, made=[d]))).decode()
    assert f"freeze {d}/cgroup.freeze\n" in rec and f"made {d}\n" in rec and "cgv 2\n" in rec


def test_freeze_v2_tree_and_pids_recursive(v2):
    d = v2["paths"][next(iter(v2["paths"]))]
    with open(os.path.join(d, "cgroup.events"), "w") as f:
        f.write("populated 1\nfrozen 1\n")
    cgroups.freeze(v2, True)
    assert content(v2, "cgroup", "cgroup.freeze") == "1" and cgroups.is_frozen(v2)
    os.mkdir(os.path.join(d, "sub"))
    with open(os.path.join(d, "cgroup.procs"), "w") as f:
        f.write("10\n11\n")
    with open(os.path.join(d, "sub", "cgroup.procs"), "w") as f:
        f.write("12\n")
    assert sorted(cgroups.pids(v2)) == [10, 11, 12]


def test_stats_shape_v1(v1):
    md = cgroups.controller_dir(v1, "memory")
    with open(os.path.join(md, "memory.stat"), "w") as f:
        f.write("cache 4096\nrss 8192\n")
    with open(os.path.join(md, "memory.usage_in_bytes"), "w") as f:
        f.write("12288\n")
    with open(os.path.join(cgroups.controller_dir(v1, "cpuacct"), "cpuacct.usage_percpu"), "w") as f:
        f.write("5 7 \n")
    with open(os.path.join(cgroups.controller_dir(v1, "pids"), "pids.current"), "w") as f:
        f.write("3\n")
    with open(os.path.join(cgroups.controller_dir(v1, "pids"), "pids.max"), "w") as f:
        f.write("max\n")
    d = stats.collect(v1)
    assert list(d) == ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"]
    assert d["cpu"]["usage"] == {"percpu": [5, 7], "kernel": 0, "user": 0} and d["cpu"]["throttling"] == {}
    assert d["memory"]["cache"] == 4096 and d["memory"]["raw"] == {"cache": 4096, "rss": 8192}
    assert d["memory"]["usage"] == {"limit": 0, "usage": 12288, "failcnt": 0}
    assert d["pids"] == {"current": 3}
    assert d["blkio"] == {} and d["network_interfaces"] is None
    assert set(d["hugetlb"]) == {"2MB", "1GB"} and d["hugetlb"]["2MB"] == {"failcnt": 0}


def test_update_flag_parsing():
    from ocirun.cli.cgroupcmds import parse_duration, ram_in_bytes

    assert ram_in_bytes("100M") == 100 << 20 and ram_in_bytes("1g") == 1 << 30 and ram_in_bytes("512") == 512
    assert ram_in_bytes("2KiB") == 2048 and ram_in_bytes("1.5k") == 1536
    for bad in ("", "M", "1X", "-5", "1..5"):
        with pytest.raises(ValueError):
            ram_in_bytes(bad)
    assert parse_duration("5s") == 5 and parse_duration("100ms") == 0.1 and parse_duration("1m30s") == 90
    assert parse_duration("0") == 0
    for bad in ("5", "s", "1x", ""):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_stats_psi_v2(v2):
    """PSI (cgroup v2 *.pressure) in runc's shape: Go number formatting, an
    all-zero line left out, no key at all without the file."""
    d = next(iter(v2["paths"].values()))
    with open(os.path.join(d, "cpu.pressure"), "w") as f:
        f.write("some avg10=1.25 avg60=0.00 avg300=3.00 total=1100605\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
    with open(os.path.join(d, "io.pressure"), "w") as f:
        f.write("some avg10=0.00 avg60=0.00 avg300=0.00 total=7\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=5\n")
    s = stats.collect(v2)
    assert s["cpu"]["psi"] == {"some": {"avg10": 1.25, "avg60": 0, "avg300": 3, "total": 1100605}}
    assert "psi" not in s["memory"]  # no memory.pressure here
    assert s["blkio"]["psi"] == {"some": {"avg10": 0, "avg60": 0, "avg300": 0, "total": 7},
                                 "full": {"avg10": 0, "avg60": 0, "avg300": 0, "total": 5}}
    from ocirun.jsonutil import dumps

    assert dumps(s["cpu"]["psi"]) == '{"some":{"avg10":1.25,"avg60":0,"avg300":3,"total":1100605}}'


def test_stats_v1_has_no_psi(v1):
    s = stats.collect(v1)
    assert "psi" not in s["cpu"] and "psi" not in s["memory"] and "psi" not in s["blkio"]


def test_no_devices_field_still_denies_by_default(v1, v2, monkeypatch):
    """linux.resources absent, or without devices: deny-all, then runc's
    default allow list (v1 files; v2 program whose fall-through is deny)."""
    for res in (None, {"pids": {"limit": 3}}):
        w = R.compile(v1, R.normalize(res or {}))
        devs = [(os.path.basename(p), v) for p, v, _f in w.ops if "devices." in p]
        assert devs[0] == ("devices.deny", "a") and ("devices.allow", "c 1:3 rwm") in devs
        assert ("devices.allow", "c *:* m") in devs and ("devices.allow", "a") not in devs
    seen = []
    monkeypatch.setattr(devices, "v2_prepare", lambda w, rules, paths=(): seen.append(rules))
    cgroups.apply(v2, None)
    assert seen == [[]]
    prog = devices.program(devices.effective_rules([]))
    assert prog[-16:] == devices._insn(devices.MOV64K, 0, imm=0) + devices._insn(devices.EXIT)


def test_config_device_paths_replace_default_rules(v1):
    """runc 1.1 drops a default allow rule whose path linux.devices names
    (a config's /dev/null node gets no rule of its own): never wider than runc."""
    w = R.compile(v1, R.normalize({}), device_paths=["/dev/null"])
    devs = [v for p, v, _f in w.ops if p.endswith("devices.allow")]
    assert "c 1:3 rwm" not in devs and "c 1:5 rwm" in devs and "c 136:* rwm" in devs
    assert all("path" not in r or r["path"] != "/dev/zero" for r in devices.effective_rules([], ["/dev/zero"]))


def test_unknown_resource_keys_are_ignored_with_a_warning(v1, capfd):
    """runtime-spec: unknown properties are ignored (runc drops them while
    decoding); the known ones still apply."""
    res = R.normalize({"memory": {"limit": 1 << 20, "oomKill": 1}, "intelRdt": {}, "pids": {"limit": 5}})
    assert res == {"memory": {"limit": 1 << 20}, "pids": {"limit": 5}}
    err = capfd.readouterr().err
    assert "linux.resources.memory.oomKill: unknown field, ignored" in err and "level=warning" in err
    assert "linux.resources.intelRdt: unknown field, ignored" in err


def test_device_access_letters_as_runc_on_v1(capfd):
    """Letters other than r, w, m are dropped with a warning, the rest put in
    canonical order (runc's v1 rule emulator): never more than asked."""
    res = R.normalize({"devices": [{"allow": True, "type": "c", "major": 4, "minor": 7, "access": "xwr"},
                                   {"allow": False, "access": "mmr"}]})
    assert [d["access"] for d in res["devices"]] == ["rw", "rm"]
    assert "devices[0].access: ignoring unknown access letters in 'xwr', using 'rw'" in capfd.readouterr().err


def test_v1_hierarchy_names_drop_mount_options(monkeypatch):
    """On systemd hosts v1 hierarchies carry options that are not
    controllers (xattr, clone_children, release_agent=…): the name must be
    what /proc/<pid>/cgroup says, or a relative cgroupsPath misses the
    runtime's own group and exec --cgroup takes "xattr" for a controller."""
    monkeypatch.setattr(cgroups.host, "cgroup_hierarchies", lambda: [
        ("cgroup", "/sys/fs/cgroup/systemd", "rw,xattr,release_agent=/lib/systemd/agent,name=systemd"),
        ("cgroup", "/sys/fs/cgroup/cpu,cpuacct", "rw,cpu,cpuacct"),
        ("cgroup", "/sys/fs/cgroup/cpuset", "rw,clone_children,cpuset"),
        ("cgroup", "/sys/fs/cgroup/net_cls", "ro,noprefix,net_cls"),
        ("cgroup2", "/sys/fs/cgroup/unified", "rw,nsdelegate"),
    ])
    found, version = cgroups.hierarchies("/sys/fs/cgroup")
    assert version == 1
    assert found == {"/sys/fs/cgroup/systemd": "name=systemd", "/sys/fs/cgroup/cpu,cpuacct": "cpu,cpuacct",
                     "/sys/fs/cgroup/cpuset": "cpuset", "/sys/fs/cgroup/net_cls": "net_cls",
                     "/sys/fs/cgroup/unified": ""}


def test_cgroup_remove_takes_only_what_ocirun_made(tmp_path):
    """Cgroup.remove (csrc/core's lc_remove_made, the front-end's rule): the
    container's own groups go with every sub-group its processes made; a
    parent ocirun made goes only when nothing else lives in it; a group that
    existed before, and a hierarchy's root, stay."""
    pytest.importorskip("ocirun._lifecycle", reason="ocirun is not built and installed (scripts/install.sh)")
    a, b = tmp_path / "a", tmp_path / "b"  # two hierarchies
    (a / "made" / "ctr" / "sub" / "subsub").mkdir(parents=True)
    (a / "made" / "other").mkdir()  # another container's group under a parent we made
    (b / "before" / "ctr").mkdir(parents=True)
    (b / "made2").mkdir()
    desc = {"version": 1, "paths": {str(a): str(a / "made" / "ctr"), str(b): str(b / "before" / "ctr")},
            "made": [str(a / "made" / "ctr"), str(b / "before" / "ctr"), str(a / "made"), str(b / "made2"), str(b)]}
    cgroups.Cgroup(desc).remove(timeout=1.0)
    assert sorted(os.listdir(a)) == ["made"] and os.listdir(a / "made") == ["other"]
    assert os.listdir(b) == ["before"] and os.listdir(b / "before") == []
    cgroups.Cgroup(desc).remove(timeout=1.0)  # gone already: nothing to say
    # the first directory that cannot go is named, in the one errno wording
    (a / "made" / "ctr" / "sub").mkdir(parents=True)
    (a / "made" / "ctr" / "sub" / "f").write_text("z")  # cgroupfs has no such thing: rmdir fails
    with pytest.raises(CgroupError) as e:
        cgroups.Cgroup(desc).remove(timeout=1.0)
    assert str(e.value) == f"removing cgroup {a / 'made' / 'ctr' / 'sub'}: directory not empty"
    # a state from before "made" was kept: the container's own groups, whole
    legacy = {"version": 1, "paths": {str(a): str(a / "made" / "other")}}
    (a / "made" / "other" / "sub").mkdir()
    cgroups.remove(legacy, timeout=1.0)
    assert os.listdir(a / "made") == ["ctr"]


def test_zero_blkio_weight_is_unset_and_needs_no_io_controller(v2, monkeypatch):
    """dockerd sends blockIO.weight 0 on every container: "not set" (runc),
    so a cgroup2 without the io controller (systemd's scope on a host whose
    io is bound to v1) still runs it; a real weight still needs io."""
    monkeypatch.setattr(devices, "v2_prepare", lambda w, rules, paths=(): None)
    path = next(iter(v2["paths"].values()))
    with open(os.path.join(path, "cgroup.controllers"), "w") as f:
        f.write("cpuset cpu memory hugetlb pids rdma\n")
    cgroups.apply(v2, {"blockIO": {"weight": 0, "leafWeight": 0}, "pids": {"limit": 20}})
    assert v2["resources"] == {"pids": {"limit": 20}}
    assert content(v2, "pids", "pids.max") == "20"
    with pytest.raises(CgroupError, match="linux.resources.blockIO: the io cgroup controller is not available"):
        cgroups.apply(v2, {"blockIO": {"weight": 100}})
