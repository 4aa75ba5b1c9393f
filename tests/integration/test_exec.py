"""`ocirun exec`: the new process observes the container's namespaces,
cgroup, user, capabilities and seccomp profile."""

import json
import os

import pytest

from tests.conftest import FdSocket, read_until


@pytest.fixture
def running(env):
    env.cfg["process"]["args"] = ["sleep", "1000"]
    env.cfg["root"]["readonly"] = False
    env.write()
    cid = env.new_id()
    r = env.cli("run", "-d", "-b", env.bundle, cid)
    assert r.returncode == 0, r.stderr
    yield cid
    env.cli("delete", "--force", cid)


def test_exec_joins_everything(env, running):
    pid = env.state(running)["pid"]
    r = env.cli("exec", running, "sh", "-c",
                "for n in pid net ipc uts mnt cgroup; do readlink /proc/self/ns/$n; done; "
                "cat /proc/self/cgroup; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; hostname")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    for i, n in enumerate(("pid", "net", "ipc", "uts", "mnt", "cgroup")):
        assert lines[i] == os.readlink(f"/proc/{pid}/ns/{n}"), n
    assert any(line.endswith(":/") for line in lines[6:])  # cgroupns root = the container's cgroup
    with open(f"/proc/{pid}/cgroup") as f:
        init_cg = f.read()
    assert "CapEff:\t0000000020000420" in r.stdout and "NoNewPrivs:\t1" in r.stdout
    assert lines[-1] == "ocirun"
    # the exec'd process sat in the init's cgroup on the host
    assert env.cli("exec", running, "true").returncode == 0
    assert init_cg


def test_exec_flags(env, running):
    r = env.cli("exec", "-u", "1000:1001", "-g", "7", "--cwd", "/tmp", "-e", "FOO=bar", "--cap", "CAP_CHOWN",
                running, "sh", "-c", "id -u; id -g; id -G; pwd; echo $FOO; grep CapBnd /proc/self/status")
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[:5] == ["1000", "1001", "1001 7", "/tmp", "bar"]
    assert int(out[5].split()[1], 16) & 1  # CAP_CHOWN added to the bounding set


def test_exec_exit_codes_and_errors(env, running):
    assert env.cli("exec", running, "sh", "-c", "exit 42").returncode == 42
    r = env.cli("exec", running, "nosuchcmd")
    assert r.returncode == 255 and "exec failed" in r.stderr and "executable file not found in $PATH" in r.stderr
    r = env.cli("exec", "missing-ct", "true")
    assert r.returncode == 255 and "container does not exist" in r.stderr
    r = env.cli("exec", "-u", "root", running, "true")
    assert r.returncode == 255 and "--user" in r.stderr
    proc = os.path.join(env.tmp, "bad.json")
    with open(proc, "w") as f:
        f.write('{"args": [], "cwd": "/"}')
    r = env.cli("exec", "-p", proc, running)
    assert r.returncode == 255 and "process.args" in r.stderr
    r = env.cli("exec", "--console-socket", "/nonexistent.sock", running, "true")
    assert r.returncode == 255 and "console socket" in r.stderr


def test_exec_process_json_detach_pid_file(env, running):
    proc = os.path.join(env.tmp, "process.json")
    with open(proc, "w") as f:
        json.dump({"args": ["sh", "-c", "echo $X > /tmp/from-exec; sleep 100"], "cwd": "/", "env": ["X=42", "PATH=/bin"],
                   "user": {"uid": 0, "gid": 0}}, f)
    pid_file = os.path.join(env.tmp, "exec.pid")
    r = env.cli("exec", "-p", proc, "--detach", "--pid-file", pid_file, running)
    assert r.returncode == 0, r.stderr
    pid = int(open(pid_file).read())
    assert env.wait_file(os.path.join(env.rootfs, "tmp", "from-exec")) == "42\n"
    assert os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink(f"/proc/{env.state(running)['pid']}/ns/mnt")


def _cap_sets(text):
    st = dict(line.split(":\t") for line in text.splitlines() if line.startswith("Cap"))
    return {k: int(st[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}


def _exec_process_file(env, cid, caps=None):
    proc = {"args": ["grep", "-E", "^Cap", "/proc/self/status"], "cwd": "/", "env": ["PATH=/bin"],
            "user": {"uid": 0, "gid": 0}}
    if caps is not None:
        proc["capabilities"] = caps
    path = os.path.join(env.tmp, "caps-process.json")
    with open(path, "w") as f:
        json.dump(proc, f)
    r = env.cli("exec", "-p", path, cid)
    assert r.returncode == 0, r.stderr
    return _cap_sets(r.stdout)


def test_exec_without_capabilities_gets_the_containers_sets(env, running):
    """exec --process without capabilities: the container's own sets, as the
    config gave them to the init (runc), never the runtime's."""
    want = (1 << 29) | (1 << 5) | (1 << 10)  # the default config: AUDIT_WRITE, KILL, NET_BIND_SERVICE
    got = _exec_process_file(env, running)
    assert got == {"CapInh": 0, "CapPrm": want, "CapEff": want, "CapBnd": want, "CapAmb": 0}, got
    got = _exec_process_file(env, running, {"bounding": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"]})
    assert got == {"CapInh": 0, "CapPrm": 1, "CapEff": 1, "CapBnd": 1, "CapAmb": 0}, got  # root: eff = prm at execve


def test_exec_into_a_container_without_capabilities(env):
    """The container's config has no capabilities: exec --process without
    them, and exec without --process and --cap, get all five sets empty;
    --cap adds to nothing."""
    del env.cfg["process"]["capabilities"]
    cid = env.create(["sleep", "100"])
    assert set(_exec_process_file(env, cid).values()) == {0}
    r = env.cli("exec", cid, "grep", "-E", "^Cap", "/proc/self/status")
    assert r.returncode == 0, r.stderr
    assert set(_cap_sets(r.stdout).values()) == {0}, r.stdout
    r = env.cli("exec", "--cap", "CAP_CHOWN", cid, "grep", "-E", "^Cap", "/proc/self/status")
    assert r.returncode == 0, r.stderr
    assert _cap_sets(r.stdout) == {"CapInh": 0, "CapPrm": 1, "CapEff": 1, "CapBnd": 1, "CapAmb": 0}, r.stdout
    assert env.cli("delete", "--force", cid).returncode == 0


def test_exec_validates_the_id_before_reading_anything(env, running):
    """`exec ../x`: the id is refused before <root>/../x/config.json is read
    (here a fifo nobody writes: reading it would block)."""
    outside = os.path.join(os.path.dirname(env.root), "x")
    os.mkdir(outside)
    os.mkfifo(os.path.join(outside, "config.json"))
    r = env.cli("exec", "../x", "true", timeout=20)
    assert r.returncode != 0 and r.stderr.count("\n") == 1 and "invalid container ID format" in r.stderr, r.stderr


def test_exec_into_stopped_container(env):
    env.cfg["process"]["args"] = ["true"]
    env.write()
    cid = env.new_id()
    assert env.cli("run", "--keep", "-b", env.bundle, cid).returncode == 0
    r = env.cli("exec", cid, "true")
    assert r.returncode == 255 and "cannot exec in a stopped container" in r.stderr
    assert env.cli("delete", cid).returncode == 0


def test_exec_into_created_container(env):
    cid = env.create(["sleep", "100"])
    r = env.cli("exec", cid, "cat", "/proc/1/cmdline")
    assert r.returncode == 0 and r.stdout.startswith("ocirun-init"), (r.stdout, r.stderr)
    assert env.cli("delete", cid).returncode == 0


def test_exec_gets_the_container_seccomp_profile(env):
    env.cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                                   "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    env.cfg["process"]["args"] = ["sleep", "100"]
    env.cfg["root"]["readonly"] = False
    env.write()
    cid = env.new_id()
    assert env.cli("run", "-d", "-b", env.bundle, cid).returncode == 0
    r = env.cli("exec", cid, "sh", "-c", "grep ^Seccomp: /proc/self/status; mkdir /tmp/d 2>&1; echo rc=$?")
    assert "Seccomp:\t2" in r.stdout and "rc=1" in r.stdout and "Operation not permitted" in r.stdout
    assert env.cli("delete", "-f", cid).returncode == 0


def test_exec_tty_console_socket(env, running, console_socket):
    r = env.cli("exec", "-t", "-d", "--console-socket", console_socket.path, running, "sh", "-c",
                "tty; echo end; sleep 1")
    assert r.returncode == 0, r.stderr
    msg, master = console_socket.receive()
    assert msg == b"/dev/ptmx"
    assert b"/dev/pts/" in read_until(master, b"end")


def test_exec_preserve_fds(env, running):
    import subprocess

    r_, w_ = os.pipe()
    os.write(w_, b"preserved\n")
    os.close(w_)
    out = os.path.join(env.tmp, "out")
    cmd = " ".join(env.cmd + ["--root", env.root, "exec", "--preserve-fds", "1", running, "sh", "-c", "'cat <&3'"])
    with open(out, "w") as f:
        subprocess.run(["bash", "-c", f"exec {cmd} 3<&{r_}"], pass_fds=(r_,), stdout=f, stderr=subprocess.STDOUT,
                       timeout=30)
    os.close(r_)
    assert open(out).read() == "preserved\n"


def test_pidfd_socket(env, running, tmp_path):
    """--pidfd-socket: a pidfd of the new process, payload "setns" for exec
    and "standard" for the init (runc 1.2)."""
    for payload, args in ((b"setns", ["exec", "-d", "--pidfd-socket", None, running, "sleep", "5"]),
                          (b"standard", None)):
        path = str(tmp_path / f"{payload.decode()}.sock")
        srv = FdSocket(path)
        if args:
            args[3] = path
            r = env.cli(*args)
        else:
            env.cfg["process"]["args"] = ["sleep", "5"]
            env.write()
            cid = env.new_id()
            r = env.cli("create", "--pidfd-socket", path, "-b", env.bundle, cid)
        assert r.returncode == 0, r.stderr
        msg, fd = srv.receive()
        assert msg == payload
        pid = int([line for line in open(f"/proc/self/fdinfo/{fd}") if line.startswith("Pid:")][0].split()[1])
        assert open(f"/proc/{pid}/cmdline").read().split("\0")[0] in ("sleep", "ocirun-init")
        srv.close()
        if not args:
            assert env.state(cid)["pid"] == pid
            env.cli("delete", "-f", cid)


def test_exec_into_paused_container(env, running):
    assert env.cli("pause", running).returncode == 0
    try:
        assert env.state(running)["status"] == "paused"
        r = env.cli("exec", running, "true")
        assert r.returncode == 255
        assert "cannot exec in a paused container (use --ignore-paused to override)" in r.stderr
    finally:
        assert env.cli("resume", running).returncode == 0
    assert env.cli("exec", running, "true").returncode == 0


def test_exec_into_user_namespace(env):
    """exec joins the container's user namespace first (setns with the pidfd
    does the ordering) and becomes its root."""

    env.use_userns()
    env.cfg["process"]["args"] = ["sleep", "100"]
    env.write()
    cid = env.new_id()
    r = env.cli("run", "-d", "-b", env.bundle, cid)
    assert r.returncode == 0, r.stderr
    try:
        pid = env.state(cid)["pid"]
        r = env.cli("exec", cid, "sh", "-c", "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user")
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert lines[0] == "0" and lines[1].split() == ["0", "100000", "65536"]
        assert lines[2] == os.readlink(f"/proc/{pid}/ns/user")
    finally:
        env.cli("delete", "-f", cid)


def test_env_last_value_wins_and_exec_env_overrides_path(env):
    """A name twice in process.env: the last value, once (runc).  exec
    --env PATH=... replaces the container's PATH, and args[0] is looked up
    on it."""
    env.cfg["process"]["env"] = ["FOO=first", "PATH=/usr/bin:/bin", "BAR=x", "FOO=last"]
    os.makedirs(os.path.join(env.rootfs, "xbin"))
    with open(os.path.join(env.rootfs, "xbin", "hello"), "w") as f:
        f.write('#!/bin/sh\necho "PATH=$PATH"\nenv | grep -c "^PATH="\n')
    os.chmod(os.path.join(env.rootfs, "xbin", "hello"), 0o755)
    r = env.sh("env | grep -E '^(FOO|BAR|PATH)=' | sort")
    assert r.stdout.split() == ["BAR=x", "FOO=last", "PATH=/usr/bin:/bin"], r.stdout + r.stderr
    env.cfg["process"]["args"] = ["sleep", "1000"]
    env.write()
    cid = env.new_id()
    assert env.cli("run", "-d", "-b", env.bundle, cid).returncode == 0
    try:
        r = env.cli("exec", "--env", "PATH=/xbin", cid, "hello")
        assert r.returncode == 0 and r.stdout.split() == ["PATH=/xbin", "1"], (r.stdout, r.stderr)
        r = env.cli("exec", "-e", "FOO=exec", cid, "/bin/sh", "-c", "env | grep ^FOO=")
        assert r.stdout.split() == ["FOO=exec"], r.stdout
    finally:
        env.cli("delete", "--force", cid)


def test_exec_tty_owned_by_exec_user(env, running, console_socket):
    r = env.cli("exec", "-t", "-d", "--user", "1000:1000", "--console-socket", console_socket.path, running, "sh",
                "-c", "stat -c owner=%u:%g $(tty); echo end; sleep 1")
    assert r.returncode == 0, r.stderr
    _msg, master = console_socket.receive()
    out = read_until(master, b"end")
    assert b"owner=1000:5" in out, out
