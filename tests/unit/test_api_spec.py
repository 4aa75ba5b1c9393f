"""The Python API without root: what each Spec setter writes into
config.json (and what None takes away), the error types' field and reason
read back from the one line every error is worded as."""

import json
import os

import pytest

from ocirun.api_spec import Spec
from ocirun.errors import CgroupError, ConfigError, InitError, OcirunError, StateError
from ocirun.spec.template import default_spec


def test_starts_from_ocirun_spec_without_a_terminal():
    s = Spec("/r", ["true"], rootless=False)
    want = default_spec(False)
    want["process"]["terminal"] = False
    want["process"]["args"] = ["true"]
    want["root"]["path"] = "/r"
    assert s.config == want


def test_setters_write_the_config_fields():
    s = Spec("/r", ["sh"], rootless=False)
    s.env = {"A": "1"}
    s.env["B"] = "2"
    s.cwd = "/srv"
    s.user = "1000:100"
    s.additional_gids = [5, 6]
    s.capabilities = ["net_bind_service", "CAP_KILL", "CAP_KILL"]
    s.readonly = False
    s.hostname = "box"
    s.memory = "64M"
    s.pids = 32
    s.cpus = 0.5
    s.network = "host"
    s.bind("/data", "/data", readonly=True)
    s.tmpfs("/scratch", size="1M")
    p = s.config["process"]
    assert p["env"] == ["A=1", "B=2"]
    assert (p["cwd"], p["user"]) == ("/srv", {"uid": 1000, "gid": 100, "additionalGids": [5, 6]})
    # every set `ocirun spec` fills, ambient included
    assert p["capabilities"] == {k: ["CAP_NET_BIND_SERVICE", "CAP_KILL"]
                                 for k in ("bounding", "effective", "permitted", "ambient")}
    assert s.config["root"]["readonly"] is False and s.config["hostname"] == "box"
    res = s.config["linux"]["resources"]
    assert res["memory"] == {"limit": 64 << 20, "swap": 64 << 20}  # no swap beyond the limit
    assert res["pids"] == {"limit": 32}
    assert res["cpu"] == {"quota": 50000, "period": 100000}
    assert res["devices"] == default_spec(False)["linux"]["resources"]["devices"]
    assert "network" not in [n["type"] for n in s.config["linux"]["namespaces"]]
    assert s.config["mounts"][-2:] == [
        {"destination": "/data", "type": "bind", "source": "/data", "options": ["rbind", "nosuid", "nodev", "ro"]},
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "nodev", "mode=1777", "size=1048576"]}]
    assert (s.user, s.memory, s.pids, s.cpus, s.network) == ((1000, 100), 64 << 20, 32, 0.5, "host")


def test_none_takes_a_limit_away_and_network_none_is_a_namespace_of_its_own():
    s = Spec("/r", ["sh"], rootless=False)
    s.network = "host"
    s.network = "none"
    assert [n for n in s.config["linux"]["namespaces"] if n["type"] == "network"] == [{"type": "network"}]
    s.network = "/var/run/netns/x"
    assert s.network == "/var/run/netns/x"
    s.limits(memory=1 << 20, pids=4, cpus=1)
    s.memory_swap = None
    assert s.config["linux"]["resources"]["memory"] == {"limit": 1 << 20}
    s.memory_swap = -1
    assert s.config["linux"]["resources"]["memory"] == {"limit": 1 << 20, "swap": -1}
    s.memory = s.pids = s.cpus = None
    assert s.config["linux"]["resources"] == {"devices": default_spec(False)["linux"]["resources"]["devices"],
                                              "memory": {}, "cpu": {}}
    s.drop_capability("kill")
    assert "CAP_KILL" not in s.capabilities


def test_write_makes_root_path_absolute_and_load_reads_it_back(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = Spec("rootfs", ["echo", "hi"], rootless=False)
    bundle = s.write(str(tmp_path / "b"))
    with open(os.path.join(bundle, "config.json")) as f:
        cfg = json.load(f)
    assert cfg["root"]["path"] == str(tmp_path / "rootfs")
    assert Spec.load(bundle).config == cfg
    # without a rootfs: `ocirun spec`'s, relative to the bundle
    Spec(rootless=False).write(str(tmp_path / "c"))
    with open(tmp_path / "c" / "config.json") as f:
        assert json.load(f)["root"]["path"] == "rootfs"
    with pytest.raises(ConfigError) as e:
        Spec(config={"process": {}}).write(str(tmp_path / "d"))
    assert (e.value.field, e.value.reason) == ("root.path", "is required (Spec(rootfs=...) or spec.rootfs = ...)")


@pytest.mark.parametrize("msg,field,reason", [
    ("process.cwd: must be an absolute path", "process.cwd", "must be an absolute path"),
    ("mounts[3].source: no such file or directory", "mounts[3].source", "no such file or directory"),
    ("linux.resources.memory.swap: memory+swap limit (1) should be >= memory limit (2)",
     "linux.resources.memory.swap", "memory+swap limit (1) should be >= memory limit (2)"),
    ("linux.sysctl.net.ipv4.ip_forward: writing /proc/sys/net/ipv4/ip_forward: permission denied",
     "linux.sysctl.net.ipv4.ip_forward", "writing /proc/sys/net/ipv4/ip_forward: permission denied"),
    ("process.cwd /x: chdir: no such file or directory", "process.cwd", "/x: chdir: no such file or directory"),
    ("exec failed: process.args: must not be empty", "process.args", "must not be empty"),
    ('error mounting mounts[7] to rootfs at "/x": invalid argument', "mounts[7]",
     'error mounting mounts[7] to rootfs at "/x": invalid argument'),
    ("container does not exist", None, "container does not exist"),
    ("rootfs is weird", None, "rootfs is weird"),  # a word that is not a field
])
def test_errors_read_field_and_reason_from_their_line(msg, field, reason):
    for cls in (OcirunError, ConfigError, CgroupError, StateError):
        e = cls(msg)
        assert (e.field, e.reason, str(e)) == (field, reason, msg)
    e = InitError(msg, 22)
    assert (e.field, e.errno) == (field, 22)


def test_errors_given_field_and_reason_word_the_line():
    e = ConfigError(field="process.args", reason="must not be empty")
    assert (str(e), e.field, e.reason) == ("process.args: must not be empty", "process.args", "must not be empty")
