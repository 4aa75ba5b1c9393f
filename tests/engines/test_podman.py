"""podman 4.3 + conmon 2.1 driving ocirun (`podman --runtime`), with private
root, runroot, tmpdir and config (cgroupfs, vfs, file events, no network)."""

import json
import os
import re
import time

import pytest

from tests.engines.conftest import (PtySession, Runtime, kill_pids, missing_parent_cgroups, need_binaries, need_root,
                                    pids_matching, private_tmpdir, remove_cgroup_dirs, remove_tree, run, uid)


# this machine's hard limits are below podman's defaults
RUN_OPTS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--network", "none")


class Podman:
    def __init__(self, tmp, runtime, supports_json=False):
        self.tmp = tmp
        self.runtime = runtime
        conf = os.path.join(tmp, "containers.conf")
        with open(conf, "w") as f:
            f.write('[engine]\nevents_logger = "file"\n'
                    f'events_logfile_path = "{tmp}/events.log"\n'
                    'cgroup_manager = "cgroupfs"\n'
                    + ('runtime_supports_json = ["ocirun"]\n' if supports_json else '')
                    + '[containers]\nnetns = "none"\n')
        self.env = dict(os.environ, CONTAINERS_CONF=conf, TMPDIR=os.path.join(tmp, "tmp"))
        os.makedirs(self.env["TMPDIR"], exist_ok=True)
        self.base = ["podman", "--runtime", runtime.path, "--root", f"{tmp}/root", "--runroot", f"{tmp}/runroot",
                     "--tmpdir", f"{tmp}/libpod", "--cgroup-manager", "cgroupfs", "--storage-driver", "vfs",
                     "--events-backend", "file", "--network-config-dir", f"{tmp}/networks"]
        self.image = None
        # podman's cgroupfs manager makes libpod_parent/ (conmon goes in
        # libpod_parent/conmon); removed at the end unless it was there before
        self.made_cgroups = missing_parent_cgroups("libpod_parent")

    def __call__(self, *args, timeout=90, **kw):
        return run(self.base + [str(a) for a in args], timeout=timeout, env=self.env, **kw)

    def diag(self, mark=0):
        return f"\n--- ocirun calls ---\n{self.runtime.calls_since(mark)}"

    def cleanup(self):
        self("rm", "--force", "--all", "--time", "0", timeout=60)

    def stop(self):
        try:
            self.cleanup()
        except Exception:  # noqa: BLE001
            pass
        kill_pids(pids_matching(self.tmp))  # conmon processes carry our paths
        time.sleep(0.2)
        remove_cgroup_dirs(self.made_cgroups)


def make_podman(busybox_archive, supports_json):
    need_root()
    need_binaries("podman", "conmon")
    tmp = private_tmpdir("podman")
    p = Podman(tmp, Runtime(tmp, root=os.path.join(tmp, "ocirun-state")), supports_json=supports_json)
    try:
        r = p("load", "-i", busybox_archive["path"], timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        m = re.search(r"Loaded image(?:\(s\))?: (\S+)", r.stdout + r.stderr)
        assert m, r.stdout + r.stderr
        p.image = m.group(1)
        yield p
    finally:
        p.stop()
        remove_tree(tmp)


@pytest.fixture(scope="module")
def podman_engine(busybox_archive):
    """ocirun as podman sees an unknown runtime name: no --log, errors from stderr"""
    yield from make_podman(busybox_archive, supports_json=False)


@pytest.fixture(scope="module")
def podman_json_engine(busybox_archive):
    """ocirun listed in runtime_supports_json: podman passes --log-format=json
    --log <file> and decodes the whole file as ONE JSON object"""
    yield from make_podman(busybox_archive, supports_json=True)


@pytest.fixture
def pm(podman_engine):
    podman_engine.mark = podman_engine.runtime.mark()
    yield podman_engine
    podman_engine.cleanup()


def prun(pm, *args, opts=(), timeout=90):
    return pm("run", *RUN_OPTS, *opts, pm.image, *args, timeout=timeout)


def start_detached(pm, name, *args):
    r = prun(pm, *(args or ("sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait")), opts=("-d", "--name", name))
    assert r.returncode == 0, r.stderr + pm.diag(pm.mark)
    return r.stdout.strip()


def inspect(pm, name):
    r = pm("inspect", name)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]


def test_run_prints_output(pm):
    r = prun(pm, "sh", "-c", "echo hello-podman; echo err-podman >&2; cat /proc/1/cmdline; echo", opts=("--rm",))
    assert r.returncode == 0, r.stderr + pm.diag(pm.mark)
    assert "hello-podman" in r.stdout and "err-podman" in r.stderr
    assert "sh\0-c\0" in r.stdout
    calls = pm.runtime.calls_since(pm.mark)
    assert re.search(r"argv: create --bundle \S+ --pid-file \S+", calls), calls
    assert "delete --force" in calls or " delete " in calls, calls


def test_run_exit_status(pm):
    r = prun(pm, "sh", "-c", "exit 9", opts=("--rm",))
    assert r.returncode == 9, r.stderr + pm.diag(pm.mark)


def test_run_missing_executable_is_127(pm):
    r = prun(pm, "/no/such/binary", opts=("--rm",))
    assert r.returncode == 127, f"rc={r.returncode} {r.stderr}" + pm.diag(pm.mark)


def test_run_detached_ps_stop_rm(pm):
    name = uid("pd")
    cid = start_detached(pm, name)
    r = pm("ps", "--format", "{{.Names}} {{.Status}}")
    assert r.returncode == 0, r.stderr + pm.diag(pm.mark)
    assert re.search(rf"^{name} Up", r.stdout, re.M), r.stdout + pm.diag(pm.mark)
    st = inspect(pm, name)["State"]
    assert st["Status"] == "running" and st["Pid"] > 0
    with open(f"/proc/{st['Pid']}/cmdline", "rb") as f:
        assert f.read().startswith(b"sh\0-c")
    t0 = time.monotonic()
    r = pm("stop", "--time", "10", name)
    assert r.returncode == 0, r.stderr + pm.diag(pm.mark)
    assert time.monotonic() - t0 < 8, "SIGTERM did not stop the container; podman had to SIGKILL"
    st = inspect(pm, name)["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 0, st
    r = pm("ps", "-a", "--format", "{{.Names}} {{.Status}}")
    assert re.search(rf"^{name} Exited \(0\)", r.stdout, re.M), r.stdout
    r = pm("rm", name)
    assert r.returncode == 0, r.stderr + pm.diag(pm.mark)
    assert name not in pm("ps", "-a", "--format", "{{.Names}}").stdout.split()
    calls = pm.runtime.calls_since(pm.mark)
    assert re.search(rf"kill {cid} 15\n", calls), calls


def test_stop_sigkill_fallback(pm):
    name = uid("pk")
    start_detached(pm, name, "sleep", "1000")  # pid 1 ignores SIGTERM: podman escalates to 9
    r = pm("stop", "--time", "1", name)
    assert r.returncode == 0, r.stderr + pm.diag(pm.mark)
    assert inspect(pm, name)["State"]["Status"] == "exited"


def test_logs(pm):
    name = uid("pl")
    r = prun(pm, "sh", "-c", "echo line-one; echo line-two", opts=("--name", name))
    assert r.returncode == 0, r.stderr + pm.diag(pm.mark)
    r = pm("logs", name)
    assert "line-one" in r.stdout and "line-two" in r.stdout, r.stdout + r.stderr


def test_rm_force_running(pm):
    name = uid("prf")
    start_detached(pm, name)
    r = pm("rm", "--force", "--time", "0", name)
    assert r.returncode == 0, r.stderr + pm.diag(pm.mark)
    assert name not in pm("ps", "-a", "--format", "{{.Names}}").stdout.split()


def test_run_interactive_tty(pm):
    s = PtySession(pm.base + ["run", *RUN_OPTS, "-it", "--rm", pm.image, "sh"], env=pm.env)
    try:
        s.expect("#", timeout=60)
        s.write("tty; echo answer-$((6*7))\r")
        s.expect("answer-42")
        assert b"/dev/pts/0" in s.buf, s.buf
        s.write("exit 4\r")
        assert s.wait(30) == 4
    except Exception as e:
        raise AssertionError(f"{e}\npty: {s.buf[-2000:]!r}" + pm.diag(pm.mark)) from e
    finally:
        s.close()


def test_run_stdin_pipe(pm):
    r = pm("run", *RUN_OPTS, "-i", "--rm", pm.image, "sh", "-c", "tr a-z A-Z", input="piped-in\n")
    assert r.returncode == 0 and "PIPED-IN" in r.stdout, r.stderr + pm.diag(pm.mark)


def test_exec(pm):
    name = uid("pe")
    start_detached(pm, name)
    r = pm("exec", name, "sh", "-c", "echo exec-ok; cat /proc/1/cmdline")
    assert r.returncode == 0 and "exec-ok" in r.stdout, r.stderr + pm.diag(pm.mark)
    r = pm("exec", name, "sh", "-c", "exit 6")
    assert r.returncode == 6, r.stderr + pm.diag(pm.mark)


def test_exec_missing_is_127(pm):
    name = uid("pe127")
    start_detached(pm, name)
    r = pm("exec", name, "/nonexistent")
    assert r.returncode == 127, f"rc={r.returncode} {r.stderr}" + pm.diag(pm.mark)


def test_exec_interactive_tty(pm):
    name = uid("pet")
    start_detached(pm, name)
    s = PtySession(pm.base + ["exec", "-it", name, "sh"], env=pm.env)
    try:
        s.expect("#", timeout=60)
        s.write("tty; echo exec-$((6*7))\r")
        s.expect("exec-42")
        assert b"/dev/pts/" in s.buf, s.buf
        s.write("exit\r")
        assert s.wait(30) == 0
    except Exception as e:
        raise AssertionError(f"{e}\npty: {s.buf[-2000:]!r}" + pm.diag(pm.mark)) from e
    finally:
        s.close()


@pytest.fixture
def pmj(podman_json_engine):
    podman_json_engine.mark = podman_json_engine.runtime.mark()
    yield podman_json_engine
    podman_json_engine.cleanup()


def test_json_log_run_and_errors(pmj):
    r = prun(pmj, "echo", "json-ok", opts=("--rm",))
    assert r.returncode == 0 and "json-ok" in r.stdout, r.stderr + pmj.diag(pmj.mark)
    calls = pmj.runtime.calls_since(pmj.mark)
    assert re.search(r"argv: --log-format=json --log \S+/oci-log create --bundle", calls), calls
    r = prun(pmj, "/no/such/binary", opts=("--rm",))
    assert r.returncode == 127, f"rc={r.returncode} {r.stderr}" + pmj.diag(pmj.mark)
    assert "no such file or directory" in r.stderr, r.stderr


def test_json_log_exec_errors(pmj):
    name = uid("pje")
    start_detached(pmj, name)
    r = pmj("exec", name, "/nonexistent")
    assert r.returncode == 127, f"rc={r.returncode} {r.stderr}" + pmj.diag(pmj.mark)
    r = pmj("exec", name, "sh", "-c", "echo exec-json-ok")
    assert r.returncode == 0 and "exec-json-ok" in r.stdout, r.stderr + pmj.diag(pmj.mark)
