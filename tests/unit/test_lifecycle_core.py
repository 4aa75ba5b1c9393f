"""The lifecycle mechanism both sides share (csrc/core/lifecycle.c: the
front-end links it, Python reaches it as ocirun._lifecycle), on processes
this test forks and on temporary trees; no root needed."""

import errno
import os
import signal
import socket
import stat
import subprocess
import time

import pytest

from ocirun import tables

# built by scripts/install.sh (or pip install .); tests/conftest.py lets the
# tree's package find it in the installed copy
lc = pytest.importorskip("ocirun._lifecycle", reason="ocirun is not built and installed (scripts/install.sh)")


def proc_start(pid):
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    return int(data[data.rfind(b")") + 2:].split()[19])


@pytest.fixture
def child():
    """A forked child that never execs (PF_FORKNOEXEC stays set)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        os.read(r, 1)
        os._exit(0)
    os.close(r)
    yield pid
    os.close(w)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def test_start_time_of_a_live_process_a_zombie_and_a_reaped_one(child):
    assert lc.pid_start_time(child) == proc_start(child) > 0
    os.kill(child, signal.SIGKILL)
    while open(f"/proc/{child}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.005)
    assert lc.pid_start_time(child) == -1  # a zombie counts as gone
    os.waitpid(child, 0)
    assert lc.pid_start_time(child) == -1
    assert lc.pid_start_time(0) == -1 and lc.pid_start_time(-5) == -1


def test_never_executed(child):
    start = proc_start(child)
    assert lc.never_executed(child, start) and lc.never_executed(child, -1)
    assert not lc.never_executed(child, start + 1)  # another process's start time
    p = subprocess.Popen(["sleep", "30"])
    try:
        deadline = time.monotonic() + 10
        while lc.never_executed(p.pid, -1) and time.monotonic() < deadline:  # until its execve
            time.sleep(0.005)
        assert not lc.never_executed(p.pid, proc_start(p.pid))
    finally:
        p.kill()
        p.wait()
    assert not lc.never_executed(p.pid, -1)  # gone: can no longer be told


def test_status_derivation(child, tmp_path):
    start = proc_start(child)
    fifo = tmp_path / "exec.fifo"
    os.mkfifo(fifo)
    v1, v2 = tmp_path / "freezer.state", tmp_path / "cgroup.freeze"
    v1.write_text("THAWED\n")
    v2.write_text("0\n")
    assert lc.status(child, start, None, 0, str(fifo)) == "created"
    assert lc.status(child, start, str(v1), 1, str(fifo)) == "created"
    assert lc.status(child, start, str(tmp_path / "absent"), 1, str(tmp_path / "nofifo")) == "running"
    v1.write_text("FREEZING\n")
    assert lc.status(child, start, str(v1), 1, str(fifo)) == "paused"  # frozen wins over the fifo, as runc
    v1.write_text("FROZEN")
    assert lc.status(child, start, str(v1), 1, None) == "paused"
    v2.write_text("1")  # (a regular file here: the thaw below writes in place)
    assert lc.status(child, start, str(v2), 2, None) == "paused"
    assert lc.status(child, start, str(v2), 1, None) == "running"  # "1" is not a v1 state
    assert lc.status(child, start + 1, str(v2), 2, str(fifo)) == "stopped"  # a recycled pid
    assert lc.status(child, -1, None, 0, str(fifo)) == "stopped"  # start time unknown
    assert lc.thaw(str(v2), 2) == 0 and v2.read_text() == "0"
    assert lc.thaw(str(v1), 1) == 0 and v1.read_text() == "THAWED"
    assert lc.thaw(None, 0) == 0
    assert lc.thaw(str(tmp_path / "absent"), 1) == -errno.ENOENT


def test_state_module_uses_the_rules(child, tmp_path):
    from ocirun import state

    st = {"id": "c1", "pid": child, "start_time": proc_start(child)}
    store = state.Store(str(tmp_path))
    os.mkdir(store.dir("c1"))
    assert state.status(store, st) == "running"
    os.mkfifo(os.path.join(store.dir("c1"), "exec.fifo"))
    assert state.status(store, st) == "created"
    assert state.status(store, dict(st, start_time=None)) == "stopped"
    assert state.pid_start_time(child) == st["start_time"]
    assert state.never_executed(child) and state.never_executed(child, st["start_time"])


def test_signal_only_the_process_of_that_start_time(child):
    start = proc_start(child)
    assert lc.signal(child, start + 1, signal.SIGKILL) == -errno.ESRCH
    assert lc.signal(child, -1, signal.SIGKILL) == -errno.ESRCH
    assert lc.wait_dead(child, start, 150) == 0  # untouched: still there after the timeout
    assert lc.signal(child, start, 0) == 0
    assert lc.signal(child, start, signal.SIGKILL) == 0
    assert lc.wait_dead(child, start, 10000) == 1
    _, status = os.waitpid(child, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert lc.signal(child, start, signal.SIGKILL) == -errno.ESRCH  # gone
    assert lc.wait_dead(child, start, 10000) == 1


def test_state_dir_removed_whole_without_following_symlinks(tmp_path):
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "keep").write_text("x")
    (outside / "deep" / "keep").write_text("y")
    d = tmp_path / "root" / "c1"
    (d / "notify" / "a" / "b").mkdir(parents=True)
    for name in ("state.json", "fast", ".fast.tmp", "config.json", "unknown", "notify/a/b/f"):
        (d / name).write_text("z")
    os.mkfifo(d / "exec.fifo")
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(d / "notify" / "notify.sock"))
    s.close()
    os.symlink(outside, d / "link-dir")
    os.symlink(outside / "keep", d / "link-file")
    os.symlink(outside, d / "notify" / "a" / "link")
    os.symlink("/nonexistent", d / "dangling")
    (d / "ro").mkdir()
    (d / "ro" / "f").write_text("z")
    os.chmod(d / "ro", 0o500)  # root removes it anyway; others could not have made it
    if os.geteuid() != 0:
        os.chmod(d / "ro", 0o700)
    assert lc.remove_dir(str(d)) == 0
    assert not os.path.lexists(d)
    assert sorted(os.listdir(outside)) == ["deep", "keep"] and (outside / "deep" / "keep").read_text() == "y"
    assert lc.remove_dir(str(d)) == 0  # gone already


def test_state_dir_that_is_a_symlink_is_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    os.symlink(outside, tmp_path / "c1")
    assert lc.remove_dir(str(tmp_path / "c1")) in (-errno.ELOOP, -errno.ENOTDIR)
    assert (outside / "keep").read_text() == "x"


def test_store_remove_takes_what_a_crash_left(tmp_path):
    from ocirun import state

    store = state.Store(str(tmp_path))
    d = tmp_path / "c1"
    (d / "leftover" / "sub").mkdir(parents=True)
    (d / "leftover" / "sub" / "f").write_text("z")
    (d / "state.json").write_text("{}")
    store.remove("c1")
    assert os.listdir(tmp_path) == []


def test_cgroup_tree_removed_deepest_first(tmp_path):
    top = tmp_path / "cg"
    for sub in ("a/b/c", "a/d", "e"):
        (top / sub).mkdir(parents=True)
    assert lc.remove_cgroup(str(top), 1.0) is None
    assert not top.exists()
    assert lc.remove_cgroup(str(top), 1.0) is None  # gone already
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "b" / "f").write_text("z")  # cgroupfs has no such thing: rmdir fails, no retry
    err, bad = lc.remove_cgroup(str(top), 1.0)
    assert err == errno.ENOTEMPTY and bad == str(top / "a" / "b")


def test_signal_table_is_the_one_python_uses():
    """The table (the only one: tables.parse_signal reads it) has every
    standard signal under each of its names, numbered as this libc does."""
    table = lc.signals()
    host = {n[3:]: int(getattr(signal, n)) for n in dir(signal)
            if n.startswith("SIG") and not n.startswith("SIG_") and 0 < int(getattr(signal, n)) < 32}
    assert table == host
    for name, num in table.items():
        for form in (name, "SIG" + name, name.lower(), "sig" + name.lower()):
            assert lc.signal_number(form) == num == tables.parse_signal(form)
    for n in range(0, 65):
        assert lc.signal_number(str(n)) == n
    assert lc.signal_number("007") == 7
    for bad in ("", "65", "1000", "-1", "RTMIN", "RTMIN+1", "SIG", "KIL", "KILL ", "9x", "é", "KI\0LL"):
        assert lc.signal_number(bad) == -1, bad


def test_id_grammar():
    for ok in ("a", "A-Z_0.9+x", "...", "-", "x" * 1024):
        assert lc.valid_id(ok), ok
    for bad in ("", ".", "..", "x" * 1025, "a/b", "a b", "é", "a\0b", "a\nb", "a\udcffb", "../x"):
        assert not lc.valid_id(bad), bad
    from ocirun.errors import OcirunError
    from ocirun.state import validate_id

    assert validate_id("ok-1") == "ok-1"
    with pytest.raises(OcirunError, match="^invalid container ID format$"):
        validate_id("a\0b")


def test_errno_wording_is_glibcs():
    for e in (errno.EPERM, errno.ENOENT, errno.ESRCH, errno.EBUSY, errno.EACCES, errno.ENOTEMPTY, errno.ELOOP,
              errno.EINVAL, errno.EMFILE, errno.ENOSYS, errno.EROFS, errno.ENOSPC, errno.EAGAIN):
        assert lc.strerror(e) == os.strerror(e)


def test_messages_word_errnos_through_the_core(tmp_path):
    """errors.strerror, the one wording of every message, is the core's text
    with its first letter lower-cased (Go's, as runc prints: "remote I/O
    error", not "remote i/o error"); importing ocirun.errors does not load
    the extension, only a message does."""
    from ocirun import errors
    from ocirun.verbs.exec import ExecError, load_process_file

    assert errors.strerror(errno.ENOENT) == "no such file or directory"
    assert errors.strerror(errno.EREMOTEIO) == "remote I/O error"
    assert errors.strerror(0) == "success" and errors.strerror(4242) == "unknown error 4242"
    with pytest.raises(ExecError) as e:
        load_process_file(str(tmp_path / "nope.json"))
    assert str(e.value) == f"exec failed: --process {tmp_path}/nope.json: no such file or directory"
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ext = os.path.dirname(os.path.abspath(lc.__file__))  # the tree's package finds it there (as tests/conftest.py)
    r = subprocess.run(["/usr/bin/python3", "-I", "-S", "-c",
                        f"import sys; sys.path.insert(0, {repo!r}); import ocirun; ocirun.__path__.append({ext!r}); "
                        "import ocirun.errors as E; print('ocirun._lifecycle' in sys.modules); "
                        "print(E.strerror(2), 'ocirun._lifecycle' in sys.modules)"],
                       capture_output=True, text=True, cwd="/", env={"PATH": "/usr/bin:/bin"})
    assert (r.returncode, r.stdout) == (0, "False\nno such file or directory True\n"), r.stderr


def test_user_namespace_detection():
    with open("/proc/self/uid_map") as f:
        lines = f.read().split("\n")
    initial = [ln.split() for ln in lines if ln.strip()] == [["0", "0", "4294967295"]]
    assert lc.in_user_namespace() == (not initial)
    # in a user namespace of its own (unshare -r maps the caller to root)
    site = os.path.dirname(os.path.dirname(os.path.abspath(lc.__file__)))
    r = subprocess.run(["unshare", "-U", "-r", "/usr/bin/python3", "-I", "-c",
                        f"import sys; sys.path.insert(0, {site!r}); from ocirun import _lifecycle as l; "
                        "print(l.in_user_namespace())"], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("no unprivileged user namespaces: " + r.stderr.strip()[-200:])
    assert r.stdout.strip() == "True"
    # one whose map is not written yet (an empty uid_map): not the initial map either, as runc has it
    r = subprocess.run(["unshare", "-U", "/usr/bin/python3", "-I", "-c",
                        f"import sys; sys.path.insert(0, {site!r}); from ocirun import _lifecycle as l; "
                        "print(repr(open('/proc/self/uid_map').read()), l.in_user_namespace())"],
                       capture_output=True, text=True, cwd="/")
    assert r.stdout.strip() == "'' True", r.stderr


def test_remove_made_takes_own_groups_whole_and_parents_only_when_empty(tmp_path):
    parent, busy_parent = tmp_path / "p", tmp_path / "q"
    own1, own2 = parent / "c1", busy_parent / "c1"
    (own1 / "sub" / "subsub").mkdir(parents=True)
    own2.mkdir(parents=True)
    (busy_parent / "other").mkdir()  # another container's group under a parent we made
    made = [str(own1), str(own2), str(parent), str(busy_parent)]  # deepest first
    assert lc.remove_made(made, [str(own1), str(own2)], 1.0) is None
    assert not parent.exists() and not own2.exists()
    assert sorted(os.listdir(busy_parent)) == ["other"]  # not ours to take
    # the first failure is reported, the rest still tried
    (own1 / "sub").mkdir(parents=True)
    (own1 / "sub" / "f").write_text("z")
    own2.mkdir()
    err, bad = lc.remove_made([str(own1), str(own2)], [str(own1), str(own2)], 1.0)
    assert (err, bad) == (errno.ENOTEMPTY, str(own1 / "sub")) and not own2.exists()


def test_default_root():
    root_here = os.geteuid() == 0 and not lc.in_user_namespace()
    assert lc.default_root(None) == "/run/ocirun" and lc.default_root("") == "/run/ocirun"
    assert lc.default_root("/run/user/1000//") == ("/run/ocirun" if root_here else "/run/user/1000/ocirun")
    assert lc.default_root("/") == ("/run/ocirun" if root_here else "/ocirun")
    if os.geteuid() == 0:  # and as a non-root user: XDG_RUNTIME_DIR is used
        site = os.path.dirname(os.path.dirname(os.path.abspath(lc.__file__)))
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-I",
                            "-c", f"import sys; sys.path.insert(0, {site!r}); from ocirun import _lifecycle as l; "
                            "print(l.default_root('/run/user/65534/'))"], capture_output=True, text=True, cwd="/")
        if r.returncode != 0:
            pytest.skip("cannot run as uid 65534: " + r.stderr.strip()[-200:])
        assert r.stdout.strip() == "/run/user/65534/ocirun"


def _released_by(tmp_path, child_does):
    """A forked child playing the init's side of the exec fifo (child_does
    gets the fifo's write end, or is None: the child dies without opening
    it); what lc_release makes of it."""
    fifo = str(tmp_path / "exec.fifo")
    os.mkfifo(fifo)
    pid = os.fork()
    if pid == 0:
        try:
            if child_does is None:
                time.sleep(0.2)
            else:
                child_does(os.open(fifo, os.O_WRONLY | os.O_CLOEXEC))  # once the reader opens
        finally:
            os._exit(0)
    try:
        deadline = time.monotonic() + 10
        while lc.pid_start_time(pid) < 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        start = lc.pid_start_time(pid)
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            return lc.release(fd, pid, start)
        finally:
            os.close(fd)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _exec_true(fd):
    os.write(fd, b"0")
    os.execv("/bin/true", ["true"])  # the fifo closes with the execve


def _exec_sleep(fd):
    os.write(fd, b"0")
    os.execv("/bin/sleep", ["sleep", "30"])  # still running when released


def test_release_through_the_exec_fifo(tmp_path):
    (tmp_path / "a").mkdir()
    assert _released_by(tmp_path / "a", _exec_true) == "released"
    (tmp_path / "b").mkdir()
    assert _released_by(tmp_path / "b", _exec_sleep) == "released"
    for name, does, want in (("c", lambda fd: os.write(fd, b"0"), "dead"),  # exits before any execve
                             ("d", lambda fd: os.write(fd, b"Ehook failed"), "hook"),
                             ("e", lambda fd: os.write(fd, b"x"), "taken"),
                             ("f", lambda fd: None, "taken"),  # EOF from a writer now gone: as both sides had it
                             ("g", None, "dead")):  # gone without ever opening it
        (tmp_path / name).mkdir()
        assert _released_by(tmp_path / name, does) == want, name


def test_wait_dead_lets_python_signal_handlers_run(child):
    """A long wait is cut in slices: a signal handler that raises ends it."""
    class Interrupted(Exception):
        pass

    def handler(signum, frame):
        raise Interrupted

    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(Interrupted):
            lc.wait_dead(child, proc_start(child), 60000)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_state_dir_removal_does_not_enter_a_mount(tmp_path):
    """A file system mounted inside the directory is left whole (and so is
    the directory above it); done in a mount namespace of its own, so that
    nothing stays mounted on the host."""
    if os.geteuid() != 0:
        pytest.skip("mounting needs root")
    d = tmp_path / "c1"
    (d / "mnt").mkdir(parents=True)
    (d / "file").write_text("z")
    site = os.path.dirname(os.path.dirname(os.path.abspath(lc.__file__)))
    code = (f"import os, sys; sys.path.insert(0, {site!r}); from ocirun import _lifecycle as l; "
            f"os.system('mount -t tmpfs none {d}/mnt'); open('{d}/mnt/keep', 'w').write('x'); "
            f"print(l.remove_dir('{d}'), sorted(os.listdir('{d}')), open('{d}/mnt/keep').read())")
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "/usr/bin/python3", "-I", "-c", code],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(-errno.ENOTEMPTY), "['mnt']", "x"]


def test_release_lets_python_signal_handlers_run(tmp_path):
    """An init that neither writes nor dies (a long startContainer hook):
    the wait is cut in slices, and a signal handler that raises ends it."""
    class Interrupted(Exception):
        pass

    def handler(signum, frame):
        raise Interrupted

    def hang(fd):
        time.sleep(60)

    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(Interrupted):
            _released_by(tmp_path, hang)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_a_start_time_no_process_can_have_matches_nothing(child):
    """state.json is checked for a non-negative int: a tampered one beyond
    64 bits gives "stopped" and "not running", never an OverflowError."""
    huge = 1 << 70
    assert lc.status(child, huge, None, 0, None) == "stopped"
    assert lc.signal(child, huge, 0) == -errno.ESRCH
    assert not lc.never_executed(child, huge) and not lc.never_executed(child, -5)
    assert lc.wait_dead(child, huge, 1000) == 1
    assert lc.pid_start_time(child) > 0  # untouched


def test_core_under_sanitizers(tmp_path):
    """lifecycle.c built with ASan/UBSan: parsers on random input, removals
    of trees deeper than their recursion limits (tests/unit/c/lifecycle_check.c)."""
    import shutil

    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    core = os.path.join(repo, "csrc", "core")
    exe = tmp_path / "check"
    b = subprocess.run([cc, "-g", "-O1", "-Wall", "-Wextra", "-Werror", "-Wno-format-truncation", "-fsanitize=address,undefined",
                        "-fno-sanitize-recover=all", "-I", core, "-o", str(exe),
                        os.path.join(repo, "tests", "unit", "c", "lifecycle_check.c"),
                        os.path.join(core, "lifecycle.c")], capture_output=True, text=True)
    if b.returncode != 0 and "asan" in b.stderr.lower():
        pytest.skip("no sanitizer runtime: " + b.stderr.strip().splitlines()[-1])
    assert b.returncode == 0, b.stderr
    work = tmp_path / "work"
    work.mkdir()
    r = subprocess.run([str(exe), str(work)], capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stdout) == (0, "ok\n"), r.stderr[-3000:]
