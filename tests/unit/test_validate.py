"""`ocirun validate`'s library without root: the errors come from create's
own code, every one of them, with pointers into the config as given; unknown
keys with the nearest known one; the schema is runtime-spec 1.3's; none of
it loads on create's path."""

import copy
import json
import os
import subprocess
import sys

import pytest

from ocirun.errors import ConfigError
from ocirun.spec.template import default_spec
from ocirun.verbs import validate as V
from ocirun.verbs.create import CreateOptions, prepare

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIRROR = "/work/.mirror/opencontainers+runtime-spec/repo"


@pytest.fixture
def bundle(tmp_path):
    os.makedirs(tmp_path / "rootfs" / "bin")
    (tmp_path / "rootfs" / "bin" / "sh").write_text("")  # the template's args[0]
    os.chmod(tmp_path / "rootfs" / "bin" / "sh", 0o755)
    return str(tmp_path)


def cfg():
    c = default_spec()
    c["process"]["terminal"] = False
    return c


def write(bundle, c):
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(c, f)


def texts(report):
    return [f.text() for f in report.findings]


def test_a_clean_config_has_no_finding_and_a_plan(bundle):
    write(bundle, cfg())
    r = V.validate(bundle, rootless=True)
    assert texts(r) == [] and r.status() == 0 and r.plan is not None


def test_every_error_is_reported_with_a_pointer_into_the_config_as_given(bundle):
    c = cfg()
    c["mounts"][0]["destination"] = "/proc/kcore"            # error, refused by plan.build
    c["mounts"].insert(2, {"destination": "/a", "type": "bind"})  # error: no source; shifts the mounts after it
    c["mounts"][5]["options"] = ["nosuid", 7]                # error, after a removed entry: still index 5
    c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.nope.x": "1"}  # dotted keys
    c["process"]["user"]["uid"] = -1
    c["process"]["cwd"] = "relative"
    write(bundle, c)
    r = V.validate(bundle, rootless=True)
    assert texts(r) == [
        "error /mounts/0/destination: /proc/kcore cannot be mounted under /proc (hint: mount it elsewhere)",
        "error /mounts/2/source: a bind mount needs a source",
        "error /mounts/5/options/1: must be a string",
        "error /linux/sysctl/kernel.nope.x: sysctl is not in a separate kernel namespace",
        "error /process/user/uid: must not be negative, got -1",
        "error /process/cwd: must be an absolute path (hint: start it with /)",
    ]
    assert r.status() == 1 and r.plan is None


def test_the_first_error_is_the_one_create_raises_and_each_one_alone_is_create_s(bundle):
    """The same code decides: for each mistake alone, create's prepare()
    raises exactly what validate reports for all of them together."""
    mistakes = [
        ("/ociVersion", lambda c: c.__setitem__("ociVersion", "1.0")),
        ("/hostname", lambda c: c["linux"].__setitem__("namespaces", [{"type": "mount"}, {"type": "pid"}])),
        ("/process/capabilities/bogus", lambda c: c["process"]["capabilities"].__setitem__("bogus", [])),
        ("/linux/devices/0/major", lambda c: c["linux"].__setitem__("devices", [{"path": "/dev/x", "type": "c"}])),
        ("/process/rlimits/0/soft", lambda c: c["process"]["rlimits"][0].pop("soft")),
        ("/hooks/prestart/0/path", lambda c: c.__setitem__("hooks", {"prestart": [{"path": "rel"}]})),
        ("/linux/seccomp/defaultAction", lambda c: c["linux"].__setitem__("seccomp", {"defaultAction": "SCMP_ACT_NO"})),
    ]
    together = cfg()
    alone = []
    for ptr, f in mistakes:
        c = cfg()
        f(c)
        f(together)
        with pytest.raises(ConfigError) as e:
            prepare(c, bundle, "x", CreateOptions(bundle, rootless=True))
        alone.append((ptr, str(e.value).partition(": ")[2]))
    write(bundle, together)
    r = V.validate(bundle, rootless=True)
    got = [(f.pointer, f.reason) for f in r.errors]
    for want in alone:
        assert want in got, (want, got)
    assert got[0] == alone[0]


def test_collect_sets_aside_required_values_without_reporting_the_consequence():
    def check(c):
        if c.get("ociVersion") != "1.0.0":
            raise ConfigError("ociVersion: bad" if c.get("ociVersion") else "ociVersion: is required")
        for i, m in enumerate(c.get("mounts", [])):
            if "destination" not in m:
                raise ConfigError(f"mounts[{i}].destination: is required")
            if m["destination"] == "bad":
                raise ConfigError(f"mounts[{i}].destination: bad")
        return "ok"

    r = V.Report()
    c = {"ociVersion": "x", "mounts": [{"destination": "bad"}, {}, {"destination": "/ok"}, {"destination": "bad"}]}
    orig = copy.deepcopy(c)
    assert V.collect_errors(c, check, r) == "ok"
    assert texts(r) == ["error /ociVersion: bad", "error /mounts/0/destination: bad",
                        "error /mounts/1/destination: is required", "error /mounts/3/destination: bad"]
    assert c == orig  # the config itself is never changed


def test_an_error_that_names_no_field_stops_the_collection():
    r = V.Report()

    def check(c):
        raise ConfigError("systemd cgroup flag passed, but systemd support is not available")

    assert V.collect_errors({}, check, r) is None
    assert texts(r) == ["error /: systemd cgroup flag passed, but systemd support is not available"]


def test_unknown_keys_with_the_nearest_known_one():
    schema = V._load_schema()
    c = cfg()
    c["process"]["capabilites"] = {}
    c["linux"]["resources"] = {"memroy": {}, "memory": {"limt": 1}}
    c["mounts"][1]["optoins"] = []
    c["annotations"] = {"anything.goes": "x"}  # a map: any key
    c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    c["linux"]["namespaces"][0]["pth"] = "/x"  # items of an anyOf
    c["zzz"] = 1
    got = V.unknown_keys(c, schema)
    assert sorted(got) == sorted([
        ("/process/capabilites", "capabilites", "capabilities"),
        ("/linux/resources/memroy", "memroy", "memory"),
        ("/linux/resources/memory/limt", "limt", "limit"),
        ("/mounts/1/optoins", "optoins", "options"),
        ("/linux/namespaces/0/pth", "pth", "path"),
        ("/zzz", "zzz", None),
    ])
    assert V.unknown_keys(cfg(), schema) == []


def test_schema_only_findings_are_warnings_and_create_s_errors_are_not_repeated(bundle):
    c = cfg()
    c["process"]["consoleSize"] = {"height": 10}  # the schema wants width too; create does not
    c["process"]["oomScoreAdj"] = "high"  # both refuse: one error
    write(bundle, c)
    r = V.validate(bundle, rootless=True)
    assert texts(r) == [
        "error /process/oomScoreAdj: must be an integer",
        "warning /process/consoleSize: runtime-spec 1.3 schema: 'width' is a required property "
        "(ocirun accepts it; other runtimes may not)",
    ]
    assert r.status() == 1
    del c["process"]["oomScoreAdj"]
    write(bundle, c)
    r = V.validate(bundle, rootless=True)
    assert r.status() == 2 and r.status(strict=True) == 1 and r.plan is not None


def test_host_warnings(bundle):
    c = cfg()
    c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1 << 40}]
    c["mounts"].append({"destination": "/x", "type": "nosuchfs", "source": "x"})
    write(bundle, c)
    found = texts(V.validate(bundle, rootless=True))
    nr_open = open("/proc/sys/fs/nr_open").read().strip()
    assert (f"warning /process/rlimits/0/hard: RLIMIT_NOFILE hard limit {1 << 40} is above this kernel's fs.nr_open "
            f"({nr_open}): create will fail (hint: at most {nr_open})") in found
    assert ("warning /mounts/7/type: filesystem type 'nosuchfs' is not in this kernel's /proc/filesystems "
            "(hint: load its module, or mount another type)") in found


def test_a_capability_the_runtime_lacks_is_a_warning(bundle):
    from ocirun import host
    from ocirun import tables as T

    missing = [n for n in range(host.cap_last_cap(len(T.CAPABILITIES)) + 1) if not host.own_bounding_set() >> n & 1]
    if not missing:
        pytest.skip("the runtime's bounding set is full here")
    name = T.CAPABILITIES[missing[0]]
    c = cfg()
    c["process"]["capabilities"]["bounding"].append(name)
    write(bundle, c)
    assert texts(V.validate(bundle, rootless=True)) == [
        f"warning /process/capabilities: {name} cannot be granted (not in the runtime's own bounding set), left out"]


def test_plan_description_reads_the_plan_records(bundle):
    c = cfg()
    c["process"]["user"] = {"uid": 7, "gid": 8, "additionalGids": [9, 10], "umask": 0o27}
    c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]
    c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
                             "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}
    write(bundle, c)
    d = V.describe(V.validate(bundle, rootless=True))
    p = d["process"]
    assert (p["uid"], p["gid"], p["additional_gids"], p["umask"]) == (7, 8, [9, 10], "0027")
    assert p["rlimits"] == [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]
    assert sorted(p["capabilities"]["bounding"]) == sorted(c["process"]["capabilities"]["bounding"])
    assert p["capabilities"]["inheritable"] == []
    assert p["seccomp"]["default_action"] == "SCMP_ACT_ERRNO(1)"
    assert p["seccomp"]["syscalls"] == {"SCMP_ACT_ALLOW": ["read", "write"]} and p["seccomp"]["instructions"] > 4
    assert [m["destination"] for m in d["mounts"]][:2] == ["/proc", "/dev"]
    assert {n["type"] for n in d["namespaces"]} == {n["type"] for n in c["linux"]["namespaces"]}
    text = V.plan_text(d)
    assert "user: uid 7 gid 8 groups [9 10] umask 0027" in text
    assert "seccomp SCMP_ACT_ALLOW: 2 syscalls: read write" in text


def test_schema_is_runtime_spec_1_3_regenerated_unchanged(tmp_path):
    """The committed schema is what scripts/gen-config-schema.py makes of the
    runtime-spec's v1.3.0 schema files (needs a copy of the runtime-spec
    repository; CI without one checks the schema against the metaschema)."""
    jsonschema = pytest.importorskip("jsonschema")
    with open(V.SCHEMA) as f:
        committed = json.load(f)
    jsonschema.Draft4Validator.check_schema(committed)
    assert "v1.3.0" in committed["$comment"] and "Apache License 2.0" in committed["$comment"]
    if not os.path.isdir(MIRROR):
        pytest.skip("no runtime-spec repository at hand to regenerate from")
    out = subprocess.run([sys.executable, "-c", (
        "import importlib.util, json, sys, subprocess;"
        f"s = importlib.util.spec_from_file_location('g', {os.path.join(REPO, 'scripts', 'gen-config-schema.py')!r});"
        "g = importlib.util.module_from_spec(s); s.loader.exec_module(g);"
        f"g.OUT = {str(tmp_path / 'out.json')!r}; g.main(['--git', {MIRROR!r}, 'v1.3.0'])")],
        capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    with open(tmp_path / "out.json") as f:
        assert json.load(f) == committed


def test_create_never_loads_validate_or_jsonschema(tmp_path):
    import ocirun

    c = cfg()
    c["root"]["path"] = "missing"  # plan.build runs and refuses
    write(str(tmp_path), c)
    code = (f"import sys, ocirun; ocirun.__path__[:] = {list(ocirun.__path__)!r}; "
            "from ocirun.cli import main; main(sys.argv[1:]); "
            "print(' '.join(m for m in sys.modules if m.startswith(('ocirun', 'jsonschema'))))")
    r = subprocess.run([sys.executable, "-c", code, "--root", str(tmp_path / "state"), "create", "-b",
                        str(tmp_path), "x"], capture_output=True, text=True, cwd=REPO, timeout=30)
    mods = r.stdout.split()
    assert "ocirun.plan" in mods and "root.path" in r.stderr, (r.stdout, r.stderr)
    assert "ocirun.verbs.validate" not in mods and not [m for m in mods if m.startswith("jsonschema")]


def test_unknown_capabilities_are_warnings_with_pointers(bundle):
    c = cfg()
    c["process"]["capabilities"]["effective"].append("CAP_NET_ADMN")
    c["process"]["terminal"] = True  # create's terminal rules are about its flags, not the config: no finding
    c["hooks"] = {"prestrat": []}  # create refuses it: one error, not an unknown key too
    write(bundle, c)
    n = len(c["process"]["capabilities"]["effective"]) - 1
    assert texts(V.validate(bundle, rootless=True)) == [
        "error /hooks/prestrat: unknown hook phase (hint: did you mean prestart?)",
        f"warning /process/capabilities/effective/{n}: unknown or unavailable capability 'CAP_NET_ADMN', left out "
        "(hint: did you mean CAP_NET_ADMIN?)",
    ]


def test_kernel_mount_checks_name_the_mount_as_given_after_errors(bundle):
    if os.geteuid() != 0:
        pytest.skip("fsopen needs root")
    c = cfg()
    c["mounts"].insert(0, {"destination": "/x", "type": "bind"})  # an error: set aside, the indices after shift
    c["mounts"].append({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["size=zz"]})
    write(bundle, c)
    assert texts(V.validate(bundle, rootless=True))[1:] == [
        f"warning /mounts/{len(c['mounts']) - 1}/options: the kernel refuses option size=zz: tmpfs: Bad value for "
        "'size': create will fail"]


def test_an_entry_after_a_removed_one_keeps_its_own_errors():
    def check(c):
        for i, m in enumerate(c.get("mounts", [])):
            if not isinstance(m, dict):
                raise ConfigError(f"mounts[{i}]: must be an object")
            if m.get("source") == "bad":
                raise ConfigError(f"mounts[{i}].source: bad")
        return "ok"

    r = V.Report()
    assert V.collect_errors({"mounts": [5, 6, {"source": "bad"}]}, check, r) == "ok"
    assert texts(r) == ["error /mounts/0: must be an object", "error /mounts/1: must be an object",
                        "error /mounts/2/source: bad"]


def test_unknown_names_get_the_nearest_one_create_knows(bundle):
    c = cfg()
    c["linux"]["namespaces"][0]["type"] = "netwrok"
    c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALOW"}
    c["process"]["capabilities"]["bounds"] = []
    c["linux"]["rootfsPropagation"] = "zzz"
    write(bundle, c)
    assert texts(V.validate(bundle, rootless=True)) == [
        "error /linux/namespaces/0/type: unknown namespace type 'netwrok' (hint: did you mean network?)",
        "error /linux/rootfsPropagation: unknown propagation 'zzz' (hint: one of private, rprivate, shared, rshared, "
        "slave, rslave, unbindable, runbindable)",
        "error /process/capabilities/bounds: unknown capability set (hint: did you mean bounding?)",
        "error /linux/seccomp/defaultAction: unknown seccomp action 'SCMP_ACT_ALOW' (hint: did you mean "
        "SCMP_ACT_ALLOW?)",
    ]


def test_args0_is_looked_up_inside_the_rootfs_as_the_init_will(bundle):
    root = os.path.join(bundle, "rootfs")
    os.makedirs(os.path.join(root, "usr", "lib"))
    with open(os.path.join(root, "usr", "lib", "real"), "w") as f:
        f.write("")
    os.chmod(os.path.join(root, "usr", "lib", "real"), 0o755)
    os.symlink("../usr/lib/real", os.path.join(root, "bin", "tool"))  # relative, in the rootfs
    os.symlink("/usr/bin/env", os.path.join(root, "bin", "escape"))  # the host has it; the rootfs has not
    with open(os.path.join(root, "bin", "noexec"), "w") as f:
        f.write("")
    c = cfg()
    c["mounts"].append({"destination": "/opt", "type": "tmpfs", "source": "tmpfs"})
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for args0, found in (("tool", True), ("/bin/tool", True), ("/bin/../usr/lib/real", True),
                         ("/opt/whatever", True),  # a mount decides: not validate's to say
                         ("escape", False), ("noexec", False), ("/usr/lib", False), ("nosuch", False)):
        c["process"]["args"] = [args0]
        write(bundle, c)
        got = texts(V.validate(bundle, rootless=True))
        where = "in the rootfs" if "/" in args0 else f"on the container's PATH ({path})"
        assert got == ([] if found else
                       [f"warning /process/args/0: no executable file {args0!r} {where}: create will fail"]), args0


def test_a_cwd_that_is_a_file_is_a_warning_a_missing_one_is_not(bundle):
    c = cfg()
    c["process"]["cwd"] = "/bin/sh"
    write(bundle, c)
    assert texts(V.validate(bundle, rootless=True)) == [
        "warning /process/cwd: /bin/sh is not a directory in the rootfs: create will fail"]
    c["process"]["cwd"] = "/made/by/the/init"
    write(bundle, c)
    assert texts(V.validate(bundle, rootless=True)) == []


def test_hooks_that_run_before_the_lookup_may_provide_args0(bundle):
    c = cfg()
    c["process"]["args"] = ["nvidia-smi"]
    c["hooks"] = {"createContainer": [{"path": "/usr/bin/true"}]}
    write(bundle, c)
    assert texts(V.validate(bundle, rootless=True)) == []
    del c["hooks"]
    write(bundle, c)
    assert len(texts(V.validate(bundle, rootless=True))) == 1


@pytest.mark.parametrize("rootless", [True, False])
def test_fuzzed_configs_first_error_is_create_s(tmp_path, rootless):
    """The fuzzer's mutated configs (tests/integration/test_fuzz.py): validate
    never fails itself, every finding is one line under 1 KB, and its first
    error is exactly what create's own checks raise first (none when they
    pass)."""
    pytest.importorskip("hypothesis")
    from hypothesis import HealthCheck, given, settings

    if not rootless and os.geteuid() != 0:
        pytest.skip("the cgroup checks as create makes them need root")

    from ocirun import cgroups
    from ocirun.errors import OcirunError
    from ocirun.spec.load import load_config
    from tests.integration.test_fuzz import base_cfg, mutated

    os.makedirs(tmp_path / "rootfs" / "bin")
    bundle = str(tmp_path)

    def create_s_first_error():
        try:
            c = load_config(bundle)
        except OcirunError as e:
            return "", str(e)
        try:
            cg, _plan = prepare(c, bundle, V.ID, CreateOptions(bundle, rootless=rootless))
            linux = c.get("linux") if isinstance(c.get("linux"), dict) else {}
            devs = linux.get("devices") if isinstance(linux.get("devices"), list) else []
            cgroups.check(cg, linux.get("resources"), [d.get("path") for d in devs if isinstance(d, dict)])
        except OcirunError as e:
            field, _, reason = str(e).partition(": ")
            steps = V._field_steps(c, field)
            return (V.pointer(k for _c, k in steps), reason) if steps else ("", str(e))
        return None

    @settings(max_examples=int(os.environ.get("OCIRUN_FUZZ_EXAMPLES", "300")), deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(mutated(base_cfg()))
    def case(data_notes):
        data, notes = data_notes
        with open(os.path.join(bundle, "config.json"), "wb") as f:
            f.write(data)
        r = V.validate(bundle, rootless=rootless)
        assert r.status() in (0, 1, 2)
        for f in r.findings:
            line = f.text()
            assert "\n" not in line and len(line.encode()) < 1024, line[:200]
        want = create_s_first_error()
        got = [(f.pointer, f.reason) for f in r.errors][:1]
        assert got == ([(V.Finding("error", *want).pointer, V.Finding("error", *want).reason)] if want else []), notes

    case()


def test_rootless_refuses_a_resources_field_of_the_wrong_type(bundle):
    """Found by the test above: a rootless create met `linux.resources: true`
    with an internal error."""
    c = cfg()
    c["linux"]["resources"] = True
    with pytest.raises(ConfigError) as e:
        prepare(c, bundle, "x", CreateOptions(bundle, rootless=True))
    assert str(e.value) == "linux.resources: must be an object"


def test_plan_description_of_joined_namespaces_id_maps_and_propagation(bundle, tmp_path):
    c = cfg()
    c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"] + [
        {"type": "network", "path": "/proc/self/ns/net"}, {"type": "user"}]
    c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 10}]
    c["mounts"].append({"destination": "/data", "type": "bind", "source": str(tmp_path),
                        "options": ["rbind", "ro", "rprivate"]})
    write(bundle, c)
    d = V.describe(V.validate(bundle, rootless=True))
    assert {"type": "network", "new": False, "path": "/proc/self/ns/net"} in d["namespaces"]
    assert [n for n in d["namespaces"] if n["type"] == "user"] == [
        {"type": "user", "new": True, "uid_map": [[0, 100000, 65536]], "gid_map": [[0, 200000, 10]]}]
    assert d["mounts"][-1] == {"field": f"mounts[{len(c['mounts']) - 1}]", "destination": "/data", "kind": "rbind",
                               "source": str(tmp_path), "flags": ["ro"], "propagation": "rprivate"}
    text = V.plan_text(d)
    assert "user namespace gid map: 0-9 in the container = 200000-200009 on the host" in text
    assert f"mount mounts[{len(c['mounts']) - 1}]: rbind {tmp_path} on /data [ro] propagation rprivate" in text
    assert all(dv["how"] == "bind from the host" for dv in d["devices"])  # a user namespace cannot mknod


def test_without_jsonschema_the_rest_still_runs(bundle, monkeypatch):
    def missing():
        raise V.OcirunError("the jsonschema Python package is missing")

    monkeypatch.setattr(V, "_jsonschema", missing)
    c = cfg()
    c["process"]["capabilites"] = []
    c["ociVersion"] = "x"
    write(bundle, c)
    assert texts(V.validate(bundle, rootless=True)) == [
        "error /ociVersion: 'x' is not a SemVer 2.0.0 version (hint: e.g. \"1.3.0\")",
        "warning /: runtime-spec 1.3 schema: not checked, the jsonschema Python package is missing "
        "(hint: pip install jsonschema, or apt install python3-jsonschema)",
        "unknown /process/capabilites: unknown key, ignored (hint: did you mean capabilities?)",
    ]


def test_the_collection_is_bounded(monkeypatch):
    monkeypatch.setattr(V, "MAX_ROUNDS", 3)

    def check(c):
        for i, e in enumerate(c["process"]["env"]):
            raise ConfigError(f"process.env[{i}]: invalid environment variable {e!r}")
        return "ok"

    r = V.Report()
    assert V.collect_errors({"process": {"env": ["a", "b", "c", "d"]}}, check, r) is None
    assert texts(r) == ["error /process/env/0: invalid environment variable 'a'",
                        "error /process/env/1: invalid environment variable 'b'",
                        "error /process/env/2: invalid environment variable 'c'",
                        "warning /: stopped after 3 errors: there may be more"]
