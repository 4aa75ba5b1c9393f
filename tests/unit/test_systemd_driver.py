"""The systemd cgroup driver without a running systemd: unit names and slice
expansion (runc's ExpandSlice cases), linux.resources -> unit properties
(runc 1.1's conversions), org.systemd.property.* annotations (GVariant
text), where the driver places a scope on v2 and v1 trees, the front-end
record of such a container, and the D-Bus client against a real socket
whose peer is stuck or speaks a little of systemd's protocol."""

import os
import socket
import threading

import pytest

from ocirun import cgroups, state
from ocirun.cgroups import sdbus, systemd as S
from ocirun.errors import CgroupError

U64 = 2**64 - 1


# --- names ---------------------------------------------------------------------------

@pytest.mark.parametrize("slice_, path", [
    ("-.slice", "/"),
    ("system.slice", "/system.slice"),
    ("a-b.slice", "/a.slice/a-b.slice"),
    ("a-b-c.slice", "/a.slice/a-b.slice/a-b-c.slice"),
    ("kubepods-besteffort-pod1.slice", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice"),
])
def test_expand_slice(slice_, path):
    assert S.expand_slice(slice_) == path


@pytest.mark.parametrize("bad", ["", ".slice", "a--b.slice", "-a.slice", "a-.slice", "a/b.slice", "test",
                                 "a b.slice", "machine.scope", "--.slice"])
def test_expand_slice_refuses_what_systemd_refuses(bad):
    with pytest.raises(CgroupError, match=f'linux.cgroupsPath: invalid slice name "{bad}"'):
        S.expand_slice(bad)


@pytest.mark.parametrize("path, slice_, unit", [
    (None, "system.slice", "ocirun-ID.scope"),
    ("", "system.slice", "ocirun-ID.scope"),
    ("machine.slice:libpod:abc", "machine.slice", "libpod-abc.scope"),
    (":docker:abc", "system.slice", "docker-abc.scope"),
    ("a-b.slice::abc", "a-b.slice", "abc.scope"),
    ("system.slice::mine.scope", "system.slice", "mine.scope"),
    ("-.slice:cri-containerd:abc", "-.slice", "cri-containerd-abc.scope"),
])
def test_unit_names(path, slice_, unit):
    assert S.parse_path(path, "ID") == (slice_, unit)


@pytest.mark.parametrize("path, msg", [
    ("system.slice:x", 'expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, '
                       'got "system.slice:x" instead'),
    ("a:b:c:d", 'expected cgroupsPath to be of format "slice:prefix:name"'),
    ("machine:libpod:abc", 'invalid slice name "machine"'),
    ("system.slice:libpod:", "the name part is empty"),
    ("system.slice:libpod:x.slice", "names a slice, which cannot hold the container's processes"),
    ("system.slice:lib/pod:x", '"lib/pod-x.scope" is not a valid systemd unit name'),
    ("system.slice:a:b c", 'is not a valid systemd unit name'),
    ("system.slice:x:" + "a" * 300, "is not a valid systemd unit name"),
])
def test_bad_paths_are_named(path, msg):
    with pytest.raises(CgroupError, match="^linux.cgroupsPath: .*" + msg.replace("(", r"\(").replace(")", r"\)")):
        S.parse_path(path, "ID")


def test_path_must_be_a_string():
    with pytest.raises(CgroupError, match="linux.cgroupsPath: must be a string"):
        S.parse_path(["a"], "ID")


# --- where the driver places the scope --------------------------------------------------

def _driver_on(monkeypatch, hier, init):
    monkeypatch.setattr(cgroups.host, "systemd_running", lambda: True)
    monkeypatch.setattr(cgroups.host, "cgroup_hierarchies", lambda: hier)
    monkeypatch.setattr(S, "init_paths", lambda: init)
    return cgroups.driver(systemd=True)


def test_placement_v2(tmp_path, monkeypatch):
    mp = str(tmp_path)
    d = _driver_on(monkeypatch, [("cgroup2", mp, "rw")], {"": "/"})
    desc = d.resolve("a-b.slice:pfx:c1", "c1", root=mp,
                     annotations={"org.systemd.property.CollectMode": "'inactive-or-failed'", "other": "x"}).desc
    want = mp + "/a.slice/a-b.slice/pfx-c1.scope"
    assert desc == {"version": 2, "paths": {mp: want}, "made": [want],
                    "systemd": {"unit": "pfx-c1.scope", "slice": "a-b.slice", "started": False,
                                "props": [["CollectMode", ["s", "inactive-or-failed"]]]}}
    # nothing was created, and a stored description comes back as the systemd kind
    assert os.listdir(mp) == []
    assert isinstance(cgroups.load(desc), cgroups.SystemdCgroup)
    assert type(cgroups.load({"version": 2, "paths": {mp: want}})) is cgroups.Cgroup


def test_placement_v1_hybrid_follows_pid1s_groups(tmp_path, monkeypatch):
    """runc's getSubsystemPath: PID 1's group in each hierarchy, init.scope
    stripped, then the slice and the unit."""
    root = str(tmp_path)
    hier = [("cgroup", root + "/memory", "rw,memory"), ("cgroup", root + "/cpu,cpuacct", "rw,cpu,cpuacct"),
            ("cgroup", root + "/systemd", "rw,xattr,name=systemd"), ("cgroup2", root + "/unified", "rw")]
    d = _driver_on(monkeypatch, hier, {"memory": "/", "cpu,cpuacct": "/", "name=systemd": "/", "": "/"})
    cg = d.resolve("machine.slice:libpod:x", "x", root=root)
    assert cg.version == 1
    assert cg.paths == {root + "/memory": root + "/memory/machine.slice/libpod-x.scope",
                        root + "/cpu,cpuacct": root + "/cpu,cpuacct/machine.slice/libpod-x.scope",
                        root + "/systemd": root + "/systemd/machine.slice/libpod-x.scope",
                        root + "/unified": root + "/unified/machine.slice/libpod-x.scope"}
    assert sorted(cg.desc["made"]) == sorted(cg.paths.values())


def test_init_paths_strip_init_scope():
    init = S.init_paths()
    assert all(not p.endswith("init.scope") for p in init.values())


def test_no_systemd_is_refused_with_runcs_words(monkeypatch):
    monkeypatch.setattr(cgroups.host, "systemd_running", lambda: False)
    with pytest.raises(CgroupError, match="^systemd cgroup flag passed, but systemd support for managing cgroups "
                                          "is not available$"):
        cgroups.driver(systemd=True).resolve("machine.slice:a:b", "b")


def test_non_empty_group_is_refused(tmp_path, monkeypatch):
    mp = str(tmp_path)
    d = _driver_on(monkeypatch, [("cgroup2", mp, "rw")], {"": "/"})
    cg = d.resolve("machine.slice:a:b", "b", root=mp)
    path = cg.paths[mp]
    os.makedirs(path)
    with open(os.path.join(path, "cgroup.procs"), "w") as f:
        f.write("1\n")
    with pytest.raises(CgroupError, match=r"container's cgroup is not empty: 1 process\(es\) found in .*"
                                          r"\(unit a-b.scope\)"):
        cg.create()


def test_front_record_leaves_delete_to_python(tmp_path):
    """The C front-end cannot stop a unit: the record hands `delete` over."""
    base = {"id": "c", "pid": 1, "start_time": 1, "bundle": "/b", "rootfs": "/b/r", "created": "x",
            "ociVersion": "1.0.0", "annotations": {}, "hooks": {}, "ns": ["pid"]}
    plain = {"version": 2, "paths": {"/sys/fs/cgroup": "/sys/fs/cgroup/c"}, "made": ["/sys/fs/cgroup/c"]}
    sd = dict(plain, systemd={"unit": "x-c.scope", "slice": "system.slice", "props": [], "started": True})
    assert b"\npy \n" in state.fast_record(dict(base, cgroup=plain))
    assert b"\npy delete\n" in state.fast_record(dict(base, cgroup=sd))


# --- resources -> properties --------------------------------------------------------------

def props(res, v=2, sdv=252):
    return dict(S.resource_props(res, v, sdv))


def test_memory_v2_and_v1():
    assert props({"memory": {"limit": 1 << 20, "reservation": 1 << 19, "swap": 3 << 20}}) == {
        "MemoryMax": ("t", 1 << 20), "MemoryLow": ("t", 1 << 19), "MemorySwapMax": ("t", 2 << 20)}
    assert props({"memory": {"limit": -1}}) == {"MemoryMax": ("t", U64), "MemorySwapMax": ("t", U64)}
    assert props({"memory": {"limit": 1 << 20, "swap": -1}}) == {"MemoryMax": ("t", 1 << 20),
                                                                  "MemorySwapMax": ("t", U64)}
    assert props({"memory": {"limit": 1 << 20, "reservation": 5}}, v=1) == {"MemoryLimit": ("t", 1 << 20)}
    with pytest.raises(CgroupError, match="linux.resources.memory.swap: memory\\+swap limit"):
        props({"memory": {"limit": 1 << 20, "swap": 1 << 19}})


def test_cpu_weight_shares_quota_period():
    assert props({"cpu": {"shares": 1024}}) == {"CPUWeight": ("t", 39)}
    assert props({"cpu": {"shares": 1024}}, v=1) == {"CPUShares": ("t", 1024)}
    # runc rounds CPUQuotaPerSecUSec up to the next 10 ms
    assert props({"cpu": {"quota": 12345, "period": 100000}}) == {
        "CPUQuotaPeriodUSec": ("t", 100000), "CPUQuotaPerSecUSec": ("t", 130000)}
    assert props({"cpu": {"quota": 50000}}) == {"CPUQuotaPerSecUSec": ("t", 500000)}
    assert props({"cpu": {"period": 50000}}) == {"CPUQuotaPeriodUSec": ("t", 50000), "CPUQuotaPerSecUSec": ("t", U64)}
    assert props({"cpu": {"quota": -1}}) == {"CPUQuotaPerSecUSec": ("t", U64)}
    # CPUQuotaPeriodUSec needs systemd 242
    assert props({"cpu": {"quota": 20000, "period": 100000}}, sdv=241) == {"CPUQuotaPerSecUSec": ("t", 200000)}


def test_pids_cpuset_blkio():
    assert props({"pids": {"limit": 10}}) == {"TasksMax": ("t", 10)}
    assert props({"pids": {"limit": -1}}) == {"TasksMax": ("t", U64)}
    assert props({"pids": {"limit": 0}}) == {}
    assert props({"cpu": {"cpus": "0-2,9", "mems": "0"}}) == {"AllowedCPUs": ("ay", b"\x07\x02"),
                                                              "AllowedMemoryNodes": ("ay", b"\x01")}
    assert props({"cpu": {"cpus": "0-2"}}, sdv=243) == {}  # AllowedCPUs needs systemd 244
    assert props({"blockIO": {"weight": 500}}, v=1) == {"BlockIOWeight": ("t", 500)}
    assert props({"blockIO": {"weight": 500}}) == {}  # v2: io.weight is written to the file only (runc 1.1)


def test_unified_v2_only():
    assert props({"unified": {"memory.high": "1048576", "memory.min": "max", "pids.max": " 7 ",
                              "cpu.weight": "100", "cpu.max": "max 50000", "cpuset.cpus": "1",
                              "io.weight": "default 100"}}) == {
        "MemoryHigh": ("t", 1 << 20), "MemoryMin": ("t", U64), "TasksMax": ("t", 7), "CPUWeight": ("t", 100),
        "CPUQuotaPeriodUSec": ("t", 50000), "CPUQuotaPerSecUSec": ("t", U64), "AllowedCPUs": ("ay", b"\x02")}
    with pytest.raises(CgroupError, match=r"linux.resources.unified.memory.max: value conversion error: 'lots'"):
        props({"unified": {"memory.max": "lots"}})
    with pytest.raises(CgroupError, match="linux.resources.unified: .*cannot use unified on cgroup v1"):
        props({"unified": {"memory.max": "1"}}, v=1)


def test_range_to_bits():
    assert S.range_to_bits("0", "f") == b"\x01"
    assert S.range_to_bits("8", "f") == b"\x00\x01"
    assert S.range_to_bits(" 1 , ,3-4", "f") == b"\x1a"
    for bad in ("", ",", "3-1", "x", "-1"):
        with pytest.raises(CgroupError, match="^f: "):
            S.range_to_bits(bad, "f")


def test_device_properties():
    from ocirun.cgroups import devices

    p = dict(S.device_props(devices.effective_rules([])))
    assert p["DevicePolicy"] == ("s", "strict")
    sig, entries = p["DeviceAllow"]
    assert sig == "a(ss)"
    assert ("char-*", "m") in entries and ("block-*", "m") in entries
    assert ("/dev/char/1:3", "rwm") in entries  # /dev/null
    assert ("char-pts", "rwm") in entries  # c 136:* by its /proc/devices group
    assert not any(e[0].startswith("/dev/block") for e in entries)
    # allow-all is systemd's "auto" with no list; a deny list cannot be said:
    # strict with no entries (the cgroup's own device program holds the rules)
    assert S.device_props([{"allow": True, "type": "a", "access": "rwm"}]) == [
        ("DevicePolicy", ("s", "auto")), ("DeviceAllow", ("a(ss)", []))]
    warned = []
    assert S.device_props([{"allow": True, "type": "a", "access": "rwm"},
                           {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
                          warned.append) == [("DevicePolicy", ("s", "strict")), ("DeviceAllow", ("a(ss)", []))]
    assert warned and "blacklist" in warned[0]
    # a deny after an allow takes the access letters away
    assert S.device_props([{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                           {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"}]) == [
        ("DevicePolicy", ("s", "strict")), ("DeviceAllow", ("a(ss)", [("/dev/char/1:3", "rm")]))]


# --- annotations ------------------------------------------------------------------------------

A = "org.systemd.property."


@pytest.mark.parametrize("text, value", [
    ("true", ("b", True)), ("false", ("b", False)),
    ("5", ("i", 5)), ("-5", ("i", -5)), ("1.5", ("d", 1.5)), ("uint64 5", ("t", 5)), ("@t 5", ("t", 5)),
    ("byte 255", ("y", 255)), ("int64 -3", ("x", -3)), ("uint32 7", ("u", 7)), ("double 2", ("d", 2.0)),
    ("'a b'", ("s", "a b")), ('"it\'s"', ("s", "it's")), (r"'a\nb\u00e9'", ("s", "a\nb\u00e9")),
    ("['a.service', 'b.service']", ("as", ["a.service", "b.service"])), ("@as []", ("as", [])),
    ("[uint64 1, 2]", ("at", [1, 2])), (" [ 1 , 2 ] ", ("ai", [1, 2])),
])
def test_annotation_values(text, value):
    assert S.parse_variant(text) == value
    assert S.annotation_props({A + "Foo": text}) == [["Foo", list(value)]]


def test_annotation_sec_becomes_usec():
    assert S.annotation_props({A + "TimeoutStopSec": "uint64 7", A + "RuntimeMaxSec": "1.5",
                               A + "RuntimeMaxUSec": "uint64 9", A + "FooSEC": "1"}) == [
        ["TimeoutStopUSec", ["t", 7000000]], ["RuntimeMaxUSec", ["t", 1500000]], ["RuntimeMaxUSec", ["t", 9]],
        ["FooSEC", ["i", 1]]]
    with pytest.raises(CgroupError, match=f"^annotations.{A}TimeoutStopSec: value \"'x'\" parse error: not a number$"):
        S.annotation_props({A + "TimeoutStopSec": "'x'"})


@pytest.mark.parametrize("name, value, msg", [
    ("Ab", "1", "name incorrect"), ("Foo1", "1", "name incorrect"), ("Fo-o", "1", "name incorrect"),
    ("Foo", "(1, 2)", "not supported"), ("Foo", "{'a': 1}", "not supported"), ("Foo", "<1>", "not supported"),
    ("Foo", "objectpath '/'", "not supported"), ("Foo", "b'x'", "not supported"), ("Foo", "[[1]]", "not supported"),
    ("Foo", "[]", "parse error: an empty array needs a type"), ("Foo", "@y 300", "parse error: 300 is out of range"),
    ("Foo", "'open", "parse error: unterminated string"), ("Foo", "1 2", "parse error: unexpected"),
    ("Foo", "[1, 'a']", "parse error: string where i is expected"), ("Foo", "", "parse error: missing value"),
    ("TimeoutStopSec", "-1", "must not be negative"),
])
def test_annotation_refusals_name_the_annotation(name, value, msg):
    with pytest.raises(CgroupError) as e:
        S.annotation_props({A + name: value, "unrelated": "x"})
    assert str(e.value).startswith(f"annotations.{A}{name}: ")
    assert msg in str(e.value)
    assert "\n" not in str(e.value)


def test_annotation_value_must_be_a_string():
    with pytest.raises(CgroupError, match=f"^annotations.{A}Foo: value must be a string$"):
        S.annotation_props({A + "Foo": 1})


# --- the D-Bus client against real sockets --------------------------------------------------------

class Peer:
    """A unix socket server in a thread: `stuck` never says a word; else it
    does the SASL exchange and answers method calls with `handler(msg)`
    (a list of messages to send back, or None for none: a stuck manager)."""

    def __init__(self, tmp_path, handler=None, stuck=False):
        self.path = str(tmp_path / "bus")
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(4)
        self.handler, self.stuck = handler, stuck
        self.calls = []
        self.conns = []
        self.t = threading.Thread(target=self.serve, daemon=True)
        self.t.start()

    def serve(self):
        from jeepney import Parser

        try:
            c, _ = self.srv.accept()
        except OSError:
            return
        self.conns.append(c)
        if self.stuck:
            return
        buf = b""
        while b"BEGIN\r\n" not in buf:
            try:
                data = c.recv(4096)
            except OSError:
                return
            if not data:
                return
            buf += data
            if buf.endswith(b"\r\n") and b"AUTH" in buf.split(b"\r\n")[-2]:
                c.sendall(b"OK 0123456789abcdef0123456789abcdef\r\n")
        parser = Parser()
        parser.add_data(buf.split(b"BEGIN\r\n", 1)[1])
        while True:
            for msg in iter(parser.get_next_message, None):
                self.calls.append(msg.header.fields.get(3))  # member
                for out in self.handler(msg) or ():
                    c.sendall(out.serialise(serial=len(self.calls) + 1000))
            try:
                data = c.recv(4096)
            except OSError:  # closed by the test
                return
            if not data:
                return
            parser.add_data(data)

    def close(self):
        for c in self.conns:
            c.close()
        self.srv.close()
        self.t.join(5)


@pytest.fixture
def peer(tmp_path):
    made = []

    def make(**kw):
        p = Peer(tmp_path, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def test_stuck_bus_fails_naming_the_unit(peer):
    p = peer(stuck=True)
    with pytest.raises(CgroupError) as e:
        sdbus.Manager("unit x-c.scope", address=p.path, connect_timeout=0.2)
    assert str(e.value) == f"unit x-c.scope: cannot connect to systemd over D-Bus ({p.path}: no answer in time)"


def test_stuck_manager_fails_naming_the_unit(peer):
    p = peer(handler=lambda msg: None)
    with sdbus.Manager("unit x-c.scope", address=p.path, timeout=0.2) as m:
        with pytest.raises(CgroupError, match="^unit x-c.scope: systemd did not answer Subscribe within 0.2 s$"):
            m.start_transient("x-c.scope", [])


def test_no_bus_at_all(tmp_path):
    with pytest.raises(CgroupError, match=r"^unit u.scope: cannot connect to systemd over D-Bus \(.*/nobus: "
                                          r"no such file or directory\)$"):
        sdbus.Manager("unit u.scope", address=str(tmp_path / "nobus"))


def _systemd_like(job_result="done", start_error=None):
    """Answers like systemd's manager: Subscribe, StartTransientUnit (a job,
    then its JobRemoved signal), StopUnit, ResetFailedUnit."""
    from jeepney import DBusAddress, new_error, new_method_return, new_signal

    mgr = DBusAddress(sdbus.MANAGER_PATH, interface=sdbus.MANAGER)

    def handle(msg):
        member = msg.header.fields.get(3)
        if member == "StartTransientUnit" and start_error:
            return [new_error(msg, start_error, "s", ("Unit x-c.scope already exists.",))]
        if member in ("StartTransientUnit", "StopUnit"):
            job = "/org/freedesktop/systemd1/job/7"
            return [new_method_return(msg, "o", (job,)),
                    new_signal(mgr, "JobRemoved", "uoss", (7, job, msg.body[0], job_result))]
        return [new_method_return(msg)]

    return handle


def test_start_waits_for_the_job(peer):
    p = peer(handler=_systemd_like())
    with sdbus.Manager("unit x-c.scope", address=p.path, timeout=5) as m:
        m.start_transient("x-c.scope", [("PIDs", ("au", [1]))])
        assert m.stop("x-c.scope") is True
    assert p.calls == ["Subscribe", "StartTransientUnit", "StopUnit", "ResetFailedUnit"]


def test_failed_job_is_reset_and_named(peer):
    p = peer(handler=_systemd_like(job_result="failed"))
    with sdbus.Manager("unit x-c.scope", address=p.path, timeout=5) as m:
        with pytest.raises(CgroupError, match="^unit x-c.scope: systemd could not start x-c.scope: job failed$"):
            m.start_transient("x-c.scope", [])
    p.close()
    assert p.calls == ["Subscribe", "StartTransientUnit", "ResetFailedUnit"]


def test_unit_exists_is_named(peer):
    """A name held by a live unit: reset-failed (which never stops a unit)
    and one more try, then the error."""
    p = peer(handler=_systemd_like(start_error="org.freedesktop.systemd1.UnitExists"))
    with sdbus.Manager("unit x-c.scope", address=p.path, timeout=5) as m:
        with pytest.raises(CgroupError, match=r"^unit x-c.scope exists already \(another container's, or a "
                                              r"leftover: `systemctl stop x-c.scope`\)$"):
            m.start_transient("x-c.scope", [])
    assert p.calls == ["Subscribe", "StartTransientUnit", "ResetFailedUnit", "StartTransientUnit"]


def test_name_of_a_failed_unit_is_freed(peer):
    """A failed leftover holds the name until reset: reset, and it starts."""
    ok = _systemd_like()
    bad = _systemd_like(start_error="org.freedesktop.systemd1.UnitExists")
    seen = []

    def handle(msg):
        if msg.header.fields.get(3) == "StartTransientUnit":
            seen.append(1)
            return (bad if len(seen) == 1 else ok)(msg)
        return ok(msg)

    p = peer(handler=handle)
    with sdbus.Manager("unit x-c.scope", address=p.path, timeout=5) as m:
        m.start_transient("x-c.scope", [])
    assert p.calls == ["Subscribe", "StartTransientUnit", "ResetFailedUnit", "StartTransientUnit"]


def test_job_that_never_ends_is_time_bounded(peer):
    from jeepney import new_method_return

    def handle(msg):  # a job, but no JobRemoved ever
        if msg.header.fields.get(3) == "StartTransientUnit":
            return [new_method_return(msg, "o", ("/org/freedesktop/systemd1/job/9",))]
        return [new_method_return(msg)]

    p = peer(handler=handle)
    with sdbus.Manager("unit x-c.scope", address=p.path, timeout=5, job_timeout=0.2) as m:
        with pytest.raises(CgroupError, match="^unit x-c.scope: timed out after 0.2 s waiting for systemd to "
                                              "start the unit$"):
            m.start_transient("x-c.scope", [])
