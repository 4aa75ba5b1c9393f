"""containerd 1.6 + containerd-shim-runc-v2 driving ocirun (`ctr run
--runc-binary`), on a private containerd (own config, root, state, socket;
CRI disabled)."""

import json
import os
import re

import pytest

from tests.engines import ociimage
from tests.engines.conftest import (Daemon, PtySession, Runtime, containerd_config, kill_pids, need_binaries, need_root,
                                    pids_matching, private_tmpdir, remove_tree, run, uid, unmount_all_under, wait_for)

CTR_TIMEOUT = 60



class Containerd(Daemon):
    name = "containerd"

    def __init__(self, tmp, runtime):
        self.tmp = tmp
        self.runtime = runtime
        self.address = os.path.join(tmp, "ctd.sock")
        self.ns = uid("ocirun-eng")
        self.config = os.path.join(tmp, "config.toml")
        self.logfile = os.path.join(tmp, "containerd.log")
        with open(self.config, "w") as f:
            f.write(containerd_config(self.address, f"{tmp}/root", f"{tmp}/state", f"{tmp}/debug.sock"))
        self.start(["containerd", "--config", self.config], lambda: self.ctr("version", timeout=5).returncode == 0,
                   30, what="containerd to answer `ctr version`")

    def ctr(self, *args, timeout=CTR_TIMEOUT, **kw):
        return run(["ctr", "--address", self.address, "--namespace", self.ns, *map(str, args)], timeout=timeout, **kw)

    def tasks(self):
        r = self.ctr("task", "ls")
        out = {}
        for line in r.stdout.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 3:
                out[parts[0]] = parts[2]
        return out

    def cleanup_containers(self):
        for cid in self.ctr("task", "ls", "-q", timeout=20).stdout.split():
            self.ctr("task", "kill", "-s", "SIGKILL", cid, timeout=20)
        for cid in self.ctr("task", "ls", "-q", timeout=20).stdout.split():
            try:
                wait_for(lambda: self.tasks().get(cid) in (None, "STOPPED"), 10)
            except TimeoutError:
                pass
            self.ctr("task", "rm", "-f", cid, timeout=20)
        for cid in self.ctr("containers", "ls", "-q", timeout=20).stdout.split():
            self.ctr("containers", "rm", cid, timeout=20)

    def stop(self):
        try:
            if self.proc.poll() is None:
                self.cleanup_containers()
        except Exception:  # noqa: BLE001 - teardown must go on
            pass
        self.stop_daemon()
        # shims outlive containerd by design; they carry our socket path
        kill_pids(pids_matching(self.address))
        unmount_all_under(self.tmp)
        try:  # the shim's default runtime root for our namespace (empty by now)
            os.rmdir(os.path.join("/run/containerd/runc", self.ns))
        except OSError:
            pass
        for ctl in os.listdir("/sys/fs/cgroup"):
            d = os.path.join("/sys/fs/cgroup", ctl, self.ns)
            if os.path.isdir(d):
                for sub in sorted((os.path.join(b, x) for b, ds, _ in os.walk(d) for x in ds), key=len,
                                  reverse=True):
                    try:
                        os.rmdir(sub)
                    except OSError:
                        pass
                try:
                    os.rmdir(d)
                except OSError:
                    pass
        self.close_log()


@pytest.fixture(scope="module")
def containerd(busybox_archive):
    need_root()
    need_binaries("containerd", "ctr", "containerd-shim-runc-v2")
    tmp = private_tmpdir("ctd")
    rt = Runtime(tmp)
    c = Containerd(tmp, rt)
    try:
        r = c.ctr("images", "import", busybox_archive["path"], timeout=120)
        assert r.returncode == 0, r.stderr + c.log_tail()
        images = c.ctr("images", "ls", "-q").stdout.split()
        assert ociimage.FULL_REF in images, images
        yield c
    finally:
        c.stop()
        remove_tree(tmp)


@pytest.fixture
def ctd(containerd):
    """Per test: remember where the ocirun call log was, clean up after."""
    containerd.mark = containerd.runtime.mark()
    yield containerd
    containerd.cleanup_containers()


def ctr_run(c, cid, *args, opts=(), timeout=CTR_TIMEOUT):
    return c.ctr("run", "--runc-binary", c.runtime.path, *opts, ociimage.FULL_REF, cid, *args, timeout=timeout)


# pid 1 of a pid namespace ignores signals it has no handler for
SLEEPER = ("sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait")


# ctr 1.6 closes or cancels its stdout/stderr fifo readers as soon as the
# process has exited, so output still in the fifo can be lost under load
# (containerd#8643 for `run`, #13931 for `exec`; fixed in later releases).
# Processes whose output a test checks stay a moment after writing it.
LINGER = "sleep 0.5"


def start_detached(c, cid, *args):
    r = ctr_run(c, cid, *(args or SLEEPER), opts=("-d",))
    assert r.returncode == 0, r.stdout + r.stderr + c.diag(c.mark)
    wait_for(lambda: c.tasks().get(cid) == "RUNNING", 20, what=f"task {cid} RUNNING")
    return cid


def test_run_prints_output(ctd):
    cid = uid("run")
    r = ctr_run(ctd, cid, "sh", "-c", "echo hello-from-ocirun; echo to-stderr >&2; cat /proc/1/cmdline; " + LINGER)
    assert r.returncode == 0, r.stderr + ctd.diag(ctd.mark)
    assert "hello-from-ocirun" in r.stdout
    assert "to-stderr" in r.stderr
    assert "sh\0-c\0" in r.stdout  # the process is pid 1 of its own pid namespace
    assert cid in ctd.ctr("containers", "ls", "-q").stdout.split()  # no --rm: container kept
    assert ctd.ctr("containers", "rm", cid).returncode == 0
    calls = ctd.runtime.calls_since(ctd.mark)
    assert re.search(r"argv: --root \S+ --log \S+log\.json --log-format json create --bundle", calls), calls


def test_run_exit_status(ctd):
    r = ctr_run(ctd, uid("rc"), "sh", "-c", "exit 7", opts=("--rm",))
    assert r.returncode == 7, r.stderr + ctd.diag(ctd.mark)


def test_run_rm(ctd):
    cid = uid("rm")
    r = ctr_run(ctd, cid, "sh", "-c", "echo gone; " + LINGER, opts=("--rm",))
    assert r.returncode == 0 and "gone" in r.stdout, r.stderr + ctd.diag(ctd.mark)
    assert cid not in ctd.ctr("containers", "ls", "-q").stdout.split()
    assert cid not in ctd.ctr("task", "ls", "-q").stdout.split()


def test_run_missing_executable_reports_error(ctd):
    r = ctr_run(ctd, uid("enoent"), "/no/such/binary", opts=("--rm",))
    assert r.returncode != 0
    assert "no such file or directory" in r.stderr or "not found" in r.stderr, r.stderr + ctd.diag(ctd.mark)


def test_detached_then_kill(ctd):
    cid = start_detached(ctd, uid("kill"))
    r = ctd.ctr("task", "kill", "-s", "SIGTERM", cid)
    assert r.returncode == 0, r.stderr + ctd.diag(ctd.mark)
    wait_for(lambda: ctd.tasks().get(cid) == "STOPPED", 20, what="task STOPPED")
    assert ctd.ctr("task", "rm", cid).returncode == 0
    assert ctd.ctr("containers", "rm", cid).returncode == 0
    calls = ctd.runtime.calls_since(ctd.mark)
    assert re.search(rf"kill {cid} 15\n", calls), calls
    assert re.search(rf"delete {cid}\n", calls), calls


def test_kill_all(ctd):
    cid = start_detached(ctd, uid("killall"), "sh", "-c", "sleep 1000 & sleep 1000")
    r = ctd.ctr("task", "kill", "--all", "-s", "SIGKILL", cid)
    assert r.returncode == 0, r.stderr + ctd.diag(ctd.mark)
    wait_for(lambda: ctd.tasks().get(cid) == "STOPPED", 20, what="task STOPPED")


def test_task_ps(ctd):
    cid = start_detached(ctd, uid("ps"), "sleep", "1000")
    r = ctd.ctr("task", "ps", cid)
    assert r.returncode == 0, r.stderr + ctd.diag(ctd.mark)
    pids = [line.split()[0] for line in r.stdout.splitlines()[1:] if line.strip()]
    assert len(pids) == 1 and pids[0].isdigit()
    with open(f"/proc/{pids[0]}/cmdline", "rb") as f:
        assert f.read().startswith(b"sleep")


def test_task_pause_resume(ctd):
    cid = start_detached(ctd, uid("pause"))
    r = ctd.ctr("task", "pause", cid)
    assert r.returncode == 0, r.stderr + ctd.diag(ctd.mark)
    assert ctd.tasks()[cid] == "PAUSED"
    r = ctd.ctr("task", "resume", cid)
    assert r.returncode == 0, r.stderr + ctd.diag(ctd.mark)
    assert ctd.tasks()[cid] == "RUNNING"


def test_task_metrics(ctd):
    cid = start_detached(ctd, uid("metrics"))
    r = ctd.ctr("task", "metrics", "--format", "json", cid)
    assert r.returncode == 0, r.stderr + ctd.diag(ctd.mark)
    m = json.loads(r.stdout)
    text = json.dumps(m).lower()
    assert "memory" in text and "pids" in text, r.stdout[:2000]


def test_tty(ctd):
    cid = uid("tty")
    s = PtySession(["ctr", "--address", ctd.address, "--namespace", ctd.ns, "run", "--runc-binary",
                    ctd.runtime.path, "-t", "--rm", ociimage.FULL_REF, cid, "sh"])
    try:
        s.expect("#", timeout=30)
        s.write("tty; echo answer-$((6*7))\r")
        s.expect("answer-42")
        assert b"/dev/pts/" in s.buf or b"/dev/console" in s.buf, s.buf
        s.write("exit 3\r")
        assert s.wait(20) == 3
    except Exception as e:
        raise AssertionError(f"{e}\npty: {s.buf[-2000:]!r}" + ctd.diag(ctd.mark)) from e
    finally:
        s.close()


def test_exec(ctd):
    cid = start_detached(ctd, uid("exec"))
    r = ctd.ctr("task", "exec", "--exec-id", uid("e"), cid, "sh", "-c", "echo exec-ok; cat /proc/1/cmdline; " + LINGER)
    assert r.returncode == 0, r.stderr + ctd.diag(ctd.mark)
    assert "exec-ok" in r.stdout and "trap" in r.stdout


def test_exec_exit_status(ctd):
    cid = start_detached(ctd, uid("execrc"))
    r = ctd.ctr("task", "exec", "--exec-id", uid("e"), cid, "sh", "-c", "exit 5")
    assert r.returncode == 5, r.stderr + ctd.diag(ctd.mark)


def test_exec_tty(ctd):
    cid = start_detached(ctd, uid("exectty"))
    s = PtySession(["ctr", "--address", ctd.address, "--namespace", ctd.ns, "task", "exec", "-t", "--exec-id",
                    uid("e"), cid, "sh"])
    try:
        s.expect("#", timeout=30)
        s.write("tty; echo exec-$((6*7))\r")
        s.expect("exec-42")
        assert b"/dev/pts/" in s.buf, s.buf
        s.write("exit\r")
        assert s.wait(20) == 0
    except Exception as e:
        raise AssertionError(f"{e}\npty: {s.buf[-2000:]!r}" + ctd.diag(ctd.mark)) from e
    finally:
        s.close()
