"""The Python API (ocirun.Container, ocirun.Spec, ocirun.run): real
containers driven from this test process, which is their parent; what the
container observed, the exit codes it gave, the exact error lines, and the
same state the CLI reads (`ocirun list`/`state` see API containers, the API
drives CLI ones).  The env fixture checks that nothing is left behind."""

import json
import os
import signal
import subprocess
import sys
import threading

import pytest

from tests.conftest import installed_init


@pytest.fixture
def api(env, monkeypatch):
    """The tree's ocirun package with the installed init (the tests import
    the Python side from the tree and run the installed binaries)."""
    import ocirun
    from ocirun import launch

    monkeypatch.setattr(launch, "INIT_PATH", installed_init())
    return ocirun


def spec(api, env, args):
    return api.Spec(env.rootfs, args)


def container(api, env, args, **kw):
    return api.Container(spec(api, env, args), id=env.new_id("api"), root=env.root, **kw)


def cli_ids(env):
    r = env.cli("list", "-q")
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_create_start_wait_exit_code_delete(api, env):
    c = container(api, env, ["sh", "-c", "exit 7"])
    c.create()
    assert c.status == "created"
    assert env.state(c.id)["status"] == "created"  # the CLI reads the same state
    assert env.state(c.id)["pid"] == c.pid
    c.start()
    assert c.wait() == 7
    assert c.returncode == 7
    assert c.status == "stopped"
    c.delete()
    assert c.status == "deleted"
    assert "does not exist" in env.cli("state", c.id).stderr


def test_killed_by_a_signal_is_128_plus_n(api, env):
    with container(api, env, ["sleep", "100"]) as c:
        assert c.status == "running"
        c.kill("KILL")
        assert c.wait() == 128 + 9
    with container(api, env, ["sh", "-c", "trap 'exit 5' TERM; echo trapped; while :; do sleep 1; done"],
                   stdout=api.PIPE) as c:
        assert c.stdout.readline() == b"trapped\n"
        c.kill()  # SIGTERM by default, as `ocirun kill`
        assert c.wait() == 5


def test_exec_captures_stdout_stderr_and_exit_code(api, env):
    with container(api, env, ["sleep", "100"]) as c:
        r = c.exec(["sh", "-c", "echo out; echo err >&2; exit 3"])
        assert (r.exit_code, r.stdout, r.stderr) == (3, b"out\n", b"err\n")
        # it runs in the container: its pid namespace, hostname, and the
        # user and environment asked for
        r = c.exec(["sh", "-c", "cat /proc/1/cmdline; echo; hostname; id -u; echo $GREETING"], user=1000,
                   env={"GREETING": "hello"}, text=True)
        assert r.stdout == "sleep\x00100\x00\nocirun\n1000\nhello\n", r
        r = c.exec(["cat"], input=b"fed through stdin")
        assert r.stdout == b"fed through stdin"


def test_exec_streams_output_while_the_process_runs(api, env):
    with container(api, env, ["sleep", "100"]) as c:
        with c.popen(["sh", "-c", "echo one; read x; echo two $x; exit 4"], stdin=api.PIPE, stdout=api.PIPE,
                     text=True) as p:
            # the first line arrives while the process still waits for input
            assert p.stdout.readline() == "one\n"
            assert p.poll() is None
            p.stdin.write("go\n")
            p.stdin.flush()
            assert p.stdout.readline() == "two go\n"
            assert p.wait() == 4


def test_the_init_streams_too(api, env):
    with container(api, env, ["sh", "-c", "echo ready; read x; echo got $x; exit 2"], stdin=api.PIPE,
                   stdout=api.PIPE, stderr=api.STDOUT, text=True) as c:
        assert c.stdout.readline() == "ready\n"
        assert c.status == "running"
        c.stdin.write("it\n")
        c.stdin.flush()
        assert c.stdout.readline() == "got it\n"
        assert c.wait() == 2


def test_pause_and_resume(api, env):
    with container(api, env, ["sleep", "100"]) as c:
        c.pause()
        assert c.status == "paused"
        assert env.state(c.id)["status"] == "paused"
        with pytest.raises(api.ExecError) as e:
            c.exec(["true"])
        assert str(e.value) == "exec failed: cannot exec in a paused container (use --ignore-paused to override)"
        c.resume()
        assert c.status == "running"
        assert c.exec(["echo", "back"]).stdout == b"back\n"


def test_stats_and_limits_the_container_sees(api, env):
    s = spec(api, env, ["sleep", "100"])
    s.memory = "64M"
    s.pids = 20
    with api.Container(s, id=env.new_id("api"), root=env.root) as c:
        st = c.stats()
        assert st["memory"]["usage"]["limit"] == 64 << 20
        assert st["pids"] == {"current": 1, "limit": 20}
        seen = c.exec(["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/pids/pids.max"])
        assert seen.stdout == b"67108864\n20\n"
        assert c.pids() == [c.pid]


def test_run_helper_sandbox(api, env):
    r = api.run(env.rootfs, ["sh", "-c", "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes;"
                             " ls /sys/class/net; touch /written && echo writable; echo $X; exit 9"],
                memory="32M", pids=16, network="none", env={"X": "y"}, root=env.root, id=env.new_id("api"))
    assert r.exit_code == 9
    assert r.stdout == b"16\n33554432\nlo\ny\n", r
    assert b"Read-only file system" in r.stderr
    assert api.list_containers(env.root) == []


def test_timeout_kills_and_cleans(api, env):
    cid = env.new_id("api")
    with pytest.raises(api.Timeout) as e:
        api.run(env.rootfs, ["sh", "-c", "echo started; exec sleep 100"], timeout=1, root=env.root, id=cid)
    assert e.value.stdout == b"started\n"
    assert e.value.timeout == 1
    assert str(e.value) == f"container {cid}: still running after 1 s (killed and deleted)"
    assert cid not in cli_ids(env)
    assert not os.path.exists(os.path.join(env.root, cid))


def test_exec_timeout_kills_the_process_only(api, env):
    with container(api, env, ["sleep", "100"]) as c:
        with pytest.raises(api.Timeout) as e:
            c.exec(["sh", "-c", "echo partial; exec sleep 100"], timeout=1)
        assert e.value.stdout == b"partial\n"
        assert c.pids() == [c.pid]  # the exec'd process is gone, the container runs
        assert c.status == "running"


def test_context_manager_cleans_up_on_an_exception(api, env):
    c = container(api, env, ["sleep", "100"])
    with pytest.raises(RuntimeError):
        with c:
            pid = c.pid
            bundle = c.bundle
            assert c.id in cli_ids(env)
            raise RuntimeError("boom")
    assert c.status == "deleted"
    assert c.returncode == 137  # reaped: no zombie of ours either
    assert not os.path.exists(f"/proc/{pid}")
    assert not os.path.exists(bundle)  # the temporary bundle
    assert c.id not in cli_ids(env)


def test_context_manager_cleans_up_on_keyboard_interrupt(api, env):
    c = container(api, env, ["sleep", "100"])
    timer = None
    with pytest.raises(KeyboardInterrupt):
        with c:
            pid = c.pid
            # a real SIGINT, delivered while this process waits for the container
            timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
            timer.start()
            c.wait()
    timer.join()
    assert c.status == "deleted"
    assert not os.path.exists(f"/proc/{pid}")


@pytest.mark.parametrize("setter,value,cls,field,reason", [
    ("cwd", "relative/dir", "ConfigError", "process.cwd", "must be an absolute path, got 'relative/dir'"),
    ("args", "sh -c true", "ConfigError", "process.args", "must be a list of strings"),
    ("args", [], "ConfigError", "process.args", "must not be empty"),
    ("memory", "lots", "ConfigError", "linux.resources.memory.limit",
     "'lots' is not a size (an integer, or a number with K, M or G)"),
    ("pids", 0, "ConfigError", "linux.resources.pids.limit", "must be a positive integer, got 0"),
    ("network", "bridge", "ConfigError", "linux.namespaces",
     "network 'bridge': must be 'none', 'host' or the absolute path of a network namespace"),
    ("capabilities", ["CAP_NOPE"], "ConfigError", "process.capabilities[0]", "unknown capability 'CAP_NOPE'"),
    ("user", "root", "ConfigError", "process.user", "'root' must be UID[:GID], numeric"),
])
def test_spec_setters_raise_field_and_reason(api, env, setter, value, cls, field, reason):
    s = spec(api, env, ["true"])
    with pytest.raises(getattr(api, cls)) as e:
        setattr(s, setter, value)
    assert (e.value.field, e.value.reason) == (field, reason)
    assert str(e.value) == f"{field}: {reason}"


@pytest.mark.parametrize("mutate,cls,field,reason_has", [
    (lambda c: c["mounts"].append({"destination": "/x", "type": "bind", "source": "/nonexistent",
                                   "options": ["bind"]}), "ConfigError", "mounts[7].source",
     "no such file or directory"),
    (lambda c: c["linux"]["namespaces"].append({"type": "nope"}), "ConfigError", "linux.namespaces[6].type", "nope"),
    (lambda c: c["mounts"].append({"destination": "/x", "type": "nosuchfs", "source": "none"}), "InitError",
     "mounts[7]", "unknown filesystem type"),
])
def test_create_errors_carry_the_cli_line_with_field_and_reason(api, env, mutate, cls, field, reason_has):
    """A Spec the runtime refuses: the exception is the CLI's error line,
    typed, with its field and reason; nothing is left (env fixture)."""
    s = spec(api, env, ["true"])
    mutate(s.config)
    c = api.Container(s, id=env.new_id("api"), root=env.root)
    with pytest.raises(api.OcirunError) as e:
        c.create()
    assert type(e.value).__name__ == cls
    assert e.value.field == field
    assert reason_has in e.value.reason
    # the same words the CLI prints for the same config
    s.write(env.bundle)
    r = env.cli("create", "-b", env.bundle, env.new_id("cli"))
    assert r.returncode == 1
    assert f"ocirun create failed: {e.value}" in r.stderr.replace('\\"', '"')
    assert c.status == "deleted"


def test_cli_sees_api_containers_and_the_api_drives_cli_ones(api, env):
    # API -> CLI
    with container(api, env, ["sleep", "100"]) as c:
        r = env.cli("list", "--format", "json")
        assert [(s["id"], s["pid"], s["status"]) for s in json.loads(r.stdout)] == [(c.id, c.pid, "running")]
        r = env.cli("exec", c.id, "cat", "/proc/1/cmdline")
        assert r.stdout == "sleep\x00100\x00"
        assert env.cli("kill", c.id, "KILL").returncode == 0
        assert c.wait() == 137  # the API process is the parent: it has the status
    assert cli_ids(env) == []
    # CLI -> API
    cid = env.create(["sleep", "100"])
    c = api.Container.get(cid, root=env.root)
    assert c.status == "created"
    assert [s["id"] for s in api.list_containers(env.root)] == [cid]
    c.start()
    assert env.state(cid)["status"] == "running"
    assert c.exec(["hostname"]).stdout == b"ocirun\n"
    c.kill("KILL")
    # not its parent: it learns the init is gone, not how it ended
    assert c.wait() is None
    assert c.status == "stopped"
    c.delete()
    assert "does not exist" in env.cli("state", cid).stderr


def test_a_bundle_directory_works_too(api, env):
    env.cfg["process"]["args"] = ["sh", "-c", "echo from the bundle"]
    env.write()
    with api.Container(env.bundle, id=env.new_id("api"), root=env.root, stdout=api.PIPE) as c:
        assert c.communicate() == (b"from the bundle\n", None)
        assert c.returncode == 0
    assert os.path.exists(os.path.join(env.bundle, "config.json"))  # not ours to remove


def test_connect_reaches_a_port_in_the_containers_own_network_namespace(api, env):
    with container(api, env, ["sh", "-c", "echo pong | nc -l -p 7777"]) as c:
        assert os.readlink(f"/proc/{c.pid}/ns/net") != os.readlink("/proc/self/ns/net")
        out = b""
        for _ in range(200):
            try:
                with c.connect(7777) as sock:
                    out = sock.recv(100)
                break
            except ConnectionRefusedError:
                threading.Event().wait(0.05)
        assert out == b"pong\n"
        assert c.wait() == 0


def test_the_callers_socket_activation_is_not_passed_on(api, env, monkeypatch):
    """The CLI passes LISTEN_FDS and NOTIFY_SOCKET on (runc); a program using
    the API does not: its own activation sockets are not the container's."""
    monkeypatch.setenv("LISTEN_FDS", "1")
    monkeypatch.setenv("LISTEN_PID", str(os.getpid()))
    monkeypatch.setenv("NOTIFY_SOCKET", os.path.join(env.tmp, "notify.sock"))
    r = api.run(env.rootfs, ["sh", "-c", "echo ${LISTEN_FDS:-none} ${NOTIFY_SOCKET:-none}; ls /proc/self/fd"],
                root=env.root, id=env.new_id("api"), text=True)
    lines = r.stdout.split("\n")
    assert lines[0] == "none none", r
    assert sorted(lines[1:-1]) == ["0", "1", "2", "3"]  # stdio and ls's own directory fd


SUBREAPER = """
import subprocess, sys
import ocirun
from ocirun import _native

root, bundle, cid = sys.argv[1:4]
_native.set_child_subreaper(True)
# the CLI's create exits at once: its container's init is re-parented to us
subprocess.run(sys.argv[4:] + ["--root", root, "create", "-b", bundle, cid], check=True,
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
c = ocirun.Container.get(cid, root=root)
c.start()
c.kill("KILL")
print(c.wait())
c.delete()
"""


def test_a_subreaper_that_inherited_the_init_gets_its_status(env):
    """Not the creator, but the subreaper the init was re-parented to when
    its creator exited (containerd's shim, conmon): wait() reaps it and has
    the status (a program of its own: this test process must not become a
    subreaper)."""
    installed_init()
    env.cfg["process"]["args"] = ["sleep", "100"]
    env.write()
    cid = env.new_id("api")
    r = subprocess.run([sys.executable, "-I", "-c", SUBREAPER, env.root, env.bundle, cid] + env.cmd,
                       capture_output=True, text=True, timeout=60, cwd="/")
    assert (r.returncode, r.stdout) == (0, "137\n"), r.stderr


def test_list_containers_warns_about_an_unreadable_entry_instead_of_printing(api, env, capfd):
    with container(api, env, ["sleep", "100"]) as c:
        bad = os.path.join(env.root, "broken")
        os.mkdir(bad)
        with open(os.path.join(bad, "state.json"), "w") as f:
            f.write("{not json")
        try:
            with pytest.warns(RuntimeWarning, match="broken: state of container broken is corrupt"):
                states = api.list_containers(env.root)
        finally:
            os.unlink(os.path.join(bad, "state.json"))
            os.rmdir(bad)
        assert [s["id"] for s in states] == [c.id]
    assert capfd.readouterr().err == ""


def test_warnings_go_to_the_logging_module_not_stderr(api, env, caplog, capfd):
    """A capability the runtime itself lacks is left out with a warning
    (plan.py): through the API it is a `logging` record of the "ocirun"
    logger, and nothing is written on this process's stderr."""
    from ocirun.tables import CAPABILITIES

    with open("/proc/self/status") as f:
        bnd = int(next(line for line in f if line.startswith("CapBnd:")).split()[1], 16)
    lacking = [c for n, c in enumerate(CAPABILITIES) if not bnd >> n & 1]
    if not lacking:
        pytest.skip("this process holds every capability")
    s = spec(api, env, ["sh", "-c", "grep CapBnd /proc/self/status"])
    s.add_capability(lacking[0])
    with caplog.at_level("WARNING", logger="ocirun"):
        r = api.run(spec=s, root=env.root, id=env.new_id("api"), text=True)
    assert r.exit_code == 0
    assert [(rec.levelname, rec.getMessage()) for rec in caplog.records] == [
        ("WARNING", f"process.capabilities: {lacking[0]} cannot be granted (not in the runtime's own bounding set), "
                    "left out")]
    assert capfd.readouterr().err == ""
    # and the CLI, in this same process, still writes its log lines on stderr
    from ocirun import log

    log.warning("after the API call")
    assert "level=warning msg=\"after the API call\"" in capfd.readouterr().err
