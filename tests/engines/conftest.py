"""Shared fixtures for the engine tests: real containerd / podman / dockerd
drive ocirun exactly as they drive runc.

The runtime is OCIRUN (env) or /usr/local/bin/ocirun.  Engines are pointed at
a small wrapper named `ocirun` (podman keys runtime features by basename)
that appends each invocation's argv, cwd and exit status to a log, so a
failing test shows exactly which ocirun command the engine ran."""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time

import pytest

from tests.conftest import warm_mode
from tests.engines import ociimage


def ocirun_path():
    p = os.environ.get("OCIRUN") or "/usr/local/bin/ocirun"
    if not os.path.exists(p):
        pytest.skip(f"ocirun not installed at {p} (set OCIRUN)")
    return os.path.abspath(p)


def need_root():
    if os.geteuid() != 0:
        pytest.skip("engine tests need root")


def need_binaries(*names):
    for n in names:
        if not shutil.which(n, path="/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin"):
            pytest.skip(f"{n} is not installed (apt-get install containerd podman conmon docker.io)")


def uid(prefix):
    return f"{prefix}-{secrets.token_hex(4)}"


WRAPPER = """#!/bin/sh
# ocirun test wrapper: log argv, run the real runtime, log its status
printf '%s pid=%s cwd=%s argv: %s\\n' "$(date +%T.%N)" "$$" "$(pwd)" "$*" >> '{log}'
{warm}'{real}' {extra}"$@"
rc=$?
printf '%s pid=%s rc=%s\\n' "$(date +%T.%N)" "$$" "$rc" >> '{log}'
exit $rc
"""


class Runtime:
    """A logging wrapper around ocirun in `dirpath`/bin/ocirun.

    root: a state root the wrapper passes first on every call.  Only for
    engines that never pass --root themselves (podman): on a shared machine
    other harnesses `delete --force` everything in ocirun's default root
    (/run/ocirun) between their tests, killing our containers."""

    def __init__(self, dirpath, root=None):
        self.real = ocirun_path()
        bindir = os.path.join(dirpath, "bin")
        os.makedirs(bindir, exist_ok=True)
        self.path = os.path.join(bindir, "ocirun")
        self.log = os.path.join(dirpath, "ocirun-calls.log")
        with open(self.path, "w") as f:
            # the suite's warm pass (OCIRUN_WARM=1) reaches ocirun whatever
            # the daemons do with their environment
            warm = "export OCIRUN_WARM=1 OCIRUN_WARM_IDLE=5\n" if warm_mode() else "export OCIRUN_WARM=0\n"
            f.write(WRAPPER.format(log=self.log, real=self.real, extra=f"--root '{root}' " if root else "", warm=warm))
        os.chmod(self.path, 0o755)
        open(self.log, "a").close()

    def calls(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def mark(self):
        return os.path.getsize(self.log)

    def calls_since(self, mark):
        with open(self.log, errors="replace") as f:
            f.seek(mark)
            return f.read()


def containerd_config(address, root, state, debug):
    """A containerd 1.6 config.toml: its own sockets and directories, no CRI."""
    return f"""version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{address}"
[ttrpc]
  address = "{address}.ttrpc"
[debug]
  address = "{debug}"
  level = "debug"
[metrics]
  address = ""
"""


def docker_env(sock, tmp):
    """The docker CLI's environment for a private dockerd on `sock`."""
    env = dict(os.environ, DOCKER_HOST=f"unix://{sock}", DOCKER_CONFIG=os.path.join(tmp, "cli"), DOCKER_BUILDKIT="0")
    env.pop("DOCKER_CONTEXT", None)
    return env


def private_tmpdir(prefix):
    """A directory of our own under /var/tmp (OCIRUN_ENGINE_TMP overrides).

    Not pytest's tmp_path_factory: every pytest session started as root on
    a shared machine prunes /tmp/pytest-of-root down to the newest three
    runs, deleting the stores of daemons still running in an older session.
    Not /tmp either: harnesses that "clean leaked mounts" with a blanket
    `umount -l` of everything under /tmp (seen on the project VM) rip the
    overlay rootfs out from under running containers, which then fail with
    `exec: "sh": executable file not found in $PATH`."""
    import tempfile
    base = os.environ.get("OCIRUN_ENGINE_TMP", "/var/tmp")
    os.makedirs(base, exist_ok=True)
    return tempfile.mkdtemp(prefix=f"ocirun-{prefix}-", dir=base)


def missing_parent_cgroups(name):
    """The /sys/fs/cgroup/<hierarchy>/<name> directories that do not exist
    yet: engines make their parent cgroup (docker: docker, podman:
    libpod_parent) on first use and never remove it."""
    root = "/sys/fs/cgroup"
    try:
        hiers = [os.path.join(root, h) for h in os.listdir(root)]
    except OSError:
        return []
    return [os.path.join(h, name) for h in hiers if os.path.isdir(h) and not os.path.isdir(os.path.join(h, name))]


def remove_cgroup_dirs(dirs):
    """rmdir each (empty) cgroup and its sub-cgroups, deepest first."""
    for d in dirs:
        subs = [os.path.join(b, x) for b, ds, _ in os.walk(d) for x in ds]
        for sub in sorted(subs, key=len, reverse=True) + [d]:
            try:
                os.rmdir(sub)
            except OSError:
                pass


def remove_tree(path):
    unmount_all_under(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def eng_tmp():
    need_root()
    d = private_tmpdir("eng")
    yield d
    remove_tree(d)


@pytest.fixture(scope="session")
def busybox_rootfs(eng_tmp):
    if not shutil.which("busybox"):
        pytest.skip("busybox-static is not installed")
    return ociimage.build_rootfs(os.path.join(eng_tmp, "rootfs"))


@pytest.fixture(scope="session")
def busybox_archive(busybox_rootfs, eng_tmp):
    return ociimage.build_archive(busybox_rootfs, os.path.join(eng_tmp, "busybox-oci.tar"))


@pytest.fixture(scope="session")
def busybox_rootfs_tar(busybox_rootfs, eng_tmp):
    return ociimage.rootfs_tar(busybox_rootfs, os.path.join(eng_tmp, "busybox-rootfs.tar"))


# --------------------------------------------------------------- helpers

def run(cmd, timeout=60, check=False, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    r = subprocess.run(cmd, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd} -> {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}")
    return r


def wait_for(pred, timeout, interval=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def mounts_under(prefix):
    with open("/proc/self/mountinfo") as f:
        mps = [line.split()[4] for line in f]
    return [m for m in mps if m == prefix or m.startswith(prefix.rstrip("/") + "/")]


def unmount_all_under(prefix):
    for _ in range(3):
        mps = mounts_under(prefix)
        if not mps:
            return
        for m in sorted(mps, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)


def pids_matching(needle):
    """Pids whose cmdline contains `needle` (a unique tmp path we created)."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmd:
            out.append(int(p))
    return out


def stop_process(proc, timeout=15):
    """Terminate a daemon we started (by its Popen), escalating to SIGKILL."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


class Daemon:
    """An engine daemon (containerd, dockerd) started for a test module on
    private paths: its log file, the wait until it answers, the log's tail
    and what to show when a test fails.  A subclass sets `name`, `logfile`
    and `runtime`, calls start(), and stops it with stop_daemon() inside its
    own stop()."""

    name = "daemon"
    tail_lines = 60

    def start(self, cmd, ready, timeout, interval=0.2, what=None, env=None):
        self.log_fh = open(self.logfile, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log_fh, stderr=subprocess.STDOUT, start_new_session=True,
                                     env=env)
        try:
            wait_for(lambda: self.proc.poll() is None and ready(), timeout, interval=interval,
                     what=what or f"{self.name} to answer")
        except TimeoutError:
            self.stop()
            raise AssertionError(f"{self.name} did not start:\n" + self.log_tail()) from None

    def log_tail(self, n=None):
        with open(self.logfile, errors="replace") as f:
            return "".join(f.readlines()[-(n or self.tail_lines):])

    def diag(self, mark=0):
        """What to show when a test fails: ocirun calls and the daemon's log."""
        return (f"\n--- ocirun calls ---\n{self.runtime.calls_since(mark)}"
                f"\n--- {self.name} log (tail) ---\n{self.log_tail()}")

    def stop_daemon(self, timeout=15):
        stop_process(self.proc, timeout=timeout)

    def close_log(self):
        self.log_fh.close()


def kill_pids(pids):
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path="/", timeout=20):
    """GET from 127.0.0.1:port with a bounded retry loop; returns the body."""
    def attempt():
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        if b"200" not in data.split(b"\r\n", 1)[0]:
            raise OSError(f"bad response {data[:100]!r}")
        return data.split(b"\r\n\r\n", 1)[1]
    return wait_for(attempt, timeout, interval=0.3, what=f"http://127.0.0.1:{port}{path}")


class PtySession:
    """Run a command on a fresh pty (the engine's -t needs a real terminal)."""

    def __init__(self, cmd, env=None):
        import pty
        self.master, slave = pty.openpty()
        import termios
        import fcntl
        import struct
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                                     env=env, preexec_fn=None)
        os.close(slave)
        self.buf = b""

    def write(self, data):
        os.write(self.master, data.encode() if isinstance(data, str) else data)

    def expect(self, needle, timeout=20):
        import select
        needle = needle.encode() if isinstance(needle, str) else needle
        deadline = time.monotonic() + timeout
        while needle not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {needle!r} on the pty; got {self.buf[-2000:]!r}")
            r, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if r:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # EIO: the other side closed
                    chunk = b""
                if not chunk:
                    if self.proc.poll() is not None and needle not in self.buf:
                        raise EOFError(f"pty closed (rc={self.proc.returncode}) before {needle!r}; "
                                       f"got {self.buf[-2000:]!r}")
                    time.sleep(0.05)
                self.buf += chunk
        return self.buf

    def drain(self, timeout=1.0):
        import select
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.master], [], [], 0.1)
            if r:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                self.buf += chunk
        return self.buf

    def wait(self, timeout=20):
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.drain(0.3)

    def close(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        try:
            os.close(self.master)
        except OSError:
            pass
