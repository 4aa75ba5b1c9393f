"""Property-based fuzzing of config.json with real containers and the real
binary (hypothesis): a valid config is mutated (fields dropped, wrong types,
null, huge and negative numbers, unknown enum values, long strings, NUL and
lone surrogates, deep nesting, invalid UTF-8, bad mounts and namespace
paths) and `ocirun run` must, for every case:

- exit 0 or 1, or with the container's own status when the container ran
  (a memory limit of 1 byte gets it killed; `run` passes that on, as runc);
- print no traceback, and no stderr line over 1 KB;
- finish (a hang fails the case after 60 s);
- leave nothing: no state, no mount, no cgroup, no process.

The default run is short for CI (OCIRUN_FUZZ_EXAMPLES, default 300 cases, ~25 s);
`OCIRUN_FUZZ_EXAMPLES=5000` runs thousands; OCIRUN_FUZZ_LOG=FILE appends each
case's exit status and error line to FILE (to review what was refused), and
OCIRUN_FUZZ_RUNC=/usr/bin/runc adds what runc made of the same config.  Hypothesis picks a new seed
each run and prints the failing config (shrunk) and `@seed` to replay it
(pytest --hypothesis-seed=N).

Values are drawn from pools that cannot harm the host (no host namespace
paths, no host interfaces for netDevices, no rootfs outside the bundle, no
hook that lingers) and the seccomp field is not generated: a deny-all
profile is issue 11 item 1, tested by its own test."""

import copy
import json
import os
import subprocess
import tempfile
import time

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.conftest import leftovers  # noqa: E402

LINE_MAX = 1024
settings.register_profile(
    "ocirun-fuzz", max_examples=int(os.environ.get("OCIRUN_FUZZ_EXAMPLES", "300")), deadline=None,
    database=None, print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])

# --- value pools -------------------------------------------------------------

NUMBERS = [0, 1, -1, 7, 255, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**53 + 1, 2**63 - 1, 2**63,
           2**64 - 1, 2**64, -2**31, -2**63, -2**63 - 1, 10**30, -10**30]
STRINGS = ["", "x", "\0", "a\0b", "\ud800", "x\udfffy", "\U0001F600", "BOGUS", "invalid", "1.0", "=x", "a=b",
           "/nonexistent", "relative/path", "../../x", "/proc/self/ns/../x", "/dev/null", "/proc/x", "/sys/x",
           "x" * 5000, "/d" * 3000, "a b " * 1500, "\n" * 500, "é" * 2000, "CAP_BOGUS", "RLIMIT_BOGUS",
           "SCHED_BOGUS", "MPOL_BOGUS", "0-3,x", "2MB", "rw,nosuid"]
ENUMS = {
    "namespaces.type": ["pid", "network", "ipc", "uts", "mount", "cgroup", "user", "time", "net", "bogus"],
    "mount.type": ["tmpfs", "proc", "sysfs", "bind", "cgroup", "cgroup2", "devpts", "mqueue", "nosuchfs", "",
                   "overlay", "none", "ramfs"],
    "mount.option": ["ro", "rw", "nosuid", "nodev", "noexec", "bind", "rbind", "remount", "private", "rshared",
                     "rslave", "mode=755", "size=1k", "size=-1", "uid=x", "idmap", "ridmap", "tmpcopyup",
                     "rro", "rnoatime", "bogusopt", "", "x" * 300, "mode=99999"],
    "mount.destination": ["/x", "/proc/x", "/proc/cpuinfo", "/dev/x", "/sys/x", "", "relative", "../../x", "/",
                          "/dev", "/proc", "/x" * 600, "/etc/hostname"],
    "mount.source": ["tmpfs", "none", "/nonexistent", "rootfs/etc", "", "x" * 5000],
    "ns.path": ["/nonexistent", "/dev/null", "relative", "/proc/self/ns/../../x", "", "/x" * 3000, "/proc"],
    "rlimit.type": ["RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_CORE", "RLIMIT_STACK", "RLIMIT_BOGUS", "nofile"],
    "cap": ["CAP_KILL", "CAP_SYS_ADMIN", "CAP_SYS_RESOURCE", "CAP_BOGUS", "kill", "", "CAP_" + "X" * 3000],
    "sysctl": ["net.ipv4.ip_forward", "kernel.shmmax", "kernel.hostname", "vm.swappiness", "net..x", "",
               "fs.mqueue.msg_max", "net.ipv4.nonexistent", "a/b", "k" * 3000],
    "hook.path": ["/bin/true", "/bin/false", "/nonexistent", "relative", "/bin/echo"],
    "rootfs": ["rootfs", "nonexistent", "", "x" * 5000, "rootfs/etc/hostname"],
}


def leaf():
    """A replacement value of any JSON type."""
    return st.one_of(
        st.none(), st.booleans(), st.sampled_from(NUMBERS), st.integers(), st.floats(allow_nan=False,
                                                                                     allow_infinity=False),
        st.sampled_from(STRINGS), st.text(max_size=12),
        st.lists(st.one_of(st.none(), st.sampled_from(NUMBERS), st.sampled_from(STRINGS)), max_size=3),
        st.dictionaries(st.sampled_from(STRINGS[:12]), st.one_of(st.none(), st.sampled_from(STRINGS)), max_size=2),
    )


def _mount(draw):
    m = {"destination": draw(st.sampled_from(ENUMS["mount.destination"])),
         "type": draw(st.sampled_from(ENUMS["mount.type"])),
         "source": draw(st.sampled_from(ENUMS["mount.source"]))}
    if draw(st.booleans()):
        m["options"] = draw(st.lists(st.sampled_from(ENUMS["mount.option"]), max_size=4))
    for k in list(m):
        if draw(st.integers(0, 9)) == 0:
            m[k] = draw(leaf())
    return m


# known fields a mutation may add when the base config lacks them
EXTRA_FIELDS = {
    ("domainname",): lambda d: d(st.sampled_from(STRINGS)),
    ("process", "consoleSize"): lambda d: d(st.one_of(leaf(), st.fixed_dictionaries(
        {"height": st.sampled_from(NUMBERS), "width": st.sampled_from(NUMBERS)}))),
    ("process", "oomScoreAdj"): lambda d: d(st.sampled_from(NUMBERS)),
    ("process", "user", "additionalGids"): lambda d: d(st.lists(st.sampled_from(NUMBERS + [None, "1"]), max_size=3)),
    ("process", "user", "umask"): lambda d: d(st.sampled_from(NUMBERS)),
    ("process", "scheduler"): lambda d: {"policy": d(st.sampled_from(["SCHED_OTHER", "SCHED_FIFO", "SCHED_BOGUS",
                                                                      None, 3])),
                                         "priority": d(st.sampled_from(NUMBERS)), "nice": d(st.sampled_from(NUMBERS))},
    ("process", "ioPriority"): lambda d: {"class": d(st.sampled_from(["IOPRIO_CLASS_BE", "IOPRIO_CLASS_BOGUS", 1])),
                                          "priority": d(st.sampled_from(NUMBERS))},
    ("process", "apparmorProfile"): lambda d: d(st.sampled_from(STRINGS)),
    ("process", "selinuxLabel"): lambda d: d(st.sampled_from(STRINGS)),
    ("linux", "cgroupsPath"): lambda d: d(st.sampled_from(
        [None, 5, ["a"], {}, "", "a\0b", "../x", "x" * 5000, "\ud800", "slice:prefix:name"])),
    ("linux", "sysctl"): lambda d: d(st.dictionaries(st.sampled_from(ENUMS["sysctl"]),
                                                     st.one_of(st.sampled_from(STRINGS[:12]), leaf()), max_size=2)),
    ("linux", "devices"): lambda d: [{"path": d(st.sampled_from(["/dev/fz", "", "/dev/" + "x" * 3000, "relative"])),
                                      "type": d(st.sampled_from(["c", "b", "p", "u", "x", None])),
                                      "major": d(st.sampled_from(NUMBERS)), "minor": d(st.sampled_from(NUMBERS)),
                                      "fileMode": d(st.sampled_from(NUMBERS))}],
    ("linux", "uidMappings"): lambda d: [{"containerID": d(st.sampled_from(NUMBERS)),
                                          "hostID": d(st.sampled_from(NUMBERS)), "size": d(st.sampled_from(NUMBERS))}],
    ("linux", "rootfsPropagation"): lambda d: d(st.sampled_from(["private", "rprivate", "slave", "BOGUS", 1, None])),
    ("linux", "timeOffsets"): lambda d: {d(st.sampled_from(["monotonic", "boottime", "bogus"])):
                                         {"secs": d(st.sampled_from(NUMBERS)), "nanosecs": d(st.sampled_from(NUMBERS))}},
    ("linux", "personality"): lambda d: {"domain": d(st.sampled_from(["LINUX", "LINUX32", "BOGUS", None])),
                                         "flags": d(st.sampled_from([None, [], ["x"]]))},
    ("linux", "memoryPolicy"): lambda d: {"mode": d(st.sampled_from(["MPOL_BIND", "MPOL_DEFAULT", "MPOL_BOGUS"])),
                                          "nodes": d(st.sampled_from(STRINGS[:3] + ["0", "0-3,x", "99999"]))},
    ("linux", "netDevices"): lambda d: d(st.sampled_from([{"ocirunfz0": {}}, {"ocirunfz0": {"name": "x" * 300}},
                                                           [], "eth", {"": {}}])),
    ("linux", "seccomp"): lambda d: d(st.sampled_from([{"defaultAction": "SCMP_ACT_BOGUS"}, {"defaultAction": 5},
                                                        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": "x"},
                                                        {"defaultAction": "SCMP_ACT_ALLOW",
                                                         "syscalls": [{"names": [None], "action": "SCMP_ACT_ERRNO"}]},
                                                        {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["BOGUS"]}])),
    ("linux", "resources", "memory"): lambda d: {"limit": d(st.sampled_from(NUMBERS)),
                                                 "swap": d(st.sampled_from(NUMBERS + [None]))},
    ("linux", "resources", "cpu"): lambda d: {d(st.sampled_from(["shares", "quota", "period", "cpus", "mems"])):
                                              d(st.one_of(st.sampled_from(NUMBERS), st.sampled_from(STRINGS)))},
    ("linux", "resources", "pids"): lambda d: {"limit": d(st.sampled_from(NUMBERS + [None, "1"]))},
    ("linux", "resources", "unified"): lambda d: {"memory.max": d(st.sampled_from(["1", "max", "x\n"]))},
    ("hooks",): lambda d: {d(st.sampled_from(["prestart", "createRuntime", "createContainer", "startContainer",
                                              "poststart", "poststop", "bogus"])):
                           [{"path": d(st.sampled_from(ENUMS["hook.path"])),
                             "args": d(st.sampled_from([None, ["x"], [None], ["a"] * 300, "x"])),
                             "timeout": d(st.sampled_from([None, 0, -1, 1, 2**40, "1"]))}]},
}


def paths(obj, prefix=()):
    """Every path into the config (objects and arrays)."""
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += paths(v, prefix + (i,))
    return out


def _parent(cfg, path):
    o = cfg
    for k in path[:-1]:
        o = o[k]
    return o


def _value_for(draw, path):
    """A replacement for path: a pool of its own where a free value could
    touch the host, any value elsewhere."""
    if path == ("root", "path"):
        return draw(st.one_of(st.sampled_from(ENUMS["rootfs"]), st.sampled_from([None, 5, [], {}])))
    if path[-1] == "path" and "namespaces" in path:
        return draw(st.one_of(st.sampled_from(ENUMS["ns.path"]), st.sampled_from([None, 5, []])))
    if path[-1] == "type" and "namespaces" in path:
        return draw(st.one_of(st.sampled_from(ENUMS["namespaces.type"]), leaf()))
    if path[-1] == "type" and "mounts" in path:
        return draw(st.sampled_from(ENUMS["mount.type"]))
    if path[-1] == "source" and "mounts" in path:
        return draw(st.sampled_from(ENUMS["mount.source"]))
    if path[-1] == "destination":
        return draw(st.one_of(st.sampled_from(ENUMS["mount.destination"]), leaf()))
    if "options" in path:
        return draw(st.one_of(st.sampled_from(ENUMS["mount.option"]), leaf()))
    if "capabilities" in path and isinstance(path[-1], int):
        return draw(st.one_of(st.sampled_from(ENUMS["cap"]), leaf()))
    if "rlimits" in path and path[-1] == "type":
        return draw(st.sampled_from(ENUMS["rlimit.type"]))
    if path == ("process", "args") or path[:2] == ("process", "args"):
        return draw(st.one_of(leaf(), st.sampled_from([["echo"] * 5000, ["/nonexistent" * 500], ["echo", "x" * 9000]])))
    return draw(leaf())


@st.composite
def mutated(draw, base):
    """(config text, description of the mutations)."""
    cfg = copy.deepcopy(base)
    notes = []
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 2, 3, 4]))):
        op = draw(st.sampled_from(["set", "set", "set", "drop", "add", "mount", "ns"]))
        if op in ("set", "drop"):
            # ociVersion last: hypothesis favours the first entries
            ps = sorted((p for p in paths(cfg) if "seccomp" not in p), key=lambda p: p[0] == "ociVersion")
            if not ps:
                continue
            p = draw(st.sampled_from(ps))
            parent = _parent(cfg, p)
            if op == "drop":
                if isinstance(parent, list):
                    parent.pop(p[-1])
                else:
                    del parent[p[-1]]
            else:
                parent[p[-1]] = _value_for(draw, p)
            notes.append((op, p) if op == "drop" else (op, p, str(parent[p[-1]])[:60]))
        elif op == "add":
            p = draw(st.sampled_from(sorted(EXTRA_FIELDS)))
            o = cfg
            ok = True
            for k in p[:-1]:
                if not isinstance(o, dict):
                    ok = False
                    break
                o = o.setdefault(k, {})
            if ok and isinstance(o, dict):
                o[p[-1]] = EXTRA_FIELDS[p](draw)
                notes.append((op, p, str(o[p[-1]])[:60]))
        elif op == "mount" and isinstance(cfg.get("mounts"), list):
            cfg["mounts"].append(_mount(draw))
            notes.append((op, str(cfg["mounts"][-1])[:100]))
        elif op == "ns" and isinstance(cfg.get("linux"), dict) and isinstance(cfg["linux"].get("namespaces"), list):
            ns = {"type": draw(st.sampled_from(ENUMS["namespaces.type"]))}
            if draw(st.booleans()):
                ns["path"] = draw(st.sampled_from(ENUMS["ns.path"]))
            cfg["linux"]["namespaces"].append(ns)
            notes.append((op, ns))
    text = json.dumps(cfg, ensure_ascii=draw(st.booleans()))
    raw = draw(st.sampled_from(["none"] * 12 + ["truncate", "byte", "deep", "garbage"]))
    if raw == "truncate":
        text = text[:draw(st.integers(0, len(text)))]
    elif raw == "byte":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["\udcff", "\udc80", "\udcc3\udca9", "\0", "\\", '"', "\\ud800"])) + \
            text[at:]
    elif raw == "deep":
        n = draw(st.sampled_from([500, 990, 1500, 100000]))
        text = text[:-1] + ', "x-deep": ' + "[" * n + "]" * n + "}"
    elif raw == "garbage":
        text += draw(st.sampled_from(["x", "}", " {}", "\0"]))
    notes.append(("raw", raw))
    # lone surrogates from ensure_ascii=False and "byte" become invalid UTF-8
    return text.encode("utf-8", "surrogatepass"), notes


def base_cfg():
    from tests.conftest import base_config

    cfg = base_config()
    cfg["process"]["args"] = ["echo", "ran"]
    return cfg


class _One:
    """What conftest.leftovers needs to check one case's container."""

    def __init__(self, env, cid):
        self.root, self.tmp, self.cmd, self.ids = env.root, env.tmp, env.cmd, [cid]


def check_one_run(env, data, notes=()):
    cid = env.new_id("fz")
    env.ids.remove(cid)  # checked here, case by case
    with open(os.path.join(env.bundle, "config.json"), "wb") as f:
        f.write(data)
    cmd = list(env.cmd) + ["--root", env.root, "run", "-b", env.bundle, cid]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=60)
        except subprocess.TimeoutExpired:
            env.cli("delete", "--force", cid)
            pytest.fail("ocirun run did not finish in 60 s")
        err.seek(0)
        stderr = err.read().decode(errors="replace")
        out.seek(0)
        stdout = out.read().decode(errors="replace")
    problems = leftovers(_One(env, cid))
    deadline = time.monotonic() + 5  # as the env fixture: a primer may still be exiting
    while problems and time.monotonic() < deadline:
        time.sleep(0.1)
        problems = leftovers(_One(env, cid))
    if problems:
        env.cli("delete", "--force", cid)
    assert not problems, f"left behind: {problems}"
    assert "Traceback" not in stderr, stderr[-3000:]
    for line in stderr.splitlines():
        assert len(line.encode()) <= LINE_MAX, line[:300]
    errors = [line for line in stderr.splitlines() if "level=error" in line]
    if p.returncode not in (0, 1):
        # only the container's own status gets here: it ran, and nothing
        # in ocirun failed
        assert not errors, (p.returncode, stderr[-2000:])
    if p.returncode == 1 and "ran" not in stdout:
        assert len(errors) == 1, stderr[-2000:]
    if os.environ.get("OCIRUN_FUZZ_LOG"):
        runc = _runc_side(env, cid) if os.environ.get("OCIRUN_FUZZ_RUNC") else ""
        with open(os.environ["OCIRUN_FUZZ_LOG"], "a") as f:
            f.write(f"{p.returncode} {'ran' if 'ran' in stdout else '-'}{runc} {errors[0] if errors else ''}"
                    f" {str(notes)[:300]}\n")
    return p.returncode


def _runc_side(env, cid):
    """OCIRUN_FUZZ_RUNC=/path/to/runc (with OCIRUN_FUZZ_LOG): the same
    config through runc, for the log only (" runc=<status>/<ran or ->")."""
    runc = os.environ["OCIRUN_FUZZ_RUNC"]
    root = os.path.join(env.tmp, "runc-state")
    with tempfile.TemporaryFile() as out:
        try:
            p = subprocess.run([runc, "--root", root, "run", "-b", env.bundle, cid], stdin=subprocess.DEVNULL,
                               stdout=out, stderr=subprocess.DEVNULL, timeout=60)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            rc = "hang"
        subprocess.run([runc, "--root", root, "delete", "--force", cid], capture_output=True, timeout=60)
        out.seek(0)
        ran = "ran" if b"ran" in out.read() else "-"
    return f" runc={rc}/{ran}"


@settings(settings.get_profile("ocirun-fuzz"))
@given(data=st.data())
def test_fuzzed_config(env, data):
    text, notes = data.draw(mutated(base_cfg()), label="config")
    data.draw(st.just(notes), label="mutations")
    rc = check_one_run(env, text, notes)
    hypothesis.event(f"exit status {rc}")
