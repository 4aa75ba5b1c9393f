"""Shared fixtures.  Integration tests run real containers as root through the
installed `ocirun` binary (OCIRUN=path overrides) and assert on what the
container itself observed; every one of them is checked for leftovers
(state, mounts, processes, cgroups) afterwards."""

import copy
import json
import os
import secrets
import shutil
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def _compiled_from_installed_copy():
    """The tests import ocirun from this tree, whose compiled extensions
    (ocirun._lifecycle, ...) exist only in the installed copy: let the tree's
    package find them there (scripts/install.sh, or pip install . for the
    tests' interpreter, builds them from this same tree)."""
    import glob

    import ocirun

    for entry in sys.path:
        d = os.path.join(entry or ".", "ocirun")
        if os.path.abspath(d) != os.path.join(REPO, "ocirun") and glob.glob(os.path.join(d, "_lifecycle*.so")):
            ocirun.__path__.append(d)
            return


_compiled_from_installed_copy()

SCHEMAS = os.path.join(REPO, "tests", "schemas")


def schema_validator(name):
    """A validator for one of the project's own schemas in tests/schemas
    (state.json, features.json, config.json: what engines rely on in
    `state` and `features` output and the shape of a config).  Skips when
    jsonschema is missing: call it before creating anything, so that a
    skipped test leaves nothing behind."""
    jsonschema = pytest.importorskip("jsonschema")
    with open(os.path.join(SCHEMAS, name)) as fh:
        schema = json.load(fh)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def ocirun_cmd():
    env = os.environ.get("OCIRUN")
    if env:
        return [env]
    if os.path.exists("/usr/local/bin/ocirun"):
        return ["/usr/local/bin/ocirun"]
    return [sys.executable, "-m", "ocirun"]


def installed_init():
    """Path of the ocirun-init the installed ocirun uses (tests import the
    Python modules from the tree, but exercise the installed binaries)."""
    out = subprocess.run([sys.executable, "-I", "-c", "import ocirun.launch as l; print(l.INIT_PATH)"],
                         capture_output=True, text=True, cwd="/")
    path = out.stdout.strip()
    if out.returncode != 0 or not os.path.exists(path):
        pytest.skip("ocirun is not installed (scripts/install.sh)")
    return path


def is_root():
    return os.geteuid() == 0


@pytest.fixture(scope="session")
def rootfs_template(tmp_path_factory):
    if not is_root():
        pytest.skip("integration tests need root")
    dest = tmp_path_factory.mktemp("rootfs-template") / "rootfs"
    subprocess.run([os.path.join(REPO, "bundles", "busybox", "build-rootfs.sh"), str(dest)], check=True,
                   stdout=subprocess.DEVNULL)
    return str(dest)


def base_config():
    from ocirun.spec.template import default_spec

    cfg = default_spec()
    cfg["process"]["terminal"] = False
    return cfg


class Env:
    """One test's bundle, state root and container ids."""

    def __init__(self, tmp_path, template):
        self.tmp = str(tmp_path)
        self.root = os.path.join(self.tmp, "state")
        self.bundle = os.path.join(self.tmp, "bundle")
        self.rootfs = os.path.join(self.bundle, "rootfs")
        shutil.copytree(template, self.rootfs, symlinks=True)
        self.cfg = base_config()
        self.ids = []
        self.cmd = ocirun_cmd()

    def new_id(self, prefix="t"):
        cid = f"ocirun-test-{prefix}-{secrets.token_hex(4)}"
        self.ids.append(cid)
        return cid

    def write(self, cfg=None):
        with open(os.path.join(self.bundle, "config.json"), "w") as f:
            json.dump(self.cfg if cfg is None else cfg, f)

    def cli(self, *args, input=None, timeout=30, root=True, **kw):
        """Run ocirun; stdout/stderr go through files, not pipes: a created
        container's init keeps the caller's stdio (as runc's does), so
        waiting for EOF on a pipe would wait for the container."""
        import tempfile

        cmd = list(self.cmd) + (["--root", self.root] if root else []) + [str(a) for a in args]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            p = subprocess.run(cmd, input=input.encode() if input is not None else None, stdout=out, stderr=err,
                               timeout=timeout, **kw)
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(cmd, p.returncode, out.read().decode(errors="replace"),
                                               err.read().decode(errors="replace"))

    def run(self, args, cid=None, extra=(), **kw):
        """Run the container in the foreground with process.args = args."""
        self.cfg["process"]["args"] = args
        self.write()
        cid = cid or self.new_id()
        return self.cli("run", *extra, "-b", self.bundle, cid, **kw)

    def sh(self, script, **kw):
        return self.run(["sh", "-c", script], **kw)

    def create(self, args=("sleep", "100"), cid=None, extra=()):
        self.cfg["process"]["args"] = list(args)
        self.write()
        cid = cid or self.new_id()
        r = self.cli("create", *extra, "-b", self.bundle, cid)
        assert r.returncode == 0, r.stderr
        return cid

    def use_userns(self, host=100000):
        """A user namespace mapping container ids 0-65535 to host ones from
        `host`: the rootfs is given to the mapped root and the bundle's
        directories made searchable for it (as runc needs too)."""
        self.cfg["linux"]["namespaces"].append({"type": "user"})
        self.cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": host, "size": 65536}]
        self.cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": host, "size": 65536}]
        subprocess.run(["chown", "-R", f"{host}:{host}", self.rootfs], check=True)
        d = self.bundle
        while d not in ("/", "/tmp"):
            os.chmod(d, 0o755)
            d = os.path.dirname(d)

    @staticmethod
    def wait_file(path, timeout=10.0):
        """The text of a file a container writes with `echo … > path`, once
        the line is whole (the file exists, empty, before the write), or ""."""
        import time

        end = time.monotonic() + timeout
        while True:
            try:
                with open(path) as f:
                    text = f.read()
                if text.endswith("\n"):
                    return text
            except FileNotFoundError:
                pass
            if time.monotonic() > end:
                return ""
            time.sleep(0.02)

    def state(self, cid):
        r = self.cli("state", cid)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def wait_status(self, cid, want="stopped", timeout=20.0, state=None):
        """Poll the container's status until it is `want` (through `state`,
        a callable returning the state dict, if given: another binary or
        user); fails the test if it never gets there."""
        return wait_status(state or self.state, cid, want, timeout)


def wait_status(state, cid, want="stopped", timeout=20.0):
    """Poll state(cid)["status"] until it is `want`; AssertionError if it
    never gets there within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = state(cid)["status"]
        if got == want:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{cid} never became {want} (still {got})")
        time.sleep(0.05)


class FdSocket:
    """A listening AF_UNIX socket for --console-socket and --pidfd-socket:
    receive() accepts one connection and returns (payload, fd), the one fd
    the runtime sent (runc's protocol: one message, exactly one fd)."""

    def __init__(self, path):
        import socket

        self.path = path
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(1)
        self.fds = []

    def receive(self):
        import array
        import socket

        conn, _ = self.srv.accept()
        try:
            msg, anc, _flags, _addr = conn.recvmsg(4096, socket.CMSG_SPACE(4))
        finally:
            conn.close()
        fds = array.array("i")
        for level, typ, data in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
        self.fds.extend(fds)
        assert len(anc) == 1 and len(fds) == 1, f"expected exactly one fd, got {list(fds)} in {len(anc)} messages"
        return msg, fds[0]

    def close(self):
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []
        self.srv.close()


def read_until(fd, marker, limit=1 << 20):
    """What a terminal master (or any fd) gives until `marker` appears, EOF
    or EIO (the terminal's other side closed)."""
    out = b""
    while marker not in out and len(out) < limit:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out


@pytest.fixture
def console_socket(tmp_path):
    """An FdSocket at <tmp>/console.sock, closed (with every fd it received)
    after the test."""
    s = FdSocket(str(tmp_path / "console.sock"))
    yield s
    s.close()


def warm_mode():
    """The suite runs twice in CI: cold, and with OCIRUN_WARM=1 (README,
    "Warm start")."""
    return os.environ.get("OCIRUN_WARM", "").lower() in ("1", "on", "true", "yes")


NOBODY = 65534


def reachable_by_others(path):
    """Let another user (nobody) walk down to `path` (pytest's tmp is 0700)."""
    d = path
    while d not in ("/", "/tmp"):
        os.chmod(d, os.stat(d).st_mode | 0o011)
        d = os.path.dirname(d)


def state_entries(root):
    """What a state root holds besides the warm server's socket
    (`ocirun-warm@<build>`, README "Warm start"): the containers' entries."""
    try:
        return [n for n in os.listdir(root) if not n.startswith("ocirun-warm@")]
    except FileNotFoundError:
        return []


def leftovers(env):
    """Everything a test's containers may have left on the host."""
    problems = []
    if os.path.isdir(env.root):
        left = state_entries(env.root)
        if left:
            problems.append(f"state entries: {left}")
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f]
    bad = [m for m in mounts if m.startswith(env.tmp)]
    if bad:
        problems.append(f"host mounts: {bad}")
    for cid in env.ids:
        for base, dirs, _files in os.walk("/sys/fs/cgroup"):
            if cid in dirs:
                problems.append(f"cgroup {base}/{cid}")
            if base.count("/") > 6:
                dirs[:] = []
    front = os.path.realpath(env.cmd[0]) if len(env.cmd) == 1 else None
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            root = os.readlink(f"/proc/{pid}/root")
        except OSError:
            continue
        if root.startswith(env.tmp):
            problems.append(f"process {pid} rooted in {root}")
        try:
            # the front-end's cgroup v1 primer (a fork, never an exec, of it)
            if front and os.readlink(f"/proc/{pid}/exe") == front:
                problems.append(f"front-end process {pid} still running")
        except OSError:
            pass
    return problems


def force_clean(env):
    r = env.cli("list", "-q")
    for cid in r.stdout.split():
        env.cli("delete", "--force", cid)
    with open("/proc/self/mountinfo") as f:
        for m in reversed([line.split()[4] for line in f]):
            if m.startswith(env.tmp):
                subprocess.run(["umount", "-l", m], capture_output=True)


@pytest.fixture
def env(tmp_path, rootfs_template):
    e = Env(tmp_path, rootfs_template)
    warm = warm_mode()
    if warm:
        # every call of the test is then served warm, not only those after
        # the first cold one (which starts the server)
        os.makedirs(e.root, exist_ok=True)
        r = e.cli("warm", "start")
        assert r.returncode == 0, r.stderr
    yield e
    if warm:
        e.cli("warm", "stop")
    # a test may leave a container on purpose only if it deletes it itself
    deadline = time.monotonic() + 5
    problems = leftovers(e)
    while problems and time.monotonic() < deadline:
        time.sleep(0.1)
        problems = leftovers(e)
    if problems:
        force_clean(e)
        pytest.fail("left behind: " + "; ".join(problems))


@pytest.fixture
def cfg_copy():
    return copy.deepcopy(base_config())


def private_systemd_factory(mktemp):
    """A generator for the private_systemd fixtures: yields boot(binds=(),
    tmpfs=(), mode="unified") that returns a booted tests.systemd_ns
    PrivateSystemd (skipping, before creating anything, where systemd 252+
    or D-Bus is missing), and tears every one down afterwards, also when the
    test failed or was interrupted; fails the test if one left a cgroup."""
    from tests import systemd_ns

    booted = []

    def boot(binds=(), tmpfs=(), mode="unified", **kw):
        why = systemd_ns.unavailable(mode)
        if why:
            pytest.skip(why)
        sd = systemd_ns.PrivateSystemd(str(mktemp("sdns")), binds=binds, tmpfs=tmpfs, mode=mode, **kw)
        booted.append(sd)
        return sd.up()

    yield boot
    problems = []
    for sd in booted:  # every one, whatever happened to the previous
        try:
            report = sd.down() or {}
        except Exception as e:  # noqa: BLE001 - reported below
            report = {"left": [f"teardown failed: {e!r}"]}
        problems += report.get("left", [])
        problems += [d for d in sd.host_cgroup_dirs() if os.path.exists(d)]
    if problems:
        pytest.fail("the private systemd left behind: " + "; ".join(problems))


@pytest.fixture
def private_systemd(tmp_path_factory):
    """boot(binds=(), tmpfs=(), mode="unified"): a private systemd for this
    test (tests/systemd_ns.py says what it is), torn down after it."""
    yield from private_systemd_factory(tmp_path_factory.mktemp)
