"""Malformed and hostile config.json: every case gets exit status 1 and one
error line naming the field (never a traceback, never a line over 1 KB),
and nothing is left behind (the env fixture checks state, mounts, processes
and cgroups).  The fuzz test (test_fuzz.py) covers the space around these."""

import json
import os

import pytest

LINE_MAX = 1024


def refused(r, *words):
    """Exit 1, one `level=error` line holding every word, no traceback, every
    stderr line under 1 KB.  Returns the error line."""
    assert r.returncode == 1, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    for line in r.stderr.splitlines():
        assert len(line.encode()) <= LINE_MAX, line[:300]
    lines = [line for line in r.stderr.splitlines() if "level=error" in line]
    assert len(lines) == 1, r.stderr[-3000:]
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def write_raw(env, text):
    with open(os.path.join(env.bundle, "config.json"), "w", encoding="utf-8", errors="surrogatepass") as f:
        f.write(text)


def cfg_text(env):
    env.cfg["process"]["args"] = ["true"]
    return json.dumps(env.cfg)


@pytest.mark.parametrize("make,words", [
    (lambda t: "{", ["config.json: invalid JSON", "Expecting property name", "char 1"]),
    (lambda t: t[: len(t) // 2], ["config.json: invalid JSON", "line 1"]),
    (lambda t: '{"a" 1}', ["config.json: invalid JSON", "Expecting ':' delimiter"]),
    (lambda t: "[" * 100000 + "]" * 100000, ["config.json: invalid JSON: nested too deeply"]),
    (lambda t: t[:-1] + ', "x-unknown": ' + '{"a": ' * 5000 + "1" + "}" * 5001,
     ["config.json: invalid JSON: nested too deeply"]),
    (lambda t: t.replace('"hostname": "ocirun"', '"hostname": "\\ud800"'),
     ["hostname: lone UTF-16 surrogate \\\\ud800"]),
    (lambda t: t.replace('"args": ["true"]', '"args": ["tr\\udfffue"]'),
     ["process.args[0]: lone UTF-16 surrogate \\\\udfff"]),
    (lambda t: t.replace('"destination": "/proc"', '"destination": "/pr\\uDC00oc"'),
     ["mounts[0].destination: lone UTF-16 surrogate \\\\udc00"]),
    (lambda t: t.replace('"annotations": {', '"annotations": {"\\ud800": "x", ', 1) if '"annotations": {' in t
     else t[:-1] + ', "annotations": {"\\ud800": "x"}}', ["a key of annotations: lone UTF-16 surrogate"]),
    (lambda t: "\udcff".encode("utf-8", "surrogateescape").decode("latin-1") + t, ["config.json: invalid JSON"]),
])
def test_malformed_json_is_one_line(env, make, words):
    write_raw(env, make(cfg_text(env)))
    refused(env.cli("run", "-b", env.bundle, env.new_id()), *words)


def test_surrogate_pair_is_text(env):
    """A proper \\ud83d\\ude00 pair is one character, not an error."""
    env.cfg["process"]["env"].append("SMILE=\U0001F600")
    text = cfg_text(env).replace('"args": ["true"]', '"args": ["sh", "-c", "printf %s \\"$SMILE\\" | od -An -tx1"]')
    write_raw(env, text)
    r = env.cli("run", "-b", env.bundle, env.new_id())
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["f0", "9f", "98", "80"]


def _set(path, value):
    def mutate(c):
        o = c
        for k in path[:-1]:
            o = o[k]
        o[path[-1]] = value
    return mutate


@pytest.mark.parametrize("mutate,words", [
    (_set(("process", "user", "uid"), None), ["process.user.uid: is required"]),
    (_set(("process", "user", "gid"), None), ["process.user.gid: is required"]),
    (_set(("process", "env", 0), None), ["process.env[0]: must not be null"]),
    (_set(("process", "args", 0), None), ["process.args[0]: must not be null"]),
    (_set(("process", "capabilities", "bounding", 0), None), ["process.capabilities.bounding[0]: must not be null"]),
    (_set(("mounts", 0, "options"), ["nosuid", None]), ["mounts[0].options[1]: must not be null"]),
    (_set(("linux", "maskedPaths"), [None]), ["linux.maskedPaths[0]: must not be null"]),
    (_set(("linux", "sysctl"), {"net.ipv4.ip_forward": None}), ["linux.sysctl.net.ipv4.ip_forward: is required"]),
    (_set(("linux", "cgroupsPath"), 12), ["linux.cgroupsPath: must be a string"]),
    (_set(("linux", "cgroupsPath"), ["a"]), ["linux.cgroupsPath: must be a string"]),
    (_set(("linux", "cgroupsPath"), "/ocirun-test/a\0b"), ["linux.cgroupsPath: contains a NUL byte"]),
    (_set(("process", "consoleSize"), "80x25"), ["process.consoleSize: must be an object"]),
    (_set(("process", "consoleSize"), {"height": "25", "width": 80}), ["process.consoleSize.height: must be an integer"]),
    (lambda c: c["process"]["env"].append("=x"), ["process.env[2]: invalid environment variable '=x'", "name is empty"]),
    (_set(("ociVersion",), "invalid"), ["ociVersion: 'invalid' is not a SemVer 2.0.0 version"]),
    (_set(("ociVersion",), "1.0"), ["ociVersion: '1.0' is not a SemVer"]),
    (_set(("ociVersion",), "01.2.0"), ["ociVersion: '01.2.0' is not a SemVer"]),
])
def test_wrong_types_and_values_name_the_field(env, mutate, words):
    env.cfg["process"]["args"] = ["true"]
    mutate(env.cfg)
    env.write()
    refused(env.cli("run", "-b", env.bundle, env.new_id()), *words)


@pytest.mark.parametrize("version", ["1.0.0", "1.0.2-dev", "1.3.0-rc.1+build.7"])
def test_semver_versions_run(env, version):
    env.cfg["ociVersion"] = version
    r = env.run(["echo", "ran"])
    assert r.returncode == 0, r.stderr
    assert r.stdout == "ran\n"


@pytest.mark.parametrize("mutate,words", [
    (_set(("linux", "namespaces", 0), {"type": "pid", "path": "/nonexistent" * 1000}),
     ["linux.namespaces[0].path: /nonexistent", "more)", "file name too long"]),  # the real errno
    (_set(("process", "cwd"), "/" + "d" * 5000), ["process.cwd /ddd", "more)", "chdir: file name too long"]),
    (_set(("linux", "sysctl"), {"net." + "k" * 5000: "1"}), ["linux.sysctl.net.kkk", "more)", "writing /proc/sys/"]),
    (_set(("linux", "sysctl"), {"vm." + "k" * 5000: "1"}), ["linux.sysctl.vm.kkk", "more)", "not in a separate"]),
    (_set(("process", "args"), ["/nonexistent" * 500]), ["exec: \\\"/nonexistent", "more)", "file name too long"]),
    (_set(("hostname",), "h" * 5000), ["hostname 'hhh", "more)", "sethostname: invalid argument"]),
    (_set(("process", "env"), ["A=1", "=" + "a b " * 3000]), ["process.env[1]", "more)", "name is empty"]),
    (_set(("mounts", 0, "destination"), "/proc/" + "\n" * 3000), ["mounts[0].destination: /proc/\\\\n", "more)",
                                                                  "cannot be mounted under /proc"]),
])
def test_long_values_are_cut(env, mutate, words):
    """The echoed value is cut in the middle; the field and the cause stay."""
    env.cfg["process"]["args"] = ["true"]
    mutate(env.cfg)
    env.write()
    line = refused(env.cli("run", "-b", env.bundle, env.new_id()), *words)
    assert len(line) < 900


def test_long_values_are_cut_in_the_json_log_and_on_stderr(env):
    env.cfg["linux"]["namespaces"][0] = {"type": "pid", "path": "/nonexistent" * 1000}
    env.write()
    log = os.path.join(env.tmp, "log.json")
    r = env.cli("--log", log, "--log-format", "json", "run", "-b", env.bundle, env.new_id())
    assert r.returncode == 1
    (bare,) = r.stderr.splitlines()
    assert bare.startswith("ocirun run failed: linux.namespaces[0].path: /nonexistent") and len(bare) < 900
    with open(log) as f:
        (rec,) = [json.loads(line) for line in f]
    assert rec["level"] == "error" and rec["msg"] == bare


def test_item_limits_name_the_field(env):
    # the init takes 4096 arguments: 4096 run, 4097 are refused on the field
    args = ["sh", "-c", 'echo "$#"', "sh"] + ["x"] * 4092
    r = env.run(args)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout == "4092\n"
    refused(env.run(args + ["x"]), "process.args: 4097 entries, more than the 4096 the runtime supports")
    env.cfg["process"]["env"] = [f"V{i}=1" for i in range(5000)]
    refused(env.run(["true"]), "process.env: 5000 entries, more than the 4096")
    env.cfg["process"]["env"] = []
    env.cfg["linux"]["maskedPaths"] = ["/m"] * 4097
    refused(env.run(["true"]), "linux.maskedPaths: 4097 entries, more than the 4096")
    env.cfg["linux"]["maskedPaths"] = []
    env.cfg["mounts"] += [{"destination": f"/t{i}", "type": "tmpfs", "source": "tmpfs"} for i in range(1100)]
    refused(env.run(["true"]), "more than the 1023 mounts the runtime supports")


@pytest.mark.parametrize("path", ["/", ".", "//", "./."])
def test_cgroups_path_naming_no_cgroup_of_its_own(env, path):
    """'/' is the root cgroup, '.' the runtime's own: the container would
    share it, and delete would kill everything in it."""
    env.cfg["linux"]["cgroupsPath"] = path
    refused(env.run(["true"]), f"linux.cgroupsPath: {path!r} names an existing group of the host (the root, or the runtime's own); a container needs a group of its own")


def _exec_file(env, cid, text):
    p = os.path.join(env.tmp, "process.json")
    with open(p, "w", encoding="utf-8", errors="surrogatepass") as f:
        f.write(text)
    return env.cli("exec", "--process", p, cid)


GOOD_PROCESS = {"cwd": "/", "args": ["echo", "hi"], "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}


@pytest.mark.parametrize("text,words", [
    ("{", ["--process", "invalid JSON", "Expecting property name"]),
    ("[" * 100000, ["--process", "invalid JSON: nested too deeply"]),
    (json.dumps(dict(GOOD_PROCESS, args=[None])), ["process.args[0]: must not be null"]),
    (json.dumps(dict(GOOD_PROCESS, user={"uid": None})), ["process.user.uid: is required"]),
    (json.dumps(dict(GOOD_PROCESS, env=["=x"])), ["process.env[0]", "name is empty"]),
    (json.dumps(dict(GOOD_PROCESS, args=["tr\ud800ue"])), ["invalid JSON: args[0]: lone UTF-16 surrogate"]),
    (json.dumps(dict(GOOD_PROCESS, capabilities={"bounding": [None]})), ["process.capabilities.bounding[0]"]),
    (json.dumps(dict(GOOD_PROCESS, consoleSize="x")), ["process.consoleSize: must be an object"]),
    (json.dumps(dict(GOOD_PROCESS, args=["echo"] * 5000)), ["process.args: 5000 entries, more than the 4096"]),
    (json.dumps(dict(GOOD_PROCESS, cwd="/d" * 3000)), ["process.cwd /d/d", "more)", "chdir: file name too long"]),
])
def test_exec_process_file(env, text, words):
    """exec --process: one line (runc's exec failure status, 255), and the
    container goes on running."""
    cid = env.create(["sleep", "100"])
    try:
        r = _exec_file(env, cid, text)
        assert r.returncode == 255, (r.returncode, r.stderr[-2000:])
        r.returncode = 1
        refused(r, "exec failed", *words)
        assert env.state(cid)["status"] == "created"
        r = _exec_file(env, cid, json.dumps(GOOD_PROCESS))
        assert r.returncode == 0 and r.stdout == "hi\n", r.stderr
    finally:
        env.cli("delete", "--force", cid)


@pytest.mark.parametrize("text,words", [
    ("{", ["--resources: invalid JSON"]),
    ('{"memory": ' + "[" * 100000, ["--resources: invalid JSON: nested too deeply"]),
    (json.dumps({"memory": "x"}), ["linux.resources.memory: must be an object"]),
    (json.dumps({"pids": {"limit": 2**70}}), ["linux.resources.pids.limit", "out of range"]),
    (json.dumps({"cpu": {"cpus": "0," * 3000}}), ["linux.resources.cpu.cpus", "more)"]),
    (json.dumps({"cpu": {"cpus": "\ud800"}}), ["--resources: invalid JSON: cpu.cpus: lone UTF-16 surrogate"]),
])
def test_update_resources_file(env, text, words):
    cid = env.create(["sleep", "100"])
    try:
        before = _pids_max(env, cid)
        p = os.path.join(env.tmp, "resources.json")
        with open(p, "w", encoding="utf-8", errors="surrogatepass") as f:
            f.write(text)
        refused(env.cli("update", "--resources", p, cid), *words)
        assert _pids_max(env, cid) == before
    finally:
        env.cli("delete", "--force", cid)


def test_update_unknown_resource_key_is_one_short_warning(env):
    """An unknown key is ignored with a warning (runtime-spec; runc drops it
    too): one line, cut under 1 KB, and nothing else changes."""
    cid = env.create(["sleep", "100"])
    try:
        before = _pids_max(env, cid)
        p = os.path.join(env.tmp, "resources.json")
        with open(p, "w") as f:
            json.dump({"x" * 5000: 1}, f)
        r = env.cli("update", "--resources", p, cid)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and len(lines[0].encode()) <= LINE_MAX, r.stderr[-2000:]
        assert "level=warning" in lines[0] and "linux.resources.xxx" in lines[0] and "more)" in lines[0]
        assert "unknown field, ignored" in lines[0]
        assert _pids_max(env, cid) == before
    finally:
        env.cli("delete", "--force", cid)


def _pids_max(env, cid):
    st = json.load(open(os.path.join(env.root, cid, "state.json")))
    for path in st["cgroup"]["paths"].values():
        f = os.path.join(path, "pids.max")
        if os.path.exists(f):
            return open(f).read()
    return None


@pytest.mark.parametrize("phase", ["prestart", "createRuntime"])
def test_hook_with_garbage_output(env, phase):
    """A failing hook's output is echoed in the error: cut, escaped, one line."""
    script = os.path.join(env.tmp, "hook.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\nhead -c 200000 /dev/urandom\nprintf 'line1\\nline2\\n' >&2\n"
                "head -c 100000 /dev/zero | tr '\\0' 'x' >&2\nexit 3\n")
    os.chmod(script, 0o755)
    env.cfg["hooks"] = {phase: [{"path": script}]}
    line = refused(env.run(["true"]), f"hooks.{phase}[0]", "exit status 3", "line1\\\\nline2", "more)")
    assert len(line) < 900


def test_hook_with_garbage_output_that_succeeds(env):
    script = os.path.join(env.tmp, "hook.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\nhead -c 200000 /dev/urandom\nhead -c 200000 /dev/urandom >&2\nexit 0\n")
    os.chmod(script, 0o755)
    env.cfg["hooks"] = {"prestart": [{"path": script}], "poststop": [{"path": script}]}
    r = env.run(["echo", "ran"])
    assert r.returncode == 0 and r.stdout == "ran\n", r.stderr[-2000:]


def _tamper(env, cid, name, how):
    p = os.path.join(env.root, cid, name)
    with open(p, "rb") as f:
        data = f.read()
    if how == "truncate":
        data = data[: len(data) // 2]
    elif how == "empty":
        data = b""
    elif how == "garbage":
        data = b"\xff\0garbage" * 100
    elif how == "wrong-types":
        st = json.loads(data)
        st.update(pid="1", cgroup="x", hooks=[])
        data = json.dumps(st).encode()
    with open(p, "wb") as f:
        f.write(data)


# (a state.json naming a root cgroup is tests/unit/test_error_lines.py's: on
# a regression, deleting such a container would kill every process in it)
@pytest.mark.parametrize("how", ["truncate", "empty", "garbage", "wrong-types"])
@pytest.mark.parametrize("with_record", [True, False])
def test_tampered_state(env, how, with_record):
    """A truncated or tampered state.json (and no front-end record, or one):
    list still lists the other containers, delete --force still removes the
    container (its process and cgroup: the env fixture checks), and no
    command prints a traceback."""
    good = env.create(["sleep", "100"])
    bad = env.create(["sleep", "100"])
    if not with_record:
        os.unlink(os.path.join(env.root, bad, "fast"))
    _tamper(env, bad, "state.json", how)
    try:
        r = env.cli("list", "-q")
        assert r.returncode == 0 and good in r.stdout.split(), r.stderr
        assert "Traceback" not in r.stderr
        if not with_record:
            assert f"{bad}: state of container {bad} is corrupt" in r.stderr
            refused(env.cli("state", bad), f"state of container {bad} is corrupt")
            refused(env.cli("delete", bad), f"state of container {bad} is corrupt")
        r = env.cli("delete", "--force", bad)
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr
        assert not os.path.exists(os.path.join(env.root, bad))
        assert env.state(good)["status"] == "created"
    finally:
        env.cli("delete", "--force", good)
        env.cli("delete", "--force", bad)


def test_tampered_front_end_record(env):
    """A record that does not parse is left to Python (which reads
    state.json): delete --force still works."""
    for rec in (b"ocirun-fast 1\npid 99999999999999999999999\n", b"garbage\xff", b""):
        cid = env.create(["sleep", "100"])
        with open(os.path.join(env.root, cid, "fast"), "wb") as f:
            f.write(rec)
        assert env.state(cid)["status"] == "created"
        r = env.cli("delete", "--force", cid)
        assert r.returncode == 0 and not r.stderr, r.stderr


def test_in_container_hook_limits_name_the_field(env):
    env.cfg["hooks"] = {"createContainer": [{"path": "/bin/true", "args": ["true"] * 257}]}
    refused(env.run(["true"]), "hooks.createContainer[0].args: 257 entries, more than the 256")
    env.cfg["hooks"] = {"startContainer": [{"path": "/bin/true", "env": ["A=1"] * 300}]}
    refused(env.run(["true"]), "hooks.startContainer[0].env: 300 entries, more than the 256")
    env.cfg["hooks"] = {"createContainer": [{"path": "/bin/true"}] * 40, "startContainer": [{"path": "/bin/true"}] * 25}
    refused(env.run(["true"]), "hooks.startContainer[24]: more than the 64 createContainer and startContainer hooks")
    env.cfg["hooks"] = {"createContainer": [{"path": "/bin/true", "args": ["true"] * 256}] * 64}
    r = env.run(["echo", "ran"])
    assert r.returncode == 0 and r.stdout == "ran\n", r.stderr[-2000:]
