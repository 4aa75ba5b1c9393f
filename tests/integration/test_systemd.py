"""The systemd cgroup driver against a real systemd: a private one booted
for each test (tests/systemd_ns.py: PID 1 of its own namespaces, its own
bus, cgroup2 rooted at a sub-group of the host's).  First the fixture
itself; then every command with --systemd-cgroup, runc 1.1.5 (the
baseline) and ocirun side by side with the same assertions: the unit and
what systemd says of it (systemctl show / list-units), what the container
itself saw, and nothing left after delete.

Two layouts: `unified` (cgroup2 only; on this host every controller is
bound to v1, so that cgroup2 has none and limits cannot be applied there;
runc and ocirun both refuse them) and `hybrid` (systemd's hybrid layout
over sub-trees of the host's v1 hierarchies), where limits set through
systemd are enforced by the kernel."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from tests.conftest import REPO, wait_status

RUNC = shutil.which("runc")


def run_in(sd, *argv, timeout=60, input=None):
    """Run argv inside the private systemd; output through files, not pipes
    (a created container keeps the caller's stdio)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.run(sd.cmd(*argv), stdout=out, stderr=err, timeout=timeout,
                           input=input.encode() if input is not None else None)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(argv, p.returncode, out.read().decode(errors="replace"),
                                           err.read().decode(errors="replace"))


def show(sd, unit, *props):
    """systemctl show's properties of `unit` as a dict."""
    r = sd.run("systemctl", "show", "-p", ",".join(props), unit)
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines():
        if "=" in line:  # a list property (DeviceAllow) comes one line per entry
            k, v = line.split("=", 1)
            out[k] = out[k] + "\n" + v if k in out else v
    return out


def units(sd, pattern="*"):
    """Names of the units systemd knows, loaded or not (list-units --all)."""
    r = sd.run("systemctl", "list-units", "--all", "--plain", "--no-legend", pattern)
    assert r.returncode == 0, r.stderr
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def own_cgroup(text):
    """The cgroup2 line (0::path) of a /proc/self/cgroup the container printed."""
    return [line[3:] for line in text.splitlines() if line.startswith("0::")]


# ------------------------------------------------------------ the fixture

def test_private_systemd_runs_a_delegated_scope(private_systemd):
    sd = private_systemd()
    r = sd.run("systemd-run", "--scope", "--unit", "ocirun-probe", "-p", "Delegate=yes", "-p", "TasksMax=77",
               "-p", "Slice=machine.slice", "--", "sh", "-c",
               "cat /proc/self/cgroup; systemctl show -p Delegate,Slice,TasksMax,ControlGroup ocirun-probe.scope")
    assert r.returncode == 0, r.stderr + sd.log_tail()
    assert own_cgroup(r.stdout) == ["/machine.slice/ocirun-probe.scope"], r.stdout
    assert "Delegate=yes" in r.stdout.splitlines(), r.stdout
    assert "Slice=machine.slice" in r.stdout.splitlines(), r.stdout
    assert "TasksMax=77" in r.stdout.splitlines(), r.stdout
    assert "ControlGroup=/machine.slice/ocirun-probe.scope" in r.stdout.splitlines(), r.stdout
    # the scope ends with its process (systemd notices that asynchronously,
    # after systemd-run has returned); its slice is the host's sub-tree
    for _ in range(100):
        if "ocirun-probe.scope" not in units(sd):
            break
        time.sleep(0.05)
    assert "ocirun-probe.scope" not in units(sd)
    assert os.path.isdir(os.path.join(sd.host_v2_dir(), "payload", "machine.slice"))
    # its own systemd is PID 1 in there, not the host's init
    assert sd.run("cat", "/proc/1/comm").stdout.strip() == "systemd"


def test_private_systemd_down_leaves_nothing(private_systemd):
    sd = private_systemd()
    assert sd.run("systemd-run", "--unit", "ocirun-busy", "--", "sleep", "1000").returncode == 0
    pid1, dirs = sd.pid1, sd.host_cgroup_dirs()
    assert all(os.path.isdir(d) for d in dirs)
    report = sd.down()
    assert report == {"left": []}, report
    assert not os.path.exists(f"/proc/{pid1}")
    assert [d for d in dirs if os.path.exists(d)] == []


def test_private_systemd_goes_when_the_test_process_dies(tmp_path):
    """SIGKILL of the process that booted it (a test run killed outright):
    the supervisor's parent-death signal powers it off and removes its
    cgroups; no finalizer runs."""
    from tests import systemd_ns

    why = systemd_ns.unavailable()
    if why:
        pytest.skip(why)
    code = ("import sys, time; sys.path.insert(0, %r)\n"
            "from tests.systemd_ns import PrivateSystemd\n"
            "sd = PrivateSystemd(%r).up()\n"
            "print(sd.pid1, *sd.host_cgroup_dirs(), flush=True)\n"
            "time.sleep(1000)\n" % (REPO, str(tmp_path / "sd")))
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline().split()
        assert line, "the child did not boot a private systemd"
        pid1, dirs = int(line[0]), line[1:]
        assert all(os.path.isdir(d) for d in dirs)
    finally:
        p.kill()
        p.wait()
    deadline = time.monotonic() + 30
    while (os.path.exists(f"/proc/{pid1}") or any(os.path.exists(d) for d in dirs)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{pid1}")
    assert [d for d in dirs if os.path.exists(d)] == []


def test_private_systemd_goes_when_the_test_run_is_interrupted(tmp_path):
    """Ctrl-C (SIGINT) in a pytest run whose test is inside a private
    systemd: nothing is left (pytest tears the private_systemd fixture
    down; were that skipped, the supervisor's parent-death signal would)."""
    from tests import systemd_ns

    why = systemd_ns.unavailable()
    if why:
        pytest.skip(why)
    (tmp_path / "test_interrupted.py").write_text(
        "import sys, time\n"
        f"sys.path.insert(0, {REPO!r})\n"
        "from tests.conftest import private_systemd  # noqa: F401 - the fixture\n\n"
        "def test_sleeps(private_systemd):\n"
        "    sd = private_systemd()\n"
        "    print('BOOTED', sd.pid1, *sd.host_cgroup_dirs(), flush=True)\n"
        "    time.sleep(1000)\n")
    p = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "--rootdir",
                          str(tmp_path), "--basetemp", str(tmp_path / "bt"), str(tmp_path / "test_interrupted.py")],
                         cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen = []
        for line in p.stdout:
            seen.append(line)
            if line.startswith("BOOTED"):
                break
        booted = [line for line in seen if line.startswith("BOOTED")]
        assert booted, "".join(seen)
        pid1, dirs = int(booted[0].split()[1]), booted[0].split()[2:]
        assert os.path.exists(f"/proc/{pid1}") and all(os.path.isdir(d) for d in dirs)
        p.send_signal(signal.SIGINT)
        rest = p.communicate(timeout=60)[0]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert "KeyboardInterrupt" in rest, rest
    assert not os.path.exists(f"/proc/{pid1}")
    assert [d for d in dirs if os.path.exists(d)] == []


# ------------------------------------------------------------ runc, the baseline

@pytest.fixture
def sd_env(env, private_systemd):
    """The env fixture's bundle and state root, inside a private systemd:
    env.cli runs ocirun in there; env.sd is the systemd."""
    env.sd = private_systemd(binds=[env.tmp])
    env.cmd = env.sd.cmd(*env.cmd)
    # no cgroup namespace: the container's /proc/self/cgroup names its unit
    env.cfg["linux"]["namespaces"] = [n for n in env.cfg["linux"]["namespaces"] if n["type"] != "cgroup"]
    return env


def runc_in(env, *args):
    return run_in(env.sd, RUNC, "--root", os.path.join(env.tmp, "runc"), "--systemd-cgroup", *args)


def cli_for(env, runtime):
    """The runtime's CLI inside the private systemd, with --systemd-cgroup on
    every call (as engines pass it)."""
    if runtime == "runc":
        if RUNC is None:
            pytest.skip("runc is not installed")
        return lambda *a: runc_in(env, *a)
    return lambda *a: env.cli("--systemd-cgroup", *a)


def cli_argv(env, runtime, *args):
    """The argv cli_for(env, runtime) runs, for a command run in the background."""
    if runtime == "runc":
        return env.sd.cmd(RUNC, "--root", os.path.join(env.tmp, "runc"), "--systemd-cgroup", *args)
    return list(env.cmd) + ["--root", env.root, "--systemd-cgroup", *args]


def state_of(cli, cid):
    r = cli("state", cid)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def host_cgroup(env, cgpath):
    """The container's cgroup2 directory as the host sees it."""
    return os.path.join(env.sd.host_v2_dir(), "payload", cgpath.lstrip("/"))


PATHS = [  # cgroupsPath, Slice=, unit, ControlGroup=
    (None, "system.slice", "{rt}-{id}.scope", "/system.slice/{rt}-{id}.scope"),
    ("machine.slice:{rt}:{id}", "machine.slice", "{rt}-{id}.scope", "/machine.slice/{rt}-{id}.scope"),
    ("a-b.slice:pfx:{id}", "a-b.slice", "pfx-{id}.scope", "/a.slice/a-b.slice/pfx-{id}.scope"),
    ("-.slice:pfx:{id}", "-.slice", "pfx-{id}.scope", "/pfx-{id}.scope"),
]


@pytest.mark.parametrize("runtime", ["runc", "ocirun"])
@pytest.mark.parametrize("path, slice_, unit, cgpath", PATHS, ids=["default", "machine", "nested", "root"])
def test_systemd_cgroup_lifecycle(sd_env, runtime, path, slice_, unit, cgpath):
    """create/start/exec/ps/pause/resume/events/kill/delete with
    --systemd-cgroup: the unit, its slice and delegation as systemd reports
    them, the container's own /proc/self/cgroup, exec in the same unit, the
    freeze seen in the group's cgroup.events, and after delete no unit and
    no group."""
    env = sd_env
    cli = cli_for(env, runtime)
    cid = env.new_id(runtime)
    unit, cgpath = (x.format(rt=runtime, id=cid) for x in (unit, cgpath))
    if path:
        env.cfg["linux"]["cgroupsPath"] = path.format(rt=runtime, id=cid)
    env.cfg["process"]["args"] = ["sh", "-c", "cat /proc/self/cgroup > /dev/shm/cg; exec sleep 100"]
    env.write()
    r = cli("create", "-b", env.bundle, cid)
    assert r.returncode == 0, r.stderr
    try:
        props = show(env.sd, unit, "Delegate", "Slice", "ControlGroup", "ActiveState")
        assert props == {"Delegate": "yes", "Slice": slice_, "ControlGroup": cgpath, "ActiveState": "active"}, props
        assert os.path.isdir(host_cgroup(env, cgpath))
        assert cli("start", cid).returncode == 0
        r = cli("exec", cid, "sh", "-c", "i=0; while [ ! -s /dev/shm/cg ] && [ $i -lt 400 ]; do sleep 0.05; "
                "i=$((i+1)); done; cat /dev/shm/cg; echo ==; cat /proc/self/cgroup")
        assert r.returncode == 0, r.stderr
        init_cg, exec_cg = r.stdout.split("==")
        assert own_cgroup(init_cg) == [cgpath], r.stdout
        assert own_cgroup(exec_cg) == [cgpath], r.stdout
        r = cli("ps", cid)
        assert r.returncode == 0 and "sleep" in r.stdout, r.stdout + r.stderr

        assert cli("pause", cid).returncode == 0
        assert state_of(cli, cid)["status"] == "paused"
        with open(os.path.join(host_cgroup(env, cgpath), "cgroup.events")) as f:
            assert "frozen 1" in f.read().splitlines()
        assert cli("resume", cid).returncode == 0
        assert state_of(cli, cid)["status"] == "running"
        with open(os.path.join(host_cgroup(env, cgpath), "cgroup.events")) as f:
            assert "frozen 0" in f.read().splitlines()

        r = cli("events", "--stats", cid)
        assert r.returncode == 0, r.stderr
        ev = json.loads(r.stdout.splitlines()[0])
        assert ev["type"] == "stats" and ev["id"] == cid, ev

        assert cli("kill", cid, "KILL").returncode == 0
        wait_status(lambda c: state_of(cli, c), cid, "stopped")
    finally:
        r = cli("delete", "--force", cid)
    assert r.returncode == 0, r.stderr
    assert units(env.sd, unit) == []
    assert not os.path.exists(host_cgroup(env, cgpath))


@pytest.mark.parametrize("runtime", ["runc", "ocirun"])
def test_systemd_cgroup_run_foreground(sd_env, runtime):
    """run: the container's output, its exit status, its unit while it ran,
    and no unit once run returns."""
    env = sd_env
    cli = cli_for(env, runtime)
    cid = env.new_id(runtime)
    env.cfg["linux"]["cgroupsPath"] = f"machine.slice:{runtime}:{cid}"
    env.cfg["process"]["args"] = ["sh", "-c", "cat /proc/self/cgroup; exit 7"]
    env.write()
    r = cli("run", "-b", env.bundle, cid)
    assert r.returncode == 7, r.stderr
    assert own_cgroup(r.stdout) == [f"/machine.slice/{runtime}-{cid}.scope"], r.stdout
    assert units(env.sd, f"{runtime}-{cid}.scope") == []
    assert cli("list", "-q").stdout.split() == []


@pytest.mark.parametrize("runtime", ["runc", "ocirun"])
def test_systemd_cgroup_later_commands_without_the_flag(sd_env, runtime):
    """Only create has --systemd-cgroup: state, start, kill and delete
    (which ocirun's C front-end answers itself) still find the unit, and
    delete stops it."""
    env = sd_env
    cli = cli_for(env, runtime)
    plain = (lambda *a: run_in(env.sd, RUNC, "--root", os.path.join(env.tmp, "runc"), *a)) \
        if runtime == "runc" else env.cli
    cid = env.new_id(runtime)
    unit = f"{runtime}-{cid}.scope"
    env.cfg["linux"]["cgroupsPath"] = f"machine.slice:{runtime}:{cid}"
    env.cfg["process"]["args"] = ["sleep", "100"]
    env.write()
    r = cli("create", "-b", env.bundle, cid)
    assert r.returncode == 0, r.stderr
    try:
        assert state_of(plain, cid)["status"] == "created"
        assert plain("start", cid).returncode == 0
        assert state_of(plain, cid)["status"] == "running"
        assert show(env.sd, unit, "ActiveState") == {"ActiveState": "active"}
        assert plain("kill", cid, "KILL").returncode == 0
        wait_status(lambda c: state_of(plain, c), cid, "stopped")
    finally:
        r = plain("delete", "--force", cid)
    assert r.returncode == 0, r.stderr
    assert units(env.sd, unit) == []
    assert not os.path.exists(host_cgroup(env, f"/machine.slice/{unit}"))


@pytest.mark.parametrize("runtime", ["runc", "ocirun"])
def test_systemd_property_annotations(sd_env, runtime):
    """org.systemd.property.* annotations become the unit's properties, with
    their GVariant types (a uint64, a string, a boolean and xxxSec in
    seconds turned into xxxUSec)."""
    env = sd_env
    cli = cli_for(env, runtime)
    cid = env.new_id(runtime)
    env.cfg["linux"]["cgroupsPath"] = f"machine.slice:{runtime}:{cid}"
    env.cfg["annotations"] = {"org.systemd.property.TimeoutStopUSec": "uint64 123456789",
                              "org.systemd.property.CollectMode": "'inactive-or-failed'",
                              "org.systemd.property.SendSIGHUP": "true",
                              "org.systemd.property.RuntimeMaxSec": "3600"}
    env.cfg["process"]["args"] = ["sleep", "100"]
    env.write()
    r = cli("create", "-b", env.bundle, cid)
    assert r.returncode == 0, r.stderr
    try:
        props = show(env.sd, f"{runtime}-{cid}.scope", "TimeoutStopUSec", "CollectMode", "SendSIGHUP",
                     "RuntimeMaxUSec", "Delegate")
    finally:
        r = cli("delete", "--force", cid)
    assert r.returncode == 0, r.stderr
    assert props == {"TimeoutStopUSec": "2min 3.456789s", "CollectMode": "inactive-or-failed", "SendSIGHUP": "yes",
                     "RuntimeMaxUSec": "1h", "Delegate": "yes"}, props
    assert units(env.sd, f"{runtime}-{cid}.scope") == []


# ------------------------------------------------------------ enforcement (hybrid)

@pytest.fixture
def sd_hybrid_env(env, private_systemd):
    """sd_env with a legacy/hybrid private systemd over sub-trees of the
    host's cgroup v1 hierarchies: the limits systemd sets are enforced."""
    env.sd = private_systemd(binds=[env.tmp], mode="hybrid")
    env.cmd = env.sd.cmd(*env.cmd)
    env.cfg["linux"]["namespaces"] = [n for n in env.cfg["linux"]["namespaces"] if n["type"] != "cgroup"]
    return env


LIMITED = ("exec > /out/log 2>&1; cat /proc/self/cgroup; "
           "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes; "
           "dd if=/dev/zero of=/dev/shm/fill bs=1M count=96 2>/dev/null; echo dd=$?; rm -f /dev/shm/fill; "
           "(i=0; while [ $i -lt 12 ]; do sleep 100 & i=$((i+1)); done); echo done > /out/done; exec sleep 100")


def out_mount(env):
    """A host directory the container writes its observations to (/out)."""
    out = os.path.join(env.tmp, "out")
    os.makedirs(out, exist_ok=True)
    env.cfg["mounts"].append({"destination": "/out", "type": "bind", "source": out, "options": ["rbind", "rw"]})
    return out


def memory_limit(props):
    """The memory limit systemd recorded, whichever property the runtime
    used on cgroup v1 (runc: MemoryLimit; MemoryMax applies there too)."""
    return {v for k, v in props.items() if k in ("MemoryLimit", "MemoryMax") and v != "infinity"}


@pytest.mark.parametrize("runtime", ["runc", "ocirun"])
def test_systemd_cgroup_limits_enforced_on_hybrid(sd_hybrid_env, runtime):
    """linux.resources through systemd on cgroup v1: the unit records
    them and the kernel enforces them (fork fails at the pids limit, dd is
    OOM-killed at the memory limit)."""
    env = sd_hybrid_env
    cli = cli_for(env, runtime)
    cid = env.new_id(runtime)
    unit = f"{runtime}-{cid}.scope"
    out = out_mount(env)
    env.cfg["linux"]["cgroupsPath"] = f"machine.slice:{runtime}:{cid}"
    env.cfg["linux"]["resources"].update({"pids": {"limit": 8}, "memory": {"limit": 32 << 20}})
    env.cfg["process"]["args"] = ["sh", "-c", LIMITED]
    env.write()
    r = cli("run", "-d", "-b", env.bundle, cid)
    assert r.returncode == 0, r.stderr
    try:
        assert env.wait_file(os.path.join(out, "done")) == "done\n"
        props = show(env.sd, unit, "TasksMax", "MemoryLimit", "MemoryMax", "Delegate", "Slice")
    finally:
        r = cli("delete", "--force", cid)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(out, "log")) as f:
        log = f.read()
    lines = log.splitlines()
    assert f"0::/machine.slice/{unit}" in lines and f"4:memory:/machine.slice/{unit}" in lines, log
    assert "8" in lines and str(32 << 20) in lines, log          # pids.max, memory.limit_in_bytes
    assert "can't fork" in log, log
    assert "dd=137" in lines, log                                 # OOM-killed at 32 MiB, not 96
    assert props["TasksMax"] == "8" and memory_limit(props) == {str(32 << 20)}, props
    assert props["Delegate"] == "yes" and props["Slice"] == "machine.slice", props
    assert units(env.sd, unit) == []


@pytest.mark.parametrize("runtime", ["runc", "ocirun"])
def test_systemd_cgroup_update_on_hybrid(sd_hybrid_env, runtime):
    """update through systemd: the unit's properties change and the
    container sees (and is held to) the new limits."""
    env = sd_hybrid_env
    cli = cli_for(env, runtime)
    cid = env.new_id(runtime)
    unit = f"{runtime}-{cid}.scope"
    env.cfg["linux"]["cgroupsPath"] = f"machine.slice:{runtime}:{cid}"
    env.cfg["linux"]["resources"].update({"pids": {"limit": 8}, "memory": {"limit": 32 << 20},
                                          "cpu": {"shares": 512}})
    env.cfg["process"]["args"] = ["sleep", "100"]
    env.write()
    files = ("/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes",
             "/sys/fs/cgroup/cpu/cpu.shares")
    r = cli("run", "-d", "-b", env.bundle, cid)
    assert r.returncode == 0, r.stderr
    try:
        before = show(env.sd, unit, "TasksMax", "MemoryLimit", "MemoryMax", "CPUShares")
        seen_before = cli("exec", cid, "cat", *files)
        r = cli("update", "--pids-limit", "20", "--memory", str(64 << 20), "--cpu-share", "256", cid)
        assert r.returncode == 0, r.stderr
        props = show(env.sd, unit, "TasksMax", "MemoryLimit", "MemoryMax", "CPUShares")
        r = cli("exec", cid, "cat", *files)
    finally:
        d = cli("delete", "--force", cid)
    assert d.returncode == 0, d.stderr
    assert seen_before.stdout.split() == ["8", str(32 << 20), "512"], seen_before.stdout + seen_before.stderr
    assert before["TasksMax"] == "8" and before["CPUShares"] == "512", before
    assert memory_limit(before) == {str(32 << 20)}, before
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["20", str(64 << 20), "256"], r.stdout
    assert props["TasksMax"] == "20" and props["CPUShares"] == "256", props
    assert memory_limit(props) == {str(64 << 20)}, props
    assert units(env.sd, unit) == []


@pytest.mark.parametrize("runtime", ["runc", "ocirun"])
@pytest.mark.parametrize("mode", ["unified", "hybrid"])
def test_systemd_device_rules(env, private_systemd, runtime, mode):
    """linux.resources.devices through systemd (DevicePolicy=strict and the
    unit's DeviceAllow, eBPF on cgroup2, the devices controller on v1): a
    node the container has but no rule allows cannot be opened, one a rule
    allows can."""
    env.sd = private_systemd(binds=[env.tmp], mode=mode)
    env.cmd = env.sd.cmd(*env.cmd)
    env.cfg["linux"]["namespaces"] = [n for n in env.cfg["linux"]["namespaces"] if n["type"] != "cgroup"]
    cli = cli_for(env, runtime)
    cid = env.new_id(runtime)
    unit = f"{runtime}-{cid}.scope"
    env.cfg["linux"]["cgroupsPath"] = f"machine.slice:{runtime}:{cid}"
    env.cfg["linux"]["devices"] = [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666, "uid": 0, "gid": 0},
        {"path": "/dev/loop-control", "type": "c", "major": 10, "minor": 237, "fileMode": 0o666, "uid": 0, "gid": 0}]
    env.cfg["linux"]["resources"]["devices"].append({"allow": True, "type": "c", "major": 10, "minor": 229,
                                                     "access": "rw"})
    out = out_mount(env)
    env.cfg["process"]["args"] = ["sh", "-c", "exec > /out/log 2>&1; for d in /dev/fuse /dev/loop-control /dev/null; "
                                  "do (: < $d) && echo $d-ok; done; echo done > /out/done; exec sleep 100"]
    env.write()
    r = cli("run", "-d", "-b", env.bundle, cid)
    assert r.returncode == 0, r.stderr
    try:
        assert env.wait_file(os.path.join(out, "done")) == "done\n"
        props = show(env.sd, unit, "DevicePolicy", "DeviceAllow")
    finally:
        d = cli("delete", "--force", cid)
    assert d.returncode == 0, d.stderr
    with open(os.path.join(out, "log")) as f:
        log = f.read()
    assert "/dev/fuse-ok" in log.splitlines() and "/dev/null-ok" in log.splitlines(), log
    assert "/dev/loop-control-ok" not in log and "Operation not permitted" in log, log
    assert props["DevicePolicy"] == "strict", props
    allowed = props["DeviceAllow"].splitlines()
    assert "char-10:229 rw" in allowed or "/dev/char/10:229 rw" in allowed, props
    assert not [a for a in allowed if "10:237" in a], props
    assert units(env.sd, unit) == []


# ------------------------------------------------------------ a read-only /proc/sys

@pytest.mark.parametrize("runtime", [
    "runc",
    pytest.param("ocirun", marks=pytest.mark.xfail(strict=True, reason=(
        "ocirun-init writes linux.sysctl through the runtime's own /proc with RESOLVE_NO_XDEV: a read-only "
        "/proc/sys bind (systemd-nspawn, unprivileged containers) gives EXDEV; runc writes through the "
        "container's fresh /proc"))),
])
def test_sysctl_under_a_readonly_proc_sys(env, private_systemd, runtime):
    """A runtime run inside systemd-nspawn or a container sees /proc/sys
    bound read-only; a container's own (namespaced) sysctls still apply, as
    dockerd's net.ipv4.ip_unprivileged_port_start=0 on every container."""
    env.sd = private_systemd(binds=[env.tmp], readonly_proc_sys=True)
    env.cmd = env.sd.cmd(*env.cmd)
    cli = (lambda *a: run_in(env.sd, RUNC, "--root", os.path.join(env.tmp, "runc"), *a)) if runtime == "runc" \
        else env.cli
    if runtime == "runc" and RUNC is None:
        pytest.skip("runc is not installed")
    assert env.sd.run("sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_unprivileged_port_start").returncode != 0
    env.cfg["linux"]["sysctl"] = {"net.ipv4.ip_unprivileged_port_start": "0"}
    env.cfg["process"]["args"] = ["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"]
    env.write()
    r = cli("run", "-b", env.bundle, env.new_id(runtime))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0"], r.stdout


@pytest.mark.parametrize("runtime", ["runc", "ocirun"])
def test_systemd_cgroup_events_oom_on_hybrid(sd_hybrid_env, runtime):
    """events: the OOM kill in the container's unit is reported."""
    env = sd_hybrid_env
    cli = cli_for(env, runtime)
    cid = env.new_id(runtime)
    out = out_mount(env)
    env.cfg["linux"]["cgroupsPath"] = f"machine.slice:{runtime}:{cid}"
    env.cfg["linux"]["resources"].update({"memory": {"limit": 32 << 20}})
    env.cfg["process"]["args"] = ["sh", "-c", "while [ ! -e /out/go ]; do sleep 0.05; done; "
                                  "dd if=/dev/zero of=/dev/shm/fill bs=1M count=96 2>/dev/null; echo dd=$? > /out/dd; "
                                  "rm -f /dev/shm/fill; sleep 100"]
    env.write()
    r = cli("run", "-d", "-b", env.bundle, cid)
    assert r.returncode == 0, r.stderr
    with tempfile.TemporaryFile() as evout:
        ev = subprocess.Popen(cli_argv(env, runtime, "events", cid), stdout=evout, stderr=subprocess.STDOUT)
        try:
            time.sleep(0.5)  # let events subscribe before the OOM (a missed one fails the test, never passes it)
            open(os.path.join(out, "go"), "w").close()
            assert env.wait_file(os.path.join(out, "dd")) == "dd=137\n"
        finally:
            r = cli("delete", "--force", cid)
            try:  # events ends with its container
                ev.wait(timeout=30)
            finally:
                if ev.poll() is None:
                    ev.kill()
                    ev.wait()
        evout.seek(0)
        text = evout.read().decode(errors="replace")
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert any(e["type"] == "oom" and e["id"] == cid for e in events), text
