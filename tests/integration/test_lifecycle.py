"""runtime.md lifecycle and runc's CLI contract, on real containers."""

import json
import os
import signal
import subprocess
import time

import pytest

from tests.conftest import schema_validator


def test_create_start_state_kill_delete(env):
    pid_file = os.path.join(env.tmp, "init.pid")
    cid = env.create(["sleep", "100"], extra=("--pid-file", pid_file))
    st = env.state(cid)
    assert st["status"] == "created" and st["pid"] > 0
    assert st["bundle"] == env.bundle and st["rootfs"] == env.rootfs
    with open(pid_file) as f:
        content = f.read()
    assert content == str(st["pid"])  # digits only, no newline
    # the init is parked in the container, blocked before user code
    with open(f"/proc/{st['pid']}/cmdline", "rb") as f:
        assert f.read().startswith(b"ocirun-init")
    assert os.readlink(f"/proc/{st['pid']}/ns/pid") != os.readlink("/proc/self/ns/pid")
    r = env.cli("start", cid)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == ""
    st = env.state(cid)
    assert st["status"] == "running"
    with open(f"/proc/{st['pid']}/cmdline", "rb") as f:
        assert f.read() == b"sleep\x00100\x00"
    assert env.cli("kill", cid, "KILL").returncode == 0
    env.wait_status(cid)
    st = env.state(cid)
    assert st["status"] == "stopped" and st["pid"] == 0
    assert env.cli("delete", cid).returncode == 0
    r = env.cli("state", cid)
    assert r.returncode == 1 and "container does not exist" in r.stderr


def test_state_output_shape_and_schema(env):
    validator = schema_validator("state.json")  # skips, if it must, before anything exists
    env.cfg["annotations"] = {"org.example.key": "value1"}
    cid = env.create()
    r = env.cli("state", cid)
    assert not r.stdout.endswith("\n")
    st = json.loads(r.stdout)
    assert list(st) == ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "annotations", "owner"]
    assert r.stdout.startswith('{\n  "ociVersion"')
    assert st["annotations"] == {"org.example.key": "value1"}
    validator.validate(st)
    assert not validator.is_valid(dict(st, pid=0)), "a created container must have a pid"
    assert env.cli("delete", cid).returncode == 0  # created: deleted without --force


def test_invalid_transitions(env):
    cid = env.create(["sleep", "100"])
    r = env.cli("create", "-b", env.bundle, cid)
    assert r.returncode == 1 and "container with given ID already exists" in r.stderr
    assert env.cli("start", cid).returncode == 0
    r = env.cli("start", cid)
    assert r.returncode == 1 and "cannot start an already running container" in r.stderr
    r = env.cli("delete", cid)
    assert r.returncode == 1 and "that is not stopped: running" in r.stderr
    assert env.cli("kill", cid, "9").returncode == 0
    time.sleep(0.2)
    r = env.cli("kill", cid, "TERM")
    assert r.returncode == 1 and "container not running" in r.stderr
    r = env.cli("start", cid)
    assert r.returncode == 1 and "cannot start a container that has stopped" in r.stderr
    assert env.cli("delete", cid).returncode == 0
    r = env.cli("kill", cid)
    assert r.returncode == 1 and "container does not exist" in r.stderr
    r = env.cli("delete", cid)
    assert r.returncode == 1 and "container does not exist" in r.stderr
    assert env.cli("delete", "--force", cid).returncode == 0  # engines' cleanup call


def test_delete_force_running(env):
    cid = env.create(["sleep", "100"])
    env.cli("start", cid)
    pid = env.state(cid)["pid"]
    r = env.cli("delete", "--force", cid)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(f"/proc/{pid}/stat") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"


def test_run_exit_codes_and_stdio(env):
    r = env.sh("echo out; echo err >&2; read x; echo got-$x; exit 7", input="line\n")
    assert r.returncode == 7
    assert r.stdout == "out\ngot-line\n" and r.stderr == "err\n"
    # pid 1 cannot SIGKILL itself from inside its namespace: kill from outside
    env.cfg["process"]["args"] = ["sh", "-c", "echo ready; sleep 100"]
    env.write()
    cid = env.new_id()
    p = subprocess.Popen(env.cmd + ["--root", env.root, "run", "-b", env.bundle, cid], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    assert env.cli("kill", cid, "KILL").returncode == 0
    p.communicate(timeout=10)
    assert p.returncode == 137


def test_run_forwards_signals(env):
    env.cfg["process"]["args"] = ["sh", "-c", "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.1; done"]
    env.write()
    cid = env.new_id()
    p = subprocess.Popen(env.cmd + ["--root", env.root, "run", "-b", env.bundle, cid], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=10)
    assert out == "got-term\n" and p.returncode == 3


def test_run_detach_and_keep(env):
    env.cfg["process"]["args"] = ["sleep", "100"]
    env.write()
    cid = env.new_id()
    r = env.cli("run", "-d", "-b", env.bundle, cid)
    assert r.returncode == 0, r.stderr
    assert env.state(cid)["status"] == "running"
    assert env.cli("delete", "-f", cid).returncode == 0
    cid = env.new_id()
    env.cfg["process"]["args"] = ["true"]
    env.write()
    assert env.cli("run", "--keep", "-b", env.bundle, cid).returncode == 0
    assert env.state(cid)["status"] == "stopped"
    assert env.cli("delete", cid).returncode == 0


def test_created_init_reparented_to_subreaper(env):
    """After create returns, the init's parent is whoever adopts orphans."""
    script = f"""
import ctypes, os, subprocess, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
subprocess.run({env.cmd!r} + ["--root", {env.root!r}, "create", "-b", {env.bundle!r}, sys.argv[1]], check=True)
st = subprocess.run({env.cmd!r} + ["--root", {env.root!r}, "state", sys.argv[1]], capture_output=True, text=True).stdout
import json
pid = json.loads(st)["pid"]
ppid = int(open(f"/proc/{{pid}}/stat").read().rsplit(")", 1)[1].split()[1])
print(ppid == os.getpid())
"""
    env.cfg["process"]["args"] = ["sleep", "100"]
    env.write()
    cid = env.new_id()
    out = os.path.join(env.tmp, "out")
    with open(out, "w") as f:  # the init keeps create's stdio: no pipes
        subprocess.run(["python3", "-c", script, cid], stdout=f, stderr=subprocess.STDOUT, timeout=30)
    assert open(out).read().strip() == "True"
    assert env.cli("delete", "-f", cid).returncode == 0


def test_kill_signal_names_and_all(env):
    env.cfg["process"]["args"] = ["sh", "-c", "trap 'echo usr1 > /tmp/sig' USR1; while :; do sleep 0.1; done"]
    env.cfg["root"]["readonly"] = False
    env.write()
    cid = env.new_id()
    assert env.cli("run", "-d", "-b", env.bundle, cid).returncode == 0
    assert env.cli("kill", cid, "sigusr1").returncode == 0
    assert env.wait_file(os.path.join(env.rootfs, "tmp", "sig")) == "usr1\n"
    r = env.cli("kill", cid, "FOO")
    assert r.returncode == 1 and 'unknown signal' in r.stderr and 'FOO' in r.stderr
    assert env.cli("kill", "--all", cid, "9").returncode == 0
    env.wait_status(cid)
    assert env.state(cid)["status"] == "stopped"
    assert env.cli("kill", "--all", cid, "9").returncode == 0  # on a stopped container: success
    assert env.cli("delete", cid).returncode == 0


def test_list_formats(env):
    r = env.cli("list", "--format", "json")
    assert r.stdout == "null\n"
    cid = env.create()
    r = env.cli("list", "-f", "json")
    items = json.loads(r.stdout)
    assert [i["id"] for i in items] == [cid] and items[0]["owner"] == "root" and items[0]["status"] == "created"
    assert env.cli("list", "-q").stdout == cid + "\n"
    table = env.cli("list").stdout.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert table[1].split()[0] == cid
    assert env.cli("delete", cid).returncode == 0


def test_cgroup_created_and_removed(env):
    cid = env.create(["sleep", "100"])
    pid = env.state(cid)["pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        lines = f.read().splitlines()
    assert any(line.endswith("/" + cid) for line in lines), lines
    env.cli("delete", cid)
    for line in lines:
        _h, ctrl, path = line.split(":", 2)
        if ctrl.startswith("name="):
            ctrl = ctrl[5:]
        if ctrl and os.path.isdir(f"/sys/fs/cgroup/{ctrl}"):
            assert not os.path.exists(f"/sys/fs/cgroup/{ctrl}{path}")


def test_spec_command(env, tmp_path):
    d = tmp_path / "specdir"
    d.mkdir()
    r = env.cli("spec", "-b", str(d), root=False)
    assert r.returncode == 0, r.stderr
    cfg = json.loads((d / "config.json").read_text())
    schema_validator("config.json").validate(cfg)
    assert cfg["process"]["args"] == ["sh"] and cfg["process"]["terminal"] is True
    r = env.cli("spec", "-b", str(d), root=False)
    assert r.returncode == 1 and "File config.json exists" in r.stderr
    (d / "config.json").unlink()
    assert env.cli("spec", "--rootless", "-b", str(d), root=False).returncode == 0
    cfg = json.loads((d / "config.json").read_text())
    assert {"type": "user"} in cfg["linux"]["namespaces"]


def test_preserve_fds_and_fd_hygiene(env):
    """Only stdio and the preserved fds reach the container (G1): fd 3 is
    preserved, fd 7 and everything the caller leaked is not."""
    r_, w_ = os.pipe()
    leak = os.open("/etc/hostname", os.O_RDONLY)
    env.cfg["process"]["args"] = ["sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '; cat <&3"]
    env.write()
    cid = env.new_id()
    os.write(w_, b"via-fd3\n")
    os.close(w_)
    cmd = " ".join(env.cmd + ["--root", env.root, "run", "--preserve-fds", "1", "-b", env.bundle, cid])
    out = os.path.join(env.tmp, "out")
    try:
        with open(out, "w") as f:
            subprocess.run(["bash", "-c", f"exec {cmd} 3<&{r_} 7<&{leak}"], pass_fds=(r_, leak), stdout=f,
                           stderr=subprocess.STDOUT, timeout=30)
    finally:
        os.close(r_)
        os.close(leak)
    text = open(out).read()
    assert "via-fd3" in text, text
    fds = text.split("via-fd3")[0].split()
    # ls itself holds one fd for the directory it reads
    assert {"0", "1", "2", "3"} <= set(fds) and set(fds) - {"0", "1", "2", "3"} <= {"4"}, text


def _concurrent_runs(env, n, wrap=None):
    env.cfg["process"]["args"] = ["sh", "-c", "echo $$"]
    env.cfg["linux"].pop("resources", None)
    env.write()
    procs = []
    for _ in range(n):
        cmd = env.cmd + ["--root", env.root, "run", "-b", env.bundle, env.new_id()]
        procs.append(subprocess.Popen(wrap(cmd) if wrap else cmd, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    return results


def test_concurrent_runs(env):
    """Many containers at once: every one starts, reports pid 1, and goes
    away (the init used to race its own pid report under load)."""
    results = _concurrent_runs(env, 24)
    assert all(rc == 0 and out == "1\n" and err == "" for rc, out, err in results), \
        [r for r in results if r[0] != 0][:3]


def test_concurrent_runs_cgroup_v2(env):
    """The same on the cgroup v2 path (clone3 CLONE_INTO_CGROUP), in a
    private mount namespace with cgroup2 mounted."""
    def in_v2(cmd):
        return ["unshare", "-m", "sh", "-c",
                "umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && exec \"$@\"", "sh"] + cmd

    probe = subprocess.run(in_v2(["true"]), capture_output=True)
    if probe.returncode != 0:
        pytest.skip("cannot mount cgroup2 here")
    results = _concurrent_runs(env, 24, in_v2)
    assert all(rc == 0 and out == "1\n" and err == "" for rc, out, err in results), \
        [r for r in results if r[0] != 0][:3]


def test_crashed_create_is_cleaned_by_delete_force(env):
    """An engine call killed in the middle of create leaves nothing that
    `delete --force` cannot clean, and the id is usable again."""
    import signal as sig

    marker = os.path.join(env.tmp, "hook-running")
    hook = os.path.join(env.tmp, "slow-hook")
    with open(hook, "w") as f:
        f.write(f"#!/bin/sh\ntouch {marker}\nsleep 30\n")
    os.chmod(hook, 0o755)
    env.cfg["hooks"] = {"createRuntime": [{"path": hook}]}
    env.cfg["process"]["args"] = ["sleep", "100"]
    env.write()
    cid = env.new_id()
    out = open(os.path.join(env.tmp, "create.out"), "w")
    p = subprocess.Popen(env.cmd + ["--root", env.root, "create", "-b", env.bundle, cid], stdout=out, stderr=out,
                         start_new_session=True)
    for _ in range(200):
        if os.path.exists(marker):
            break
        time.sleep(0.05)
    assert os.path.exists(marker)
    os.killpg(p.pid, sig.SIGKILL)  # the runtime and its hook, as a dying engine would
    p.wait()
    out.close()
    # the id is known (the init noticed its runtime die and exited)
    assert env.state(cid)["status"] in ("stopped", "created")
    assert env.cli("delete", "--force", cid).returncode == 0
    # nothing left (the env fixture checks mounts, processes, cgroups, state)
    env.cfg["hooks"] = {}
    env.cfg["process"]["args"] = ["true"]
    env.write()
    assert env.cli("run", "-b", env.bundle, cid).returncode == 0


def test_run_with_a_taken_id_leaves_that_container_alone(env):
    """`run` fails on an id in use, and must not clean up what it did not
    create (it once force-deleted the other container on the way out)."""
    cid = env.create(["sleep", "100"])
    pid = env.state(cid)["pid"]
    r = env.run(["true"], cid=cid)
    assert r.returncode == 1 and "container with given ID already exists" in r.stderr, r.stderr
    st = env.state(cid)
    assert st["status"] == "created" and st["pid"] == pid
    assert env.cli("delete", "--force", cid).returncode == 0
