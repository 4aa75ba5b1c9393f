"""The Python API: run containers from a Python program without shelling out
(docs/api.md).  It is the CLI's library, not a second runtime: every method
calls the verb `ocirun <verb>` calls (ocirun/verbs), on the same state under
the same --root (default /run/ocirun, as the CLI's), so a container made
here shows in `ocirun list` and one made by `ocirun create` can be driven
from here (`Container.get`).

    with ocirun.Container(ocirun.Spec(rootfs, ["sleep", "60"])) as c:   # created and started
        r = c.exec(["cat", "/etc/hostname"])                           # ExecResult(0, b"ocirun\\n", b"")
    # killed and deleted here, whatever happened inside

    r = ocirun.run(rootfs, ["sh", "-c", "echo hi"], memory="64M", pids=32, timeout=10)
    r.exit_code, r.stdout, r.stderr

Waiting (runc's `run`): the container's init is a child of the process that
created it (the bootstrap clones it with CLONE_PARENT), so this process
reaps it and gets its status: the exit code, or 128+N when signal N killed
it.  Another process — one that attached with Container.get() — is not its
parent: its wait() returns when the init is gone and says None (the status
went to the parent, or to the subreaper it was re-parented to when its
creator exited; a process that made itself a child subreaper before the
creator exited is that subreaper, and does get the status)."""

import functools
import os
import threading

from ocirun import log
from ocirun.errors import ContainerNotFound, OcirunError, StateError, Timeout, UsageError


def _to_logging(level, msg):
    import logging

    logging.getLogger("ocirun").log({"debug": logging.DEBUG, "warning": logging.WARNING,
                                     "error": logging.ERROR}.get(level, logging.INFO), msg)


_lock = threading.Lock()
_running = {"calls": 0, "saved": None}  # API calls in progress (any thread), the sink they replaced


def _api(fn):
    """While an API call runs, what the verbs log (a plan's warnings, a
    cgroup left behind, debug records) goes to the `logging` module's
    "ocirun" logger, not to this process's stderr as the CLI's log lines."""

    @functools.wraps(fn)
    def call(*args, **kw):
        with _lock:
            _running["calls"] += 1
            if _running["calls"] == 1:
                _running["saved"] = log.set_sink(_to_logging)
        try:
            return fn(*args, **kw)
        finally:
            with _lock:
                _running["calls"] -= 1
                if _running["calls"] == 0:
                    log.set_sink(_running["saved"])

    return call


# what stdin, stdout and stderr take, besides an fd or a file object (the
# subprocess module's values)
PIPE = -1
STDOUT = -2
DEVNULL = -3


def default_root():
    """The CLI's default --root: /run/ocirun, or $XDG_RUNTIME_DIR/ocirun for
    a user other than root (runc's rule)."""
    from ocirun import _lifecycle

    return _lifecycle.default_root(os.environ.get("XDG_RUNTIME_DIR"))


def _store(root):
    from ocirun.state import Store

    return Store(os.path.abspath(root or default_root()))


def _status_code(st):
    if os.WIFEXITED(st):
        return os.WEXITSTATUS(st)
    if os.WIFSIGNALED(st):
        return 128 + os.WTERMSIG(st)
    return None


def _poll(fd, timeout):
    """Whether fd became readable within timeout seconds (None: forever)."""
    import select

    p = select.poll()
    p.register(fd, select.POLLIN)
    ms = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
    return bool(p.poll(ms))


class _Stdio:
    """stdin/stdout/stderr arguments -> the fds the new process gets (None:
    this process's own) and this process's ends of the pipes."""

    def __init__(self, stdin, stdout, stderr):
        self.child = [None, None, None]
        self.parent = [None, None, None]
        self._after_spawn = []
        try:
            for i, v in enumerate((stdin, stdout, stderr)):
                if v is None:
                    continue
                if v is PIPE or (isinstance(v, int) and not isinstance(v, bool) and v == PIPE):
                    r, w = os.pipe()  # close-on-exec here; the spawn dup2s them
                    self.child[i], self.parent[i] = (r, w) if i == 0 else (w, r)
                    self._after_spawn.append(self.child[i])
                elif v == DEVNULL:
                    fd = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
                    self.child[i] = fd
                    self._after_spawn.append(fd)
                elif v == STDOUT and i == 2:
                    self.child[2] = self.child[1] if self.child[1] is not None else 1
                elif isinstance(v, int) and not isinstance(v, bool) and v >= 0:
                    self.child[i] = v
                elif hasattr(v, "fileno"):
                    self.child[i] = v.fileno()
                else:
                    raise UsageError(f"{('stdin', 'stdout', 'stderr')[i]}: {v!r} is not PIPE, DEVNULL, STDOUT, "
                                     "an fd or a file object")
        except BaseException:
            self.close_all()
            raise

    def spawned(self):
        """The process has its copies: close ours of its ends."""
        for fd in self._after_spawn:
            os.close(fd)
        self._after_spawn = []

    def close_all(self):
        self.spawned()
        for i, fd in enumerate(self.parent):
            if fd is not None:
                os.close(fd)
                self.parent[i] = None


class Result:
    """What a finished container or process gave: exit_code (128+N when
    signal N killed it), stdout and stderr (bytes, or str with text=True;
    None when not captured)."""

    __slots__ = ("exit_code", "stdout", "stderr")

    def __init__(self, exit_code, stdout=None, stderr=None):
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr

    @property
    def ok(self):
        return self.exit_code == 0

    def __iter__(self):
        return iter((self.exit_code, self.stdout, self.stderr))

    def __eq__(self, other):
        return isinstance(other, Result) and tuple(self) == tuple(other)

    def __repr__(self):
        return f"Result(exit_code={self.exit_code!r}, stdout={self.stdout!r}, stderr={self.stderr!r})"


ExecResult = Result


class Process:
    """A process this one spawned in a container (the init, or one from
    exec): `.pid`, `.stdin`/`.stdout`/`.stderr` (file objects for PIPE,
    else None), `.returncode` once waited for."""

    def __init__(self, pid, stdio, text=False, what="process"):
        self.pid = pid
        self.what = what
        self.returncode = None
        self._pidfd = os.pidfd_open(pid)  # our child, not reaped: it cannot be another process
        self._text = text
        self.stdin = self.stdout = self.stderr = None
        ends = stdio.parent
        stdio.parent = [None, None, None]
        for i, name in enumerate(("stdin", "stdout", "stderr")):
            if ends[i] is not None:
                mode = ("w" if i == 0 else "r") + ("" if text else "b")
                setattr(self, name, open(ends[i], mode, closefd=True, **({"encoding": "utf-8", "errors": "replace"}
                                                                             if text else {})))

    def poll(self):
        """The exit status if it has exited (reaping it), else None."""
        if self.returncode is None and _poll(self._pidfd, 0):
            self._reap()
        return self.returncode

    def _reap(self):
        try:
            _, st = os.waitpid(self.pid, 0)
            self.returncode = _status_code(st)
        except ChildProcessError:  # reaped by someone else (a SIGCHLD handler set to SIG_IGN, …)
            self.returncode = None
        self._close_pidfd()
        return self.returncode

    def _close_pidfd(self):
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def wait(self, timeout=None):
        """Wait for the exit; returns the exit code (128+N when killed by
        signal N).  Raises Timeout (the process keeps running) after
        `timeout` seconds."""
        if self._pidfd is None:
            return self.returncode
        if timeout is not None and not _poll(self._pidfd, timeout):
            raise Timeout(f"{self.what} {self.pid}: still running after {timeout} s", timeout)
        return self._reap()

    def send_signal(self, sig):
        """Signal it (never another process: it is not reaped yet)."""
        if self._pidfd is not None and self.returncode is None:
            import _signal

            try:
                _signal.pidfd_send_signal(self._pidfd, sig)
            except ProcessLookupError:
                pass

    def kill(self):
        self.send_signal(9)

    def terminate(self):
        self.send_signal(15)

    def communicate(self, input=None, timeout=None):
        """Write `input` to stdin (then close it), read stdout and stderr to
        EOF and wait for the exit; returns (stdout, stderr), None for a
        stream that is not a pipe.  On timeout raises Timeout holding what
        was read so far (the process keeps running)."""
        import select
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        if self._text and isinstance(input, str):
            input = input.encode()
        chunks = {}
        poller = select.poll()
        files = {}
        for f in (self.stdout, self.stderr):
            if f is not None and not f.closed:
                fd = f.fileno()
                files[fd] = f
                chunks[fd] = []
                poller.register(fd, select.POLLIN)
        wfd, view = None, None
        if self.stdin is not None and not self.stdin.closed:
            if input:
                self.stdin.flush()
                wfd, view = self.stdin.fileno(), memoryview(input)
                poller.register(wfd, select.POLLOUT)
            else:
                self._close_stdin()
        open_fds = set(files) | ({wfd} if wfd is not None else set())

        def partial(fd_of):
            return self._decode(b"".join(chunks[fd_of.fileno()])) if fd_of is not None and \
                fd_of.fileno() in chunks else None

        while open_fds:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise Timeout(f"{self.what} {self.pid}: still running after {timeout} s", timeout,
                              partial(self.stdout), partial(self.stderr))
            for fd, ev in poller.poll(None if left is None else max(1, int(left * 1000))):
                if fd == wfd:
                    try:
                        n = os.write(fd, view[:65536])
                        view = view[n:]
                    except BrokenPipeError:
                        view = view[:0]
                    if not view:
                        poller.unregister(fd)
                        open_fds.discard(fd)
                        self._close_stdin()
                    continue
                data = os.read(fd, 65536)
                if data:
                    chunks[fd].append(data)
                else:
                    poller.unregister(fd)
                    open_fds.discard(fd)
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            self.wait(left)
        except Timeout as e:
            e.stdout, e.stderr = partial(self.stdout), partial(self.stderr)
            raise
        out, err = partial(self.stdout), partial(self.stderr)
        self.close_pipes()
        return out, err

    def _decode(self, data):
        return data.decode("utf-8", "replace") if self._text else data

    def _close_stdin(self):
        if self.stdin is not None:
            try:
                self.stdin.close()
            except BrokenPipeError:
                pass
            self.stdin = None

    def close_pipes(self):
        self._close_stdin()
        for name in ("stdout", "stderr"):
            f = getattr(self, name)
            if f is not None:
                f.close()
                setattr(self, name, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        """Kill it if it still runs, reap it, close the pipes."""
        if self.returncode is None and self._pidfd is not None:
            if self.poll() is None:
                self.kill()
                self._reap()
        self.close_pipes()
        return False

    def __repr__(self):
        return f"<ocirun.Process {self.what} pid={self.pid} returncode={self.returncode}>"


class Container:
    """One container.  Give it a Spec (its bundle is written to a temporary
    directory, removed on delete) or an existing bundle directory.

    stdin, stdout, stderr: what the container's process gets — None (this
    process's own), PIPE (then .stdin/.stdout/.stderr are file objects),
    DEVNULL, STDOUT (stderr only), an fd or a file object.  text=True makes
    the pipes text (UTF-8).  root: the state directory (the CLI's --root).

    As a context manager, entering creates and starts it (unless create()
    was called already) and leaving kills it and deletes it — on an
    exception and on KeyboardInterrupt too."""

    def __init__(self, spec=None, *, id=None, bundle=None, root=None, stdin=None, stdout=None, stderr=None,
                 text=False, systemd_cgroup=False):
        from ocirun.state import validate_id

        if isinstance(spec, (str, os.PathLike)):
            spec, bundle = None, os.fspath(spec)
        if id is None:
            import secrets

            id = "ocirun-" + secrets.token_hex(6)
        self.id = validate_id(id)
        self.root = os.path.abspath(root or default_root())
        self.store = _store(self.root)
        self.spec = spec
        self.bundle = bundle
        self.systemd_cgroup = systemd_cgroup
        self.text = text
        self._stdio_args = (stdin, stdout, stderr)
        self._tmp_bundle = None
        self._spawner = None
        self._process = None  # the init, when this process created it
        self._created = False
        self._started = False
        self.pid = None
        self.stdin = self.stdout = self.stderr = None

    @classmethod
    def get(cls, id, root=None):
        """A container that exists already (made by `ocirun create`, another
        program, or this one): the same verbs act on it; wait() cannot have
        its exit status unless this process is its parent or subreaper."""
        c = cls(id=id, root=root)
        st = c.state()
        c.bundle = st.get("bundle")
        c.pid = st.get("pid") or None
        c._created = True
        return c

    # --- lifecycle ------------------------------------------------------
    @_api
    def create(self):
        """`ocirun create`: set it up, its process blocked before the
        user's program.  Returns self."""
        if self._created:
            raise StateError(f"container {self.id} was already created")
        from ocirun.cli.commands import rootless
        from ocirun.verbs.create import CreateOptions, create

        bundle = self.bundle
        if self.spec is not None:
            if bundle is None:
                import tempfile

                bundle = self._tmp_bundle = tempfile.mkdtemp(prefix=f"ocirun-bundle-{self.id}-")
            try:
                self.spec.write(bundle)
            except BaseException:
                self._remove_tmp_bundle()
                raise
        elif bundle is None:
            raise UsageError("Container: give it a Spec or a bundle directory")
        stdio = None
        try:
            stdio = _Stdio(*self._stdio_args)
            opts = CreateOptions(bundle=bundle, detach=True, rootless=rootless({}),
                                 systemd_cgroup=self.systemd_cgroup, stdio=stdio.child, activation=False)
            st, self._spawner = create(self.store, self.id, opts, keep_sync=True)
        except BaseException:
            if stdio is not None:
                stdio.close_all()
            self._remove_tmp_bundle()
            raise
        stdio.spawned()
        self.bundle = bundle
        self.pid = st["pid"]
        self._created = True
        self._process = Process(self.pid, stdio, self.text, what=f"container {self.id}")
        self.stdin, self.stdout, self.stderr = self._process.stdin, self._process.stdout, self._process.stderr
        return self

    @_api
    def start(self):
        """`ocirun start`: run the user's program.  Returns self."""
        from ocirun.verbs.start import start

        sp, self._spawner = self._spawner, None
        try:
            start(self.store, self.id)
        except StateError as e:
            why = None
            if sp is not None and str(e) == "container process is already dead":
                # what it reported before dying, or how it died (this reaps it)
                why = sp.execve_failure(self.pid, dead=True)
                if self._process is not None:
                    self._process._close_pidfd()
            raise StateError(why or str(e)) from None
        finally:
            if sp is not None:
                sp.close_sync()
        self._started = True
        return self

    def run(self):
        """create() and start()."""
        return self.create().start()

    def state(self):
        """`ocirun state`: the OCI state (id, pid, status, bundle, …)."""
        from ocirun.verbs.state import state

        return state(self.store, self.id)

    @property
    def status(self):
        """"created", "running", "paused" or "stopped"; "deleted" once it is
        gone."""
        try:
            return self.state()["status"]
        except ContainerNotFound:
            return "deleted"

    @_api
    def kill(self, sig=15, all=False):
        """`ocirun kill`: a signal (number or name) to the init, or to every
        process of the container."""
        from ocirun.verbs.kill import kill

        if isinstance(sig, str):
            from ocirun.tables import parse_signal

            sig = parse_signal(sig)
        kill(self.store, self.id, int(sig), all)

    @_api
    def wait(self, timeout=None):
        """Wait until the container's init is gone; returns its exit code
        (128+N when killed by signal N), or None when this process is not
        its parent (Container.get of a container another process made).
        Raises Timeout after `timeout` seconds (the container keeps running)."""
        if self._process is not None:
            return self._process.wait(timeout)
        return self._wait_not_ours(timeout)

    def _wait_not_ours(self, timeout):
        import time

        from ocirun.state import proc_stat
        from ocirun.verbs.common import wait_dead

        try:
            st = self.store.read(self.id)
        except ContainerNotFound:
            return None
        pid, start = st.get("pid"), st.get("start_time")
        if not pid or start is None:
            return None
        fields = proc_stat(pid)
        if fields and len(fields) > 19 and fields[1] == str(os.getpid()).encode() and fields[19] == str(start).encode():
            # re-parented to us (this process is a child subreaper), alive or
            # a zombie (then its pid cannot be reused before we reap it):
            # ours to reap
            self._process = Process(pid, _Stdio(None, None, None), what=f"container {self.id}")
            return self._process.wait(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
            if left <= 0:
                raise Timeout(f"container {self.id}: still running after {timeout} s", timeout)
            if wait_dead(pid, start, left):
                return None

    @property
    def returncode(self):
        """The exit code once wait() (or delete) collected it, else None."""
        return self._process.returncode if self._process is not None else None

    exit_code = returncode

    @_api
    def communicate(self, input=None, timeout=None):
        """Write `input` to its stdin, read its stdout and stderr (PIPE) to
        EOF and wait for its exit: (stdout, stderr).  Timeout: raises
        Timeout with what was read (the container keeps running)."""
        if self._process is None:
            raise StateError(f"container {self.id}: not created by this process")
        return self._process.communicate(input, timeout)

    @_api
    def delete(self, force=False):
        """`ocirun delete` (`--force`: kill it first); its exit status is
        collected, the temporary bundle removed."""
        from ocirun.verbs.delete import delete

        if self._spawner is not None:
            self._spawner.close_sync()
            self._spawner = None
        delete(self.store, self.id, force)
        if self._process is not None and self._process.returncode is None:
            self._process.poll()  # dead now: no zombie left behind
        self._remove_tmp_bundle()

    @_api
    def pause(self):
        from ocirun.verbs.freeze import pause

        pause(self.store, self.id)

    @_api
    def resume(self):
        from ocirun.verbs.freeze import resume

        resume(self.store, self.id)

    @_api
    def stats(self):
        """The cgroup's statistics (`ocirun events --stats`' data: cpu,
        memory, pids, blkio, hugetlb…)."""
        from ocirun.verbs.events import stats

        return stats(self.store, self.id)["data"]

    @_api
    def pids(self):
        """Host pids of the container's processes (`ocirun ps --format json`)."""
        from ocirun.verbs.ps import pids

        return pids(self.store, self.id)

    @_api
    def update(self, resources):
        """`ocirun update --resources`: new limits (a runtime-spec
        LinuxResources dict)."""
        from ocirun.verbs.update import update

        update(self.store, self.id, resources)

    @_api
    def connect(self, port, host="127.0.0.1", timeout=None):
        """A TCP connection to `host`:`port` made inside the container's
        network namespace (a service in a container with network "none"):
        a short-lived thread of this process enters the namespace, connects
        and exits; the socket stays in that namespace.  Needs CAP_SYS_ADMIN
        (root).  Raises OSError (ConnectionRefusedError, …) as
        socket.create_connection does."""
        import ctypes
        import socket
        import threading

        from ocirun.errors import strerror
        from ocirun.state import pid_start_time

        st = self.store.read(self.id)
        pid = st.get("pid")
        try:
            ns = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            raise StateError(f"container {self.id} is not running") from None
        got = {}
        try:
            # opened first, checked after: a recycled pid is never entered
            if not pid or pid_start_time(pid) != st.get("start_time"):
                raise StateError(f"container {self.id} is not running")

            def inside():
                try:
                    libc = ctypes.CDLL(None, use_errno=True)
                    if libc.setns(ns, 0x40000000) != 0:  # CLONE_NEWNET, this thread only
                        err = ctypes.get_errno()
                        raise OSError(err, f"setns into the network namespace of pid {pid}: {strerror(err)}")
                    got["sock"] = socket.create_connection((host, port), timeout)
                except BaseException as e:  # handed to the caller's thread
                    got["err"] = e

            t = threading.Thread(target=inside, name=f"ocirun-connect-{self.id}")
            t.start()
            t.join()
        finally:
            os.close(ns)
        if "err" in got:
            raise got["err"]
        return got["sock"]

    # --- exec -----------------------------------------------------------
    @_api
    def popen(self, args, *, env=None, cwd=None, user=None, additional_gids=None, capabilities=None,
              no_new_privileges=False, stdin=None, stdout=None, stderr=None, text=False, cgroup=None,
              ignore_paused=False):
        """`ocirun exec -d`: start `args` in the container (its process,
        overridden by these arguments, as runc's flags do) and return a
        Process to stream from, wait for or kill.  stdin/stdout/stderr as
        for Container."""
        from ocirun.verbs.exec import process_from_config, spawn_process

        if isinstance(args, str):
            raise UsageError("args: must be a list of strings, not a string")
        if isinstance(env, dict):
            env = [f"{k}={v}" for k, v in env.items()]
        if isinstance(user, tuple):
            user = f"{user[0]}:{user[1]}"
        opts = {"tty": False, "env": list(env or []), "cwd": cwd or "", "no_new_privs": no_new_privileges,
                "cap": list(capabilities or []), "user": "" if user is None else str(user),
                "additional_gids": [str(g) for g in additional_gids or []], "apparmor": "", "process_label": ""}
        proc = process_from_config(self.store, self.id, opts, list(args))
        stdio = _Stdio(stdin, stdout, stderr)
        try:
            pid, _master = spawn_process(self.store, self.id, proc, stdio=stdio.child, cgroup_spec=cgroup,
                                         ignore_paused=ignore_paused)
        except BaseException:
            stdio.close_all()
            raise
        stdio.spawned()
        return Process(pid, stdio, text, what=f"exec in {self.id}")

    @_api
    def exec(self, args, *, input=None, timeout=None, stdin=None, stdout=PIPE, stderr=PIPE, text=False, **kw):
        """`ocirun exec`: run `args` in the container and wait; returns
        Result(exit_code, stdout, stderr), output captured unless
        stdout/stderr say otherwise.  On timeout the process is killed and
        Timeout raised (with what it wrote)."""
        if stdin is None:
            stdin = PIPE if input is not None else DEVNULL
        p = self.popen(args, stdin=stdin, stdout=stdout, stderr=stderr, text=text, **kw)
        with p:
            try:
                out, err = p.communicate(input, timeout)
            except BaseException:
                p.kill()
                p._reap()
                raise
        return Result(p.returncode, out, err)

    # --- context manager ------------------------------------------------
    def __enter__(self):
        if not self._created:
            self.create()
            try:
                self.start()
            except BaseException:
                self.close()
                raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    @_api
    def close(self):
        """Kill and delete the container (if it still exists), collect its
        status, close the pipes, remove the temporary bundle.  Retried once
        when a KeyboardInterrupt hits it half-way, then re-raised."""
        try:
            self._cleanup()
        except KeyboardInterrupt:
            self._cleanup()
            raise

    def _cleanup(self):
        try:
            self.delete(force=True)
        except ContainerNotFound:
            pass
        finally:
            if self._process is not None:
                if self._process.returncode is None and self._process._pidfd is not None:
                    self._process.poll()
                self._process.close_pipes()
            self.stdin = self.stdout = self.stderr = None
            self._remove_tmp_bundle()

    def _remove_tmp_bundle(self):
        if self._tmp_bundle is not None:
            import shutil

            shutil.rmtree(self._tmp_bundle, ignore_errors=True)
            self._tmp_bundle = None

    def __repr__(self):
        return f"<ocirun.Container {self.id} root={self.root}>"


@_api
def list_containers(root=None):
    """`ocirun list --format json`: the state of every container under root
    (entries that cannot be read are left out, with a warning)."""
    import warnings

    from ocirun.verbs.list import list_states

    return list_states(_store(root), on_error=lambda msg: warnings.warn(msg, RuntimeWarning, stacklevel=3))


@_api
def run(rootfs=None, args=None, *, spec=None, memory=None, pids=None, cpus=None, network=None, readonly=None,
        env=None, cwd=None, user=None, hostname=None, binds=(), input=None, timeout=None, text=False, root=None,
        id=None):
    """Run `args` in a container on `rootfs` and wait: Result(exit_code,
    stdout, stderr), both captured, stdin empty unless `input`.  The spec is
    `ocirun spec`'s defaults (or `spec`, copied) with these settings (None
    leaves the spec's): limits (memory "64M"/bytes, pids, cpus), network
    "none" (its own namespace, loopback only: the default) or "host",
    readonly (the root read-only: the default), env (a dict), cwd, user,
    hostname, binds ((source, destination) or (source, destination,
    readonly) tuples).  After `timeout` seconds the container
    is killed and deleted and Timeout raised (with what it wrote).  The
    container is always deleted when this returns."""
    import time

    from ocirun.api_spec import Spec

    deadline = None if timeout is None else time.monotonic() + timeout
    if spec is None:
        spec = Spec(rootfs, args)
    else:
        spec = spec.copy()
        if rootfs is not None:
            spec.rootfs = rootfs
        if args is not None:
            spec.args = args
    spec.limits(memory=memory, pids=pids, cpus=cpus)
    if network is not None:
        spec.network = network
    if readonly is not None:
        spec.readonly = readonly
    if env:
        spec.env.update(env)
    if cwd is not None:
        spec.cwd = cwd
    if user is not None:
        spec.user = user
    if hostname is not None:
        spec.hostname = hostname
    for b in binds:
        spec.bind(*b)
    c = Container(spec, id=id, root=root, stdin=PIPE if input is not None else DEVNULL, stdout=PIPE, stderr=PIPE,
                  text=text)
    with c:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            out, err = c.communicate(input, left)
        except Timeout as e:
            raise Timeout(f"container {c.id}: still running after {timeout} s (killed and deleted)", timeout,
                          e.stdout, e.stderr) from None
    return Result(c.returncode, out, err)


__all__ = ["Container", "Process", "Result", "ExecResult", "run", "list_containers", "default_root", "PIPE",
           "STDOUT", "DEVNULL", "OcirunError"]
