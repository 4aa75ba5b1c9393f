"""The warm path (ocirun/warm.py, csrc/front/warm.c): what it must keep of
the cold path's contract, and whom it must refuse.  These tests set
OCIRUN_WARM themselves; the whole suite also runs with OCIRUN_WARM=1 in CI."""

import json
import os
import subprocess
import sys
import time

import pytest


def _env(warm, idle="5", **extra):
    e = dict(os.environ, OCIRUN_WARM="1" if warm else "0", OCIRUN_WARM_IDLE=idle)
    e.update(extra)
    return e


def _status(env, **kw):
    return env.cli("warm", "status", env=_env(True, **kw))


def _server_pid(env):
    r = _status(env)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.split()[1].rstrip(","))


def _build(env):
    r = _status(env)
    assert r.returncode == 0, r.stderr
    return r.stdout.split("build ")[1].split(",")[0]


@pytest.fixture
def warm(env):
    r = env.cli("warm", "start", env=_env(True, idle="30"))
    if r.returncode != 0 and "only an installed ocirun" in r.stderr:
        pytest.skip(r.stderr.strip())
    assert r.returncode == 0, r.stderr
    yield env
    env.cli("warm", "stop", env=_env(True))


def _no_pidns(env):
    env.cfg["linux"]["namespaces"] = [n for n in env.cfg["linux"]["namespaces"] if n["type"] != "pid"]


@pytest.mark.parametrize("warm_on", [True, False])
def test_the_init_is_the_ocirun_process_child_in_both_modes(warm, warm_on):
    """Engines' subreapers adopt the init when `ocirun` exits: it must be
    that process's child, warm or cold; and warm mode says it served."""
    env = warm
    _no_pidns(env)  # PPid is then a host pid
    env.cfg["process"]["args"] = ["sh", "-c", "grep PPid /proc/$$/status; grep 'core file' /proc/$$/limits"]
    env.write()
    log = os.path.join(env.tmp, "log")
    cid = env.new_id()
    p = subprocess.Popen(env.cmd + ["--root", env.root, "--debug", "--log", log, "run", "-b", env.bundle, cid],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(warm_on),
                         preexec_fn=lambda: __import__("resource").setrlimit(4, (1234567, -1)))
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    lines = out.decode().split()
    assert lines[:2] == ["PPid:", str(p.pid)], out
    assert "1234567" in lines, out  # the rlimits of the ocirun process, not the server's
    with open(log) as f:
        served = "served by warm worker" in f.read()
    assert served == warm_on


def test_exit_codes_stdio_and_preserved_fds_warm(warm):
    env = warm
    env.cfg["process"]["args"] = ["sh", "-c", "cat <&3; echo err >&2; exit 7"]
    env.write()
    r3, w3 = os.pipe()
    os.write(w3, b"through fd 3\n")
    os.close(w3)
    cid = env.new_id()
    # fd 3 of the ocirun process: the pipe (moved there by a shell)
    p = subprocess.run(["sh", "-c", 'exec "$@" 3<&0 </dev/null', "sh"] + env.cmd
                       + ["--root", env.root, "run", "--preserve-fds", "1", "-b", env.bundle, cid],
                       stdin=r3, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(True), timeout=30)
    os.close(r3)
    assert p.returncode == 7
    assert p.stdout == b"through fd 3\n" and p.stderr == b"err\n"


def test_probe_loop_of_execs_warm(warm):
    """What liveness probes do: many short execs, each with its exit code
    and output, some at once."""
    env = warm
    cid = env.create(["sleep", "100"])
    assert env.cli("start", cid).returncode == 0
    try:
        for i in range(10):
            r = env.cli("exec", cid, "sh", "-c", f"echo probe {i}; exit {i % 3}", env=_env(True))
            assert (r.returncode, r.stdout) == (i % 3, f"probe {i}\n"), r.stderr
        procs = [subprocess.Popen(env.cmd + ["--root", env.root, "exec", cid, "sh", "-c", f"echo {i}"],
                                  stdout=subprocess.PIPE, env=_env(True)) for i in range(8)]
        outs = [p.communicate(timeout=30)[0] for p in procs]
        assert [p.returncode for p in procs] == [0] * 8
        assert outs == [f"{i}\n".encode() for i in range(8)]
    finally:
        assert env.cli("delete", "--force", cid).returncode == 0


def test_signals_reach_the_container_warm(warm):
    env = warm
    env.cfg["process"]["args"] = ["sh", "-c", "trap 'echo got TERM; exit 42' TERM; echo ready; "
                                  "while :; do sleep 0.05; done"]
    env.write()
    cid = env.new_id()
    p = subprocess.Popen(env.cmd + ["--root", env.root, "run", "-b", env.bundle, cid], stdout=subprocess.PIPE,
                         env=_env(True))
    assert p.stdout.readline() == b"ready\n"
    p.terminate()
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 42 and out == b"got TERM\n"


def _raw_request(name, build, root, uid=None, argv=("ocirun", "run", "x")):
    """Speak the request's first message as a foreign client would; prints
    the reply's type (procs.W_*) and text."""
    args = [a.encode() for a in argv]
    code = f"""
import os, socket, struct, sys
if {uid!r} is not None:
    os.setgid({uid!r}); os.setuid({uid!r})
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
try:
    s.connect({name!r})
except OSError as e:
    print("connect", e.strerror)
    sys.exit(0)
msg = struct.pack("<Iii", 1, 0, 0) + b"\\0".join([b"ocirun-warm-1", {build.encode()!r}, b"run", {root.encode()!r},
      str(os.getpid()).encode(), b"022", b"0", str({len(args)}).encode()] + {args!r} + [b""])
cwd = os.open("/", os.O_PATH)
s.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", cwd))])
s.settimeout(10)
data = s.recv(4096)
print(struct.unpack_from("<I", data)[0] if len(data) >= 12 else "none", data[12:].decode(errors="replace"))
"""
    return code


def _ask(code, pre=()):
    r = subprocess.run(list(pre) + [sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    typ, _, why = r.stdout.strip().partition(" ")
    return typ, why


def _name(build, root):
    from ocirun.warm import socket_path

    return socket_path(root, build)


def test_the_server_refuses_other_users_namespaces_and_builds(warm):
    """G20: only a caller with the server's uid, namespaces, root directory,
    --root and build is served; the checks use what the kernel says."""
    env = warm
    build = _build(env)
    root = os.path.abspath(env.root)
    name = _name(build, root)
    other = "other namespaces, root directory or privileges"
    # ourselves, well formed: accepted (then not told GO: the worker does nothing)
    assert _ask(_raw_request(name, build, root))[0] == "2"
    assert _ask(_raw_request(name, "0" * 32, root)) == ("3", "another build")
    assert _ask(_raw_request(name, build, root + "x")) == ("3", "another --root")
    # another user cannot even reach the socket (0600 in the 0700 root)
    assert _ask(_raw_request(name, build, root, uid=65534)) == ("connect", "Permission denied")
    assert _ask(_raw_request(name, build, root), pre=["unshare", "-u"]) == ("3", other)
    assert _ask(_raw_request(name, build, root), pre=["unshare", "-m", "--propagation", "private"]) == ("3", other)
    assert _ask(_raw_request(name, build, root), pre=["unshare", "-T"]) == ("3", other)  # time namespace
    # the same uid with fewer privileges: a capability out of the bounding set, no_new_privs
    assert _ask(_raw_request(name, build, root), pre=["setpriv", "--bounding-set", "-net_raw"]) == ("3", other)
    assert _ask(_raw_request(name, build, root), pre=["setpriv", "--no-new-privs"]) == ("3", other)
    # only the commands that build containers
    for argv in (("ocirun", "delete", "--force", "x"), ("ocirun", "--root", root, "state", "x"),
                 ("ocirun", "warm", "stop")):
        assert _ask(_raw_request(name, build, root, argv=argv)) == ("3", "only create, run and exec are served warm")


def test_a_worker_killed_mid_request_fails_cleanly(warm):
    """Like a SIGKILLed cold create: one line, and nothing left after
    `delete --force`."""
    env = warm
    marker = os.path.join(env.tmp, "hook-running")
    hook = os.path.join(env.tmp, "slow-hook")
    with open(hook, "w") as f:
        f.write(f"#!/bin/sh\necho $PPID > {marker}\nsleep 30\n")
    os.chmod(hook, 0o755)
    env.cfg["hooks"] = {"createRuntime": [{"path": hook}]}
    env.cfg["process"]["args"] = ["sleep", "100"]
    env.write()
    cid = env.new_id()
    log = os.path.join(env.tmp, "log")
    p = subprocess.Popen(env.cmd + ["--root", env.root, "--debug", "--log", log, "create", "-b", env.bundle, cid],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(True))
    for _ in range(200):
        if os.path.exists(marker) and os.path.getsize(marker):
            break
        time.sleep(0.05)
    with open(marker) as f:
        assert int(f.read()) == p.pid  # the hook is the ocirun process's child too
    with open(log) as f:
        worker = int(f.read().split("served by warm worker ")[1].split()[0])
    os.kill(worker, 9)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 1
    assert err.decode().strip().endswith("ocirun create failed: the warm ocirun worker ended before finishing "
                                         "the request"), err
    r = env.cli("delete", "--force", cid, env=_env(False))
    assert r.returncode == 0 or "does not exist" in r.stderr
    # the env fixture checks that nothing is left: state, cgroups, mounts, processes


def test_idle_exit_stop_and_a_clean_environment(env):
    env.cli("warm", "stop", env=_env(True))  # the suite's warm pass started one
    r = env.cli("warm", "status", env=_env(True))
    assert r.returncode == 1 and "no warm server" in r.stderr
    env.cfg["process"]["args"] = ["true"]
    env.write()
    # the first cold call starts a server (double fork, no fds, minimal environment)
    r = env.cli("run", "-b", env.bundle, env.new_id(), env=_env(True, idle="1", SECRET_TOKEN="s3cret"))
    if r.returncode == 0 and env.cli("warm", "status", env=_env(True)).returncode != 0:
        for _ in range(100):
            if env.cli("warm", "status", env=_env(True)).returncode == 0:
                break
            time.sleep(0.05)
    st = env.cli("warm", "status", env=_env(True))
    if st.returncode != 0 and "source tree" in st.stderr:
        pytest.skip(st.stderr.strip())
    assert st.returncode == 0, st.stderr
    pid = int(st.stdout.split()[1].rstrip(","))
    with open(f"/proc/{pid}/environ", "rb") as f:
        environ = f.read()
    assert b"s3cret" not in environ and b"SECRET_TOKEN" not in environ
    with open(f"/proc/{pid}/comm") as f:
        assert f.read().strip() == "ocirun-warm"
    # nothing of the caller's: /dev/null on 0-2, then its own socket, pipes and the init's sealed image
    links = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            pass
    assert all(x == "/dev/null" or x.startswith(("socket:", "pipe:", "/memfd:ocirun-init")) for x in links), links
    # idle for a second: it exits, and its workers with it
    for _ in range(100):
        if not os.path.exists(f"/proc/{pid}"):
            break
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}")
    # started again, then stopped
    assert env.cli("warm", "start", env=_env(True, idle="30")).returncode == 0
    pid = _server_pid(env)
    r = env.cli("warm", "stop", env=_env(True))
    assert r.returncode == 0 and r.stdout == "stopped\n"
    for _ in range(100):
        if not os.path.exists(f"/proc/{pid}"):
            break
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}")
    assert env.cli("warm", "status", env=_env(True)).returncode == 1


def test_off_means_off(env):
    """OCIRUN_WARM=0 (or no setting): no server is started or used."""
    env.cli("warm", "stop", env=_env(True))  # the suite's warm pass started one
    env.cfg["process"]["args"] = ["true"]
    env.write()
    assert env.cli("run", "-b", env.bundle, env.new_id(), env=_env(False)).returncode == 0
    time.sleep(0.3)
    assert env.cli("warm", "status", env=_env(False)).returncode == 1


def test_json_log_of_a_warm_failure(warm):
    """Errors of a warm request reach --log as the cold path writes them."""
    env = warm
    env.cfg["process"]["args"] = ["/no/such/binary"]
    env.write()
    log = os.path.join(env.tmp, "log.json")
    r = env.cli("--log", log, "--log-format", "json", "run", "-b", env.bundle, env.new_id(), env=_env(True))
    assert r.returncode != 0
    with open(log) as f:
        recs = [json.loads(line) for line in f if line.strip()]
    assert any(rec["level"] == "error" and "/no/such/binary" in rec["msg"] for rec in recs), recs


def test_a_refused_caller_runs_cold_and_says_why_in_the_debug_log(warm):
    """Another namespace (here: uts) is refused; the command still runs, cold,
    and --debug says why in --log."""
    env = warm
    env.cfg["process"]["args"] = ["true"]
    env.write()
    log = os.path.join(env.tmp, "log")
    r = subprocess.run(["unshare", "-u"] + env.cmd + ["--root", env.root, "--debug", "--log", log, "run", "-b",
                       env.bundle, env.new_id()], capture_output=True, env=_env(True), timeout=30)
    assert r.returncode == 0, r.stderr
    with open(log) as f:
        text = f.read()
    assert "warm path not taken (refused: other namespaces, root directory or privileges): running cold" in text, text
    assert "served by warm worker" not in text


def test_the_callers_umask_and_only_its_fds(warm):
    """The worker takes the caller's umask (a --pid-file is made with it),
    and no fd of the front-end's own reaches the container, even where the
    caller left a gap (here: fd 0 closed)."""
    env = warm
    env.cfg["process"]["args"] = ["sh", "-c", "ls -l /proc/self/fd/ 2>&1"]
    env.write()
    pidf = os.path.join(env.tmp, "pid")
    cid = env.new_id()
    r = subprocess.run(["sh", "-c", 'umask 077; exec "$@" <&-', "sh"] + env.cmd
                       + ["--root", env.root, "run", "--pid-file", pidf, "-b", env.bundle, cid],
                       capture_output=True, env=_env(True), timeout=30)
    assert r.returncode == 0, r.stderr
    assert oct(os.stat(pidf).st_mode & 0o777) == "0o600"
    assert "socket:" not in r.stdout.decode(), r.stdout
    assert " 0 -> " not in r.stdout.decode(), r.stdout


def test_a_hook_that_does_not_read_its_state_fails_cleanly_warm(warm):
    """The state (over a pipe's 64 KiB here) goes to a hook that closes its
    stdin and fails: the write gets EPIPE, which must not kill the worker
    (it once did: the server had reset SIGPIPE to its default)."""
    env = warm
    p = os.path.join(env.tmp, "fail")
    with open(p, "w") as f:
        f.write("#!/bin/sh\nexec 0<&-\necho boom >&2\nexit 3\n")
    os.chmod(p, 0o755)
    env.cfg["hooks"] = {"createRuntime": [{"path": p}]}
    env.cfg["annotations"] = {"big": "x" * 200000}
    env.cfg["process"]["args"] = ["true"]
    env.write()
    r = env.cli("run", "-b", env.bundle, env.new_id(), env=_env(True))
    assert r.returncode == 1, r.stderr
    assert "hooks.createRuntime[0]" in r.stderr and "exit status 3" in r.stderr and "boom" in r.stderr, r.stderr
