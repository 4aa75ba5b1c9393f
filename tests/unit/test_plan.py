"""config.json -> plan: validation errors name the field; no root needed."""

import copy
import struct

import pytest

from ocirun import proto as P
from ocirun import tables as T
from ocirun.errors import ConfigError
from ocirun.plan import build, clean_path
from ocirun.spec.template import default_spec


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "rootfs").mkdir()
    return str(tmp_path)


def cfg():
    c = default_spec()
    c["process"]["terminal"] = False
    return c


def records(plan):
    blob = plan.blob()
    off, out = 16, []
    while off < len(blob):
        t, _z, ln = struct.unpack_from("=HHI", blob, off)
        out.append((t, blob[off + 8: off + 8 + ln]))
        off += 8 + ((ln + 7) & ~7)
    return out


def errmsg(c, bundle):
    with pytest.raises(ConfigError) as e:
        build(c, bundle)
    return str(e.value)


def test_default_config_compiles(bundle):
    plan = build(cfg(), bundle)
    types = [t for t, _ in records(plan)]
    assert types.count(P.R_MASK) == 11 and types.count(P.R_RO_PATH) == 5
    assert P.R_NNP in types and P.R_CAPS in types and P.R_LOOPBACK in types
    ns = struct.unpack("=Q", dict(records(plan))[P.R_NS_NEW])[0]
    for t in ("pid", "network", "ipc", "uts", "mount", "cgroup"):
        assert ns & T.NAMESPACES[t]


@pytest.mark.parametrize("mutate,field", [
    (lambda c: c.pop("ociVersion"), "ociVersion"),
    (lambda c: c["process"].__setitem__("args", "sh"), "process.args"),
    (lambda c: c["process"].__setitem__("args", []), "process.args"),
    (lambda c: c["process"].__setitem__("cwd", "rel"), "process.cwd"),
    (lambda c: c["process"]["env"].append("NOEQUALS"), "process.env[2]"),
    (lambda c: c["linux"]["namespaces"].append({"type": "bogus"}), "linux.namespaces[6].type"),
    (lambda c: c["linux"]["namespaces"].append({"type": "pid"}), "linux.namespaces[6]"),
    (lambda c: c["mounts"].append({"destination": "/x", "type": "bind", "source": "/nonexistent-src", "options": ["bind"]}),
     "mounts[7].source"),
    (lambda c: c["mounts"].append({"destination": "/proc/evil", "type": "tmpfs", "source": "tmpfs"}),
     "mounts[7].destination"),
    (lambda c: c["mounts"].append({"destination": "/x", "source": "tmpfs"}), "mounts[7].type"),
    (lambda c: c["process"]["rlimits"].append({"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}), "process.rlimits[1].type"),
    (lambda c: c["process"]["rlimits"].append({"type": "RLIMIT_CORE", "soft": -1, "hard": 1}), "process.rlimits[1].soft"),
    (lambda c: c["process"].__setitem__("oomScoreAdj", 5000), "process.oomScoreAdj"),
    (lambda c: c["linux"].__setitem__("sysctl", {"kernel.domainname/../x": "1"}), "linux.sysctl"),
    (lambda c: c["linux"].__setitem__("sysctl", {"vm.swappiness": "1"}), "linux.sysctl.vm.swappiness"),
    (lambda c: c["linux"].__setitem__("devices", [{"path": "/dev/x", "type": "z", "major": 1, "minor": 1}]),
     "linux.devices[0].type"),
    (lambda c: c["linux"].__setitem__("rootfsPropagation", "sideways"), "linux.rootfsPropagation"),
    # no mount namespace is allowed (as runc), but not with masked paths (runc's words)
    (lambda c: c["linux"].__setitem__("namespaces", [{"type": "pid"}]), "linux.maskedPaths: unable to restrict"),
    (lambda c: c["linux"]["namespaces"].append({"type": "user"}), "linux.uidMappings"),
    (lambda c: c["root"].__setitem__("path", "missing"), "root.path"),
    (lambda c: c["process"]["user"].__setitem__("uid", "0"), "process.user.uid"),
    (lambda c: c.__setitem__("mounts", {"a": 1}), "mounts"),
    (lambda c: c["linux"].__setitem__("namespaces", [{"type": t} for t in ("mount", "pid")]) or c.__setitem__("hostname", "h"),
     "hostname"),
])
def test_errors_name_the_field(bundle, mutate, field):
    c = cfg()
    mutate(c)
    msg = errmsg(c, bundle)
    assert msg.startswith(field), msg


def test_mount_options(bundle):
    c = cfg()
    c["mounts"] = [{"destination": "/data", "type": "bind", "source": bundle,
                    "options": ["rbind", "ro", "nosuid", "rslave", "rro", "rnoexec"]},
                   {"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "sync", "noexec"]}]
    plan = build(c, bundle)
    mounts = [r for t, r in records(plan) if t == P.R_MOUNT]
    kind, idx, flags, prop, aset, aclr = P.REC_MOUNT.unpack_from(mounts[0])
    assert kind == P.MK_BIND and idx == 0
    assert flags & P.MNT_REC_BIND and flags & T.MS_RDONLY and flags & T.MS_NOSUID and flags & P.MNT_REC_PROP
    assert prop == T.MS_SLAVE
    assert aset == T.MOUNT_ATTR_RDONLY | T.MOUNT_ATTR_NOEXEC
    kind, idx, flags, prop, aset, aclr = P.REC_MOUNT.unpack_from(mounts[1])
    strings = mounts[1][P.REC_MOUNT.size:].split(b"\0")
    assert kind == P.MK_FS and flags & T.MS_NOEXEC
    assert strings[:4] == [b"tmpfs", b"/t", b"tmpfs", b"size=1m,sync"]


def test_user_namespace_maps(bundle):
    c = cfg()
    c["linux"]["namespaces"].append({"type": "user"})
    c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    plan = build(c, bundle)
    assert plan.uid_map == "0 100000 65536\n" and plan.gid_map == "0 200000 65536\n"
    assert plan.host_root == (100000, 200000) and plan.setup_sync
    # devices are bind-mounted from the host inside a user namespace
    devs = [P.REC_DEVICE.unpack_from(r) for t, r in records(plan) if t == P.R_DEVICE]
    assert devs and all(d[6] == 1 for d in devs)


def test_unknown_capability_warns(bundle):
    c = cfg()
    c["process"]["capabilities"]["bounding"].append("CAP_NOT_REAL")
    plan = build(c, bundle)
    assert any("CAP_NOT_REAL" in w for w in plan.warnings)


def test_sysctl_encoding(bundle):
    c = cfg()
    c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shmmax": "65536"}
    recs = [r for t, r in records(build(c, bundle)) if t == P.R_SYSCTL]
    keys = sorted(r[8:].split(b"\0")[0] for r in recs)
    assert keys == [b"kernel/shmmax", b"net/ipv4/ip_forward"]


@pytest.mark.parametrize("p,clean", [("/a/../../b", "/b"), ("a/./b/", "/a/b"), ("/", "/"), ("/../..", "/")])
def test_clean_path(p, clean):
    assert clean_path(p if p.startswith("/") else "/" + p) == clean


def test_spec_template_validates_against_schema():
    from tests.conftest import schema_validator

    v = schema_validator("config.json")
    for rootless in (False, True):
        errors = list(v.iter_errors(copy.deepcopy(default_spec(rootless))))
        assert not errors, errors[0].message
    bad = default_spec()
    bad["process"]["args"] = "not-an-array"
    assert list(v.iter_errors(bad)), "the validator must reject a broken config"


def _set_linux(key, value):
    return lambda c: c["linux"].__setitem__(key, value)


@pytest.mark.parametrize("mutate,field", [
    (_set_linux("memoryPolicy", {"nodes": "0"}), "linux.memoryPolicy.mode"),
    (_set_linux("memoryPolicy", {"mode": "MPOL_RANDOM"}), "linux.memoryPolicy.mode"),
    (_set_linux("memoryPolicy", {"mode": "MPOL_BIND"}), "linux.memoryPolicy.nodes"),
    (_set_linux("memoryPolicy", {"mode": "MPOL_LOCAL", "nodes": "0"}), "linux.memoryPolicy.nodes"),
    (_set_linux("memoryPolicy", {"mode": "MPOL_BIND", "nodes": "3-1"}), "linux.memoryPolicy.nodes"),
    (_set_linux("memoryPolicy", {"mode": "MPOL_BIND", "nodes": "1024"}), "linux.memoryPolicy.nodes"),
    (_set_linux("memoryPolicy", {"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_X"]}),
     "linux.memoryPolicy.flags[0]"),
    (_set_linux("memoryPolicy", "MPOL_BIND"), "linux.memoryPolicy"),
    (_set_linux("netDevices", {"eth0": {"name": "a/b"}}), "linux.netDevices.eth0.name"),
    (_set_linux("netDevices", {"": {}}), "linux.netDevices."),
])
def test_spec_1_3_errors_name_the_field(bundle, mutate, field):
    c = cfg()
    mutate(c)
    msg = errmsg(c, bundle)
    assert msg.startswith(field), msg


@pytest.mark.parametrize("policy,value,mask", [
    ({"mode": "MPOL_BIND", "nodes": "0-2,5", "flags": ["MPOL_F_STATIC_NODES"]}, 2 | 1 << 15, 0b100111),
    ({"mode": "MPOL_INTERLEAVE", "nodes": "70"}, 3, 1 << 70),
    ({"mode": "MPOL_LOCAL"}, 4, None),
    ({"mode": "MPOL_PREFERRED"}, 1, None),
    ({"mode": "MPOL_WEIGHTED_INTERLEAVE", "nodes": "1", "flags": ["MPOL_F_RELATIVE_NODES"]}, 6 | 1 << 14, 2),
])
def test_memory_policy_record(bundle, policy, value, mask):
    """set_mempolicy(2)'s mode|flags and node mask, as the init gets them."""
    c = cfg()
    c["linux"]["memoryPolicy"] = policy
    recs = [r for t, r in records(build(c, bundle)) if t == P.R_MEMPOLICY]
    assert len(recs) == 1
    got_value, zero = struct.unpack_from("=II", recs[0])
    assert (got_value, zero) == (value, 0)
    bits = recs[0][8:]
    assert len(bits) % 8 == 0
    assert (int.from_bytes(bits, "little") if bits else None) == mask


def test_net_devices_ask_the_init_for_a_route_socket(bundle):
    c = cfg()
    plain = [t for t, _ in records(build(c, bundle))]
    c["linux"]["netDevices"] = {"eth1": {"name": "net%d"}, "eth2": None}
    plan = build(c, bundle)
    assert P.R_NETLINK not in plain and P.R_NETLINK in [t for t, _ in records(plan)]
    assert plan.net_devices == [("eth1", "net%d"), ("eth2", "eth2")]


def test_exec_process_without_a_label_gets_the_containers(monkeypatch):
    """runc: `exec --process` without selinuxLabel runs under the container's
    label, never unconfined (no SELinux here: the host check is faked, the
    label is looked for in the plan the init would get)."""
    from ocirun import host
    from ocirun import plan as PL

    monkeypatch.setattr(host, "selinux_enabled", lambda: True)
    cfg = default_spec()
    cfg["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0:c1,c2"
    proc = {"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}}
    assert b"container_t:s0:c1,c2" in PL.build_exec(cfg, proc, 0).blob()
    own = dict(proc, selinuxLabel="system_u:system_r:other_t:s0")
    blob = PL.build_exec(cfg, own, 0).blob()
    assert b"other_t" in blob and b"container_t" not in blob
    del cfg["process"]["selinuxLabel"]
    assert b"container_t" not in PL.build_exec(cfg, proc, 0).blob()
