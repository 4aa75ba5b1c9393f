"""Every failure: one clear line naming the field or path and the cause,
exit status 1, and nothing left behind (the env fixture checks state,
mounts, processes and cgroups after each test)."""

import json
import os
import resource

import pytest


def fails(r, *words):
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = [line for line in r.stderr.splitlines() if "level=error" in line]
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def test_malformed_json(env):
    with open(os.path.join(env.bundle, "config.json"), "w") as f:
        f.write('{"ociVersion": "1.2.1", "process": ')
    fails(env.cli("run", "-b", env.bundle, env.new_id()), "config.json: invalid JSON")


def test_missing_config(env):
    os.makedirs(os.path.join(env.tmp, "empty"))
    fails(env.cli("create", "-b", os.path.join(env.tmp, "empty"), env.new_id()),
          "JSON specification file config.json not found")


@pytest.mark.parametrize("mutate,words", [
    (lambda c: c["process"].__setitem__("args", "sh"), ["process.args: must be an array"]),
    (lambda c: c["linux"]["namespaces"].append({"type": "nope"}), ["linux.namespaces[6].type", "nope"]),
    (lambda c: c["root"].__setitem__("path", "missing-rootfs"), ["root.path", "does not exist"]),
    (lambda c: c["mounts"].append({"destination": "/x", "type": "nosuchfs", "source": "none"}),
     ["mounts[7]", "/x", "unknown filesystem type"]),
    (lambda c: c["mounts"].append({"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["bogusopt"]}),
     ["mounts[7]", "bogusopt", "invalid argument"]),
    (lambda c: c["mounts"].append({"destination": "/x", "type": "bind", "source": "/nonexistent", "options": ["bind"]}),
     ["mounts[7].source", "no such file or directory"]),
    (lambda c: c["linux"].__setitem__("sysctl", {"vm.swappiness": "10"}), ["linux.sysctl.vm.swappiness"]),
    (lambda c: c["process"].__setitem__("cwd", "/bin/busybox"), ["process.cwd /bin/busybox", "not a directory"]),
])
def test_config_errors_name_the_field(env, mutate, words):
    mutate(env.cfg)
    env.cfg["process"]["args"] = env.cfg["process"]["args"] if isinstance(env.cfg["process"]["args"], str) else ["true"]
    env.write()
    fails(env.cli("run", "-b", env.bundle, env.new_id()), *words)


def test_exec_of_missing_binary(env):
    line = fails(env.run(["nosuchcmd"]), "ocirun run failed: unable to start container process",
                 "executable file not found in $PATH")
    assert 'nosuchcmd' in line
    fails(env.run(["/no/such/path"]), "stat /no/such/path: no such file or directory")
    # create reports it too, before the container is left blocked
    env.cfg["process"]["args"] = ["nosuchcmd"]
    env.write()
    fails(env.cli("create", "-b", env.bundle, env.new_id()), "ocirun create failed", "executable file not found")


def test_eperm_raising_hard_rlimit(env):
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("hard limit already infinite")
    env.cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": hard, "hard": hard * 4}]
    fails(env.run(["true"]), "process.rlimits[0] RLIMIT_NOFILE", "operation not permitted", "CAP_SYS_RESOURCE")


def test_eperm_lowering_oom_score_adj(env):
    with open("/proc/self/oom_score_adj") as f:
        cur = int(f.read())
    if cur <= -1000:
        pytest.skip("already minimal")
    env.cfg["process"]["oomScoreAdj"] = -1000
    r = env.run(["true"])
    if r.returncode == 0:
        pytest.skip("this host allows lowering oom_score_adj (CAP_SYS_RESOURCE present)")
    fails(r, "process.oomScoreAdj", "CAP_SYS_RESOURCE")


def test_terminal_and_console_socket_rules(env):
    env.cfg["process"]["terminal"] = True
    env.write()
    fails(env.cli("create", "-b", env.bundle, env.new_id()),
          "cannot allocate tty if ocirun will detach without setting console socket")
    env.cfg["process"]["terminal"] = False
    env.write()
    fails(env.cli("create", "--console-socket", "/tmp/x.sock", "-b", env.bundle, env.new_id()),
          "cannot use console socket if ocirun will not detach or allocate tty")
    env.cfg["process"]["terminal"] = True
    env.write()
    fails(env.cli("create", "--console-socket", os.path.join(env.tmp, "missing.sock"), "-b", env.bundle, env.new_id()),
          "--console-socket", "no such file or directory")


def test_pid_file_that_cannot_be_written(env, tmp_path):
    """create and exec share one spawn path: a --pid-file in a missing
    directory fails both before any process exists, naming the flag and the
    path; create leaves no state, cgroup or init behind (the env fixture)."""
    bad = str(tmp_path / "missing" / "pid")
    env.cfg["process"]["args"] = ["sleep", "100"]
    env.write()
    line = fails(env.cli("create", "--pid-file", bad, "-b", env.bundle, env.new_id()),
                 f"--pid-file {bad}: no such file or directory")
    assert "ocirun create failed: " in line
    cid = env.create(["sleep", "100"])
    r = env.cli("exec", "--pid-file", bad, cid, "true")
    assert r.returncode == 255 and f"exec failed: --pid-file {bad}: no such file or directory" in r.stderr, r.stderr
    assert not os.path.exists(os.path.dirname(bad))
    assert env.cli("delete", "--force", cid).returncode == 0


def test_json_log_format_and_log_file(env):
    env.cfg["process"]["args"] = ["nosuchcmd"]
    env.write()
    r = env.cli("--log-format", "json", "run", "-b", env.bundle, env.new_id())
    assert r.returncode == 1
    rec = json.loads(r.stderr.strip())
    assert sorted(rec) == ["level", "msg", "time"] and rec["level"] == "error"
    assert "executable file not found in $PATH" in rec["msg"]
    log = os.path.join(env.tmp, "log.json")
    r = env.cli("--log", log, "--log-format=json", "run", "-b", env.bundle, env.new_id())
    assert r.returncode == 1
    recs = [json.loads(line) for line in open(log)]
    assert len(recs) == 1 and recs[0]["level"] == "error"
    assert r.stderr.strip() == recs[0]["msg"]  # the bare message on stderr too


def test_cli_usage_errors(env):
    r = env.cli("--log-format", "xml", "list")
    assert r.returncode == 1 and "invalid log-format: xml" in r.stderr
    r = env.cli("frobnicate")
    assert r.returncode == 3 and "No help topic for 'frobnicate'" in r.stdout
    r = env.cli("state")
    assert r.returncode == 1 and r.stdout.startswith("Incorrect Usage.") and "requires exactly 1 argument" in r.stderr
    r = env.cli("delete", "--nope", "x")
    assert r.returncode == 1 and "flag provided but not defined: -nope" in r.stderr
    r = env.cli("--version", root=False)
    assert r.returncode == 0 and r.stdout.startswith("ocirun version ") and "spec: " in r.stdout
    r = env.cli("create", "--help")
    assert r.returncode == 0 and "--bundle" in r.stdout


def test_failed_create_leaves_the_id_free(env):
    env.cfg["process"]["args"] = ["nosuchcmd"]
    env.write()
    cid = env.new_id()
    fails(env.cli("create", "-b", env.bundle, cid), "executable file not found")
    env.cfg["process"]["args"] = ["true"]
    env.write()
    assert env.cli("run", "-b", env.bundle, cid).returncode == 0


def test_lsm_labels_refused_without_the_lsm(env):
    from ocirun.host import apparmor_enabled, selinux_enabled

    if apparmor_enabled() or selinux_enabled():
        pytest.skip("this host has an LSM")
    env.cfg["process"]["apparmorProfile"] = "docker-default"
    fails(env.run(["true"]), "process.apparmorProfile", "apparmor is not enabled")
    env.cfg["process"].pop("apparmorProfile")
    env.cfg["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0"
    fails(env.run(["true"]), "process.selinuxLabel", "selinux is disabled")
    env.cfg["process"].pop("selinuxLabel")
    env.cfg["linux"]["intelRdt"] = {"closID": "x"}
    fails(env.run(["true"]), "linux.intelRdt", "not available")


def test_features_document(env):
    from tests.conftest import schema_validator

    validator = schema_validator("features.json")
    r = env.cli("features", root=False)
    assert r.returncode == 0 and r.stdout.startswith('{\n    "ociVersionMin"')
    doc = json.loads(r.stdout)
    validator.validate(doc)
    assert "rro" in doc["mountOptions"] and "idmap" in doc["mountOptions"]
    assert doc["linux"]["mountExtensions"]["idmap"]["enabled"] is True
    assert set(doc["linux"]["namespaces"]) == {"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"}
    assert "SECCOMP_FILTER_FLAG_LOG" in doc["linux"]["seccomp"]["supportedFlags"]
    assert doc["annotations"]["io.github.seccomp.libseccomp.version"].count(".") == 2
    # 1.3.0: the two Linux additions it implements, and the one it does not
    assert doc["ociVersionMax"] == "1.3.0"
    assert doc["linux"]["netDevices"] == {"enabled": True}
    assert "MPOL_WEIGHTED_INTERLEAVE" in doc["linux"]["memoryPolicy"]["modes"]
    assert doc["linux"]["memoryPolicy"]["flags"] == ["MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES",
                                                     "MPOL_F_STATIC_NODES"]
    assert doc["linux"]["intelRdt"]["enabled"] is False


def test_usage_errors_reach_the_log_file(env):
    """containerd reads --log for every failure, even an unknown command."""
    log = os.path.join(env.tmp, "usage.json")
    r = env.cli("--log", log, "--log-format", "json", "frobnicate")
    assert r.returncode == 3
    rec = json.loads(open(log).read().splitlines()[-1])
    assert rec["level"] == "error" and "frobnicate" in rec["msg"]


def test_capability_outside_the_runtime_bounding_set(env):
    """This host's root lacks CAP_SYS_RESOURCE: a capability the runtime
    cannot grant is a warning naming it and the container runs without it,
    with the others it asked for (config.md; runc 1.1.5 fails on capset's
    EPERM instead).  exec --cap says the same."""
    from ocirun.tables import CAPABILITIES

    with open("/proc/self/status") as f:
        bnd = int([line for line in f if line.startswith("CapBnd:")][0].split()[1], 16)
    missing = [(i, c) for i, c in enumerate(CAPABILITIES) if not bnd >> i & 1 and i <= 40]
    if not missing:
        pytest.skip("the runtime holds every capability here")
    n, name = missing[0]
    caps = env.cfg["process"]["capabilities"]
    for key in ("bounding", "effective", "permitted", "inheritable", "ambient"):
        caps[key] = ["CAP_CHOWN", name]
    r = env.sh("grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' /proc/self/status")
    assert r.returncode == 0, r.stderr
    got = {line.split(":")[0]: int(line.split()[1], 16) for line in r.stdout.splitlines()}
    assert got == {k: 1 for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}, r.stdout  # CAP_CHOWN alone
    assert r.stderr.count("level=warning") == 1 and name in r.stderr and "cannot be granted" in r.stderr, r.stderr
    env.cfg["process"]["args"] = ["sleep", "100"]
    env.write()
    cid = env.new_id()
    assert env.cli("run", "-d", "-b", env.bundle, cid).returncode == 0
    try:
        r = env.cli("exec", "--cap", name, cid, "grep", "CapBnd", "/proc/self/status")
        assert r.returncode == 0 and int(r.stdout.split()[1], 16) == 1, (r.stdout, r.stderr)
        assert "level=warning" in r.stderr and name in r.stderr
    finally:
        env.cli("delete", "-f", cid)


def test_version_lines_and_help_per_command(env):
    """--version carries runc's lines in runc's order (docker info and
    containerd parse `<name> version X` and `commit:`); every command answers
    -h/--help and `help <command>` with its own usage."""
    r = env.cli("--version", root=False)
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and [line.split(" ")[0] for line in lines] == [
        "ocirun", "commit:", "spec:", "python:", "libseccomp:"], r.stdout
    assert lines[0].startswith("ocirun version ") and lines[2] == "spec: 1.3.0"
    commit = lines[1].split(" ", 1)[1]
    assert commit == "unknown" or len(commit.split("-")[0]) == 40, commit
    for cmd in ("create", "start", "run", "state", "kill", "delete", "list", "exec", "pause", "resume", "ps",
                "events", "update", "spec", "features"):
        for argv in ((cmd, "-h"), (cmd, "--help"), ("help", cmd)):
            r = env.cli(*argv)
            assert r.returncode == 0 and r.stdout.startswith(f"NAME:\n   ocirun {cmd} - "), (argv, r.stdout, r.stderr)
            assert "USAGE:\n   ocirun " + cmd in r.stdout
    r = env.cli("help", "frobnicate")
    assert r.returncode == 3 and "No help topic for 'frobnicate'" in r.stderr


def test_log_file_on_every_call_and_debug_records(env):
    """--log FILE exists after every call, also when nothing was logged and
    whichever side answered (runc opens it each time); --debug adds debug
    records of create's steps, in the chosen format; an unusable --log path
    is one error line and status 1, never a traceback."""
    logs = [os.path.join(env.tmp, f"l{i}.log") for i in range(4)]
    assert env.cli("--log", logs[0], "list").returncode == 0
    cid = env.create(["sleep", "100"])
    assert env.cli("--log", logs[1], "state", cid).returncode == 0  # the C front-end's answer
    for p in logs[:2]:
        assert os.path.exists(p) and os.path.getsize(p) == 0, p
    assert env.cli("delete", "-f", cid).returncode == 0
    env.cfg["process"]["args"] = ["true"]
    env.write()
    cid = env.new_id()
    r = env.cli("--debug", "--log", logs[2], "--log-format", "json", "create", "-b", env.bundle, cid)
    assert r.returncode == 0, r.stderr
    recs = [json.loads(line) for line in open(logs[2])]
    assert recs and all(rec["level"] == "debug" and sorted(rec) == ["level", "msg", "time"] for rec in recs), recs
    msgs = " | ".join(rec["msg"] for rec in recs)
    for step in ("loaded", "plan built", "container init is pid", "created"):
        assert step in msgs, msgs
    r = env.cli("--debug", "exec", cid, "/bin/true")
    assert r.returncode == 0 and "level=debug" in r.stderr and "joining the namespaces" in r.stderr, r.stderr
    assert env.cli("delete", "-f", cid).returncode == 0
    cid = env.new_id()
    assert env.cli("--log", logs[3], "create", "-b", env.bundle, cid).returncode == 0
    assert open(logs[3]).read() == ""  # no --debug: no debug records
    assert env.cli("delete", "-f", cid).returncode == 0
    for argv in (("list",), ("state", "nope")):
        r = env.cli("--log", os.path.join(env.tmp, "no", "such", "dir.log"), *argv)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.count("\n") == 1 and "no such file or directory" in r.stderr, r.stderr
