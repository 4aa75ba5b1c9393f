"""The warm path: create, run and exec without paying for the interpreter.

A warm server is one long-lived `ocirun-py --root R warm serve` per state
root, build and network namespace, with the create/run/exec code already
imported.  It keeps `workers` children forked ahead of requests, each
blocked in accept() on a unix socket in the state root named by the build
(`socket_path`).  The C front-end (csrc/front/warm.c) connects, sends its
argv, environment, working directory, umask and open fds, and, once the
worker has checked who is asking, lets it run the ordinary CLI code.  Every
process operation that must belong to the caller's `ocirun` process (the
init's spawn, waiting, signals, the subreaper flag, hooks) goes back to the
front-end through ocirun/procs.py, so the process tree, inheritance and
exit codes are the cold path's.

What it guarantees (docs/security.md, G20):
- It serves only a caller with its own effective uid (SO_PEERCRED), the same
  mount, pid, net, user, uts, ipc and cgroup namespaces and root directory
  (read from /proc/<peer pid>, not from the request), the same --root and
  the same build; anything else is refused and the front-end runs the
  command cold.  The front-end checks the server's uid the same way.
- One worker serves one request and exits: nothing of a request (fds,
  environment, memory) reaches another; a crash ends that request only.
- The server exits after `idle` seconds without a request, and with
  `ocirun warm stop`; its workers die with it until they have a request.

Settings (`settings()`): the environment's OCIRUN_WARM=0|1 wins over
/etc/ocirun/ocirun.conf's `warm = off|on`; `warm-idle = SECONDS` (10),
`warm-workers = N` (2).  Off unless turned on (README, "Warm start")."""

import os
import struct
import sys

import _socket

from ocirun import procs
from ocirun.procs import WIRE

CONFIG = "/etc/ocirun/ocirun.conf"
MAGIC = b"ocirun-warm-1"
NAMESPACES = ("mnt", "pid", "net", "user", "uts", "ipc", "cgroup", "time")
# what else makes two processes of one uid differ in privilege
STATUS_FIELDS = (b"CapInh:", b"CapPrm:", b"CapEff:", b"CapBnd:", b"CapAmb:", b"NoNewPrivs:", b"Seccomp:",
                 b"Seccomp_filters:")
COMMANDS = ("create", "run", "exec")
SO_PEERPIDFD = 77
MAX_IN_FLIGHT = 64
MAX_FDS = 250
MAX_REQUEST = 1 << 20


def build_id():
    try:
        from ocirun._build import BUILD
    except ImportError:  # a source tree: no front-end of the same build
        return None
    return BUILD


def socket_path(root, build):
    """The server's socket: in the state root itself, so only who may use the
    root (0700, its owner) can reach it, and only in the mount namespace that
    root is in.  `@` keeps it out of runc's container id grammar (`list`
    skips it).  csrc/front/warm.c makes the same path."""
    return os.path.join(root, f"ocirun-warm@{build[:16]}")


def settings():
    conf = {"warm": "off", "warm-idle": "10", "warm-workers": "2"}
    try:
        with open(CONFIG) as f:
            for line in f:
                k, sep, v = line.partition("=")
                if sep and not line.lstrip().startswith("#"):
                    conf[k.strip()] = v.strip()
    except OSError:
        pass
    on = os.environ.get("OCIRUN_WARM", conf["warm"]).lower() in ("1", "on", "true", "yes")

    def number(key, default, low, high):
        try:
            return min(max(float(os.environ.get("OCIRUN_" + key.upper().replace("-", "_"), conf[key])), low), high)
        except ValueError:
            return default

    return on, number("warm-idle", 10.0, 0.1, 3600.0), int(number("warm-workers", 2, 1, 16))


def _identity(proc):
    """Namespaces, root directory, capability sets, no_new_privs, seccomp
    and LSM label of a process (`proc`: /proc/self or /proc/<pid>)."""
    ids = {}
    for ns in NAMESPACES:
        try:
            st = os.stat(f"{proc}/ns/{ns}")
            ids[ns] = (st.st_dev, st.st_ino)
        except FileNotFoundError:
            ids[ns] = None  # a kernel without it
    st = os.stat(f"{proc}/root/")
    ids["root"] = (st.st_dev, st.st_ino)
    with open(f"{proc}/status", "rb") as f:
        ids["status"] = [line for line in f.read().splitlines() if line.startswith(STATUS_FIELDS)]
    try:
        with open(f"{proc}/attr/current", "rb") as f:
            ids["lsm"] = f.read()
    except OSError:
        ids["lsm"] = None
    return ids


def _alive(pidfd):
    import select

    p = select.poll()
    p.register(pidfd, select.POLLIN)
    return not p.poll(0)


def _set_name(name):
    try:
        with open("/proc/self/comm", "w") as f:
            f.write(name)
    except OSError:
        pass


# ---------------------------------------------------------------- the server

def serve(root, build, idle, workers, main, preload, command_of):
    """Runs until idle or stopped.  `main(argv)` runs one command (the CLI's;
    passed in, this layer is below it), `preload()` imports what create, run
    and exec need, `command_of(argv)` names the command of an argv (the
    CLI's grammar: only create, run and exec are served).  Returns 0; another server already listening for this
    root and build is not an error."""
    import select

    import signal

    # whatever the command that started it had, from here on what a fresh
    # interpreter has (the cold path's): TERM and HUP end it, INT raises
    # KeyboardInterrupt (a worker then cleans up as the cold path does),
    # PIPE is ignored (a write to a hook that exited without reading its
    # stdin raises, it does not kill the worker)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    from ocirun.state import Store

    Store(root).ensure_root()  # 0700, as create makes it
    path = socket_path(root, build)
    ls = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    old = os.umask(0o177)  # the socket 0600: its owner only
    try:
        try:
            ls.bind(path)
        except FileExistsError:
            # a live server answers; a dead one's socket is removed and taken
            probe = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
            try:
                probe.connect(path)
                return 0  # one is running
            except ConnectionRefusedError:
                os.unlink(path)
                ls.bind(path)
            finally:
                probe.close()
    except OSError:
        return 0  # not ours to take (another server is starting, or no root)
    finally:
        os.umask(old)
    mine = os.stat(path).st_ino
    ls.listen(128)
    _set_name("ocirun-warm")

    def gone(*_):
        _unlink(path, mine)
        os._exit(0)

    signal.signal(signal.SIGTERM, gone)
    preload()
    from ocirun import _native  # noqa: F401  (every worker's set_pdeathsig)

    from ocirun import launch

    launch.keep_image()
    me = _identity("/proc/self")
    # a worker lives for one request: no collector in it, and none of the
    # server's objects examined (a collection would write to every page of
    # them, copying the server's memory into each worker)
    import gc

    gc.collect()
    gc.freeze()
    gc.disable()
    r, w = os.pipe2(os.O_CLOEXEC)
    idle_kids = set()
    import mmap

    served = mmap.mmap(-1, 8)  # shared with the workers: `warm status` reads it
    import time

    started = time.monotonic()
    server = os.getpid()
    # a SIGCHLD wakes the loop, so finished workers are reaped at once
    cr, cw = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    signal.set_wakeup_fd(cw)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    busy = set()
    gone = set()
    while True:
        if len(gone) > 4096:
            gone.clear()  # pids are only looked up right after their reaping
        # while requests run, one worker ready is enough: topping up waits
        # until they end, so the fork does not take a CPU from them (it is
        # off the request's path either way)
        want = workers if not busy else 1
        while len(idle_kids) < want and len(busy) < MAX_IN_FLIGHT:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                signal.set_wakeup_fd(-1)
                os.close(cr)
                os.close(cw)
                for sig in (signal.SIGCHLD, signal.SIGTERM):
                    signal.signal(sig, signal.SIG_DFL)
                _worker(ls, w, root, build, me, main, {"started": started, "served": served, "idle": idle,
                                                       "workers": workers, "server": server,
                                                       "command_of": command_of})
                os._exit(0)
            idle_kids.add(pid)
        ready, _, _ = select.select([r, cr], [], [], idle if not busy else 1.0)
        while True:
            try:
                pid, _st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            idle_kids.discard(pid)
            busy.discard(pid)
            gone.add(pid)  # its "took a request" may still be unread in the pipe
        if not ready:
            if busy:
                continue  # not idle while requests are in flight
            break
        if cr in ready:
            try:
                os.read(cr, 4096)
            except BlockingIOError:
                pass
        if r in ready:
            data = os.read(r, 4096)
            for (pid,) in struct.iter_unpack("i", data[: len(data) // 4 * 4]):
                idle_kids.discard(pid)
                if pid not in gone:
                    busy.add(pid)
                served[:8] = struct.pack("Q", struct.unpack("Q", served[:8])[0] + 1)
    _unlink(path, mine)
    for pid in idle_kids:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    return 0


def _unlink(path, mine):
    """Remove our socket (only if it is still ours: the inode bound)."""
    try:
        if os.stat(path).st_ino == mine:
            os.unlink(path)
    except OSError:
        pass


def _worker(ls, w, root, build, me, main, info):
    from ocirun import _native

    _set_name("ocirun-warm-w")
    _native.set_pdeathsig(9)  # until it has a request: dies with the server
    if os.getppid() != info["server"]:  # it died before the line above
        os._exit(0)
    while True:
        try:
            fd, _ = ls._accept()
            conn = _socket.socket(fileno=fd)
            break
        except InterruptedError:
            continue
        except OSError:
            os._exit(0)
    _native.set_pdeathsig(0)  # a request in flight finishes even if the server goes
    os.write(w, struct.pack("i", os.getpid()))
    os.close(w)
    ls.close()
    try:
        _handle(conn, root, build, me, main, info)
    finally:
        os._exit(0)


def _recv(conn, size, maxfds):
    # the datagram's length first: a buffer of `size` bytes would cost a
    # page fault per page touched in every worker
    n = conn.recv_into(bytearray(1), 1, _socket.MSG_PEEK | _socket.MSG_TRUNC)
    data, anc, flags, _ = conn.recvmsg(min(max(n, 1), size), _socket.CMSG_SPACE(maxfds * 4))
    return data, procs.received_fds(anc), flags


def _refuse(conn, fds, why):
    for fd in fds:
        os.close(fd)
    try:
        conn.send(WIRE.pack(procs.W_REFUSE, 0, 0) + why.encode())
    except OSError:
        pass


def _handle(conn, root, build, me, main, info):
    pid, uid, _gid = struct.unpack("3i", conn.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12))
    # who is asking: from the kernel, not from the request
    if uid != os.geteuid():
        return _refuse(conn, [], "another user")
    try:
        # the caller as a pidfd, taken at connect: its pid cannot be reused
        # while it is alive, which is checked after /proc/<pid> was read
        pidfd = struct.unpack("i", conn.getsockopt(_socket.SOL_SOCKET, SO_PEERPIDFD, 4))[0]
    except OSError:
        return _refuse(conn, [], "the caller cannot be identified (SO_PEERPIDFD)")
    conn.settimeout(5)  # a caller that connects and sends nothing does not hold a worker
    try:
        data, fds, flags = _recv(conn, MAX_REQUEST, MAX_FDS + 1)
    except OSError:
        return None
    conn.settimeout(None)
    if flags & (_socket.MSG_TRUNC | _socket.MSG_CTRUNC) or len(data) < WIRE.size:
        return _refuse(conn, fds, "request truncated")
    typ, _a, _b = WIRE.unpack_from(data)
    fields = data[WIRE.size:].split(b"\0")
    try:
        same = _identity(f"/proc/{pid}") == me and _alive(pidfd)
    except OSError:
        same = False
    if not same:
        return _refuse(conn, fds, "other namespaces, root directory or privileges")
    if typ != procs.W_REQUEST or len(fields) < 6 or fields[0] != MAGIC or fields[1].decode() != build:
        return _refuse(conn, fds, "another build")
    op, req_root = fields[2], fields[3].decode(errors="surrogateescape")
    if req_root != root:
        return _refuse(conn, fds, "another --root")
    if op == b"status":
        import time

        text = (f"pid {info['server']}, root {root}, build {build}, idle-exit {info['idle']:g}s, "
                f"workers {info['workers']}, served {struct.unpack('Q', info['served'][:8])[0]}, "
                f"up {time.monotonic() - info['started']:.0f}s")
        for fd in fds:
            os.close(fd)
        conn.send(WIRE.pack(procs.W_DONE, 0, 0) + text.encode())
        return None
    if op == b"stop":
        for fd in fds:
            os.close(fd)
        conn.send(WIRE.pack(procs.W_DONE, 0, 0) + _stop(info["server"]).encode())
        return None
    if op != b"run":
        return _refuse(conn, fds, "unknown request")
    try:
        caller = int(fields[4])
        umask = int(fields[5], 8)
        nfd = int(fields[6])
        numbers = [int(x) for x in fields[7:7 + nfd]]
        i = 7 + nfd
        argc = int(fields[i])
        argv = [x.decode(errors="surrogateescape") for x in fields[i + 1:i + 1 + argc]]
        env = [x.decode(errors="surrogateescape") for x in fields[i + 1 + argc:] if x]
    except (ValueError, IndexError):
        return _refuse(conn, fds, "malformed request")
    if caller != pid or len(fds) != nfd + 1 or not argv or not 0 <= umask <= 0o777:
        return _refuse(conn, fds, "malformed request")
    if info["command_of"](argv[1:]) not in COMMANDS:
        return _refuse(conn, fds, "only create, run and exec are served warm")
    os.umask(umask)
    conn = _adopt(conn, fds[0], list(zip(numbers, fds[1:])), env)
    conn.send(WIRE.pack(procs.W_ACCEPT, os.getpid(), 0))
    go = conn.recv(WIRE.size)
    if len(go) != WIRE.size or WIRE.unpack(go)[0] != procs.W_GO:
        return  # the caller gave up waiting and runs the command itself
    procs.install(Agent(conn, caller))
    code = 1
    sys.argv = argv
    import time

    t0, c0 = time.perf_counter(), time.process_time()
    try:
        # the root this server was verified for: the CLI's default root was
        # computed when the server started, from its own environment
        code = main(["--root", root] + argv[1:])
    except KeyboardInterrupt:
        code = 130
    except BaseException:
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        try:
            from ocirun import log

            # with --debug: what the request cost this worker (profile_run.py --warm reads it)
            log.debug(f"warm worker {os.getpid()}: the command took {(time.perf_counter() - t0) * 1000:.2f} ms, "
                      f"{(time.process_time() - c0) * 1000:.2f} ms CPU")
        except Exception:  # noqa: BLE001  (a log line never fails a request)
            pass
        conn.send(WIRE.pack(procs.W_DONE, code if isinstance(code, int) else 1, 0))


def _stop(server):
    """SIGTERM the server and wait until it is gone (SIGKILL after 5 s)."""
    import select

    try:
        fd = os.pidfd_open(server)
    except ProcessLookupError:
        return "stopped"
    try:
        os.kill(server, 15)
        p = select.poll()
        p.register(fd, select.POLLIN)
        if p.poll(5000):
            return "stopped"
        os.kill(server, 9)
        return "killed (it did not stop within 5 s)"
    finally:
        os.close(fd)


def _adopt(conn, cwd_fd, fds, env):
    """Become the caller for the request: its fds at their numbers (and no
    other), its working directory and its environment.  Returns the
    connection (moved above the caller's fd numbers)."""
    import fcntl

    from ocirun import launch

    top = max([n for n, _ in fds] + [2]) + 17

    def lift(fd):
        new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, top)
        os.close(fd)
        return new

    conn = _socket.socket(fileno=lift(conn.detach()))
    if launch._image is not None:
        launch._image = lift(launch._image)
    lifted = [(n, lift(fd)) for n, fd in fds]
    cwd = lift(cwd_fd)
    keep = {conn.fileno(), cwd, launch._image} | {fd for _, fd in lifted}
    for name in os.listdir("/proc/self/fd"):
        if int(name) not in keep:
            try:
                os.close(int(name))
            except OSError:
                pass
    for number, fd in lifted:
        os.dup2(fd, number)
        os.close(fd)
    os.fchdir(cwd)
    os.close(cwd)
    os.environ.clear()
    for e in env:
        k, sep, v = e.partition("=")
        if sep and k:
            os.environ[k] = v
    return conn


class Agent:
    """procs.py's operations, asked of the front-end (csrc/front/warm.c)."""

    def __init__(self, conn, caller_pid):
        self.conn = conn
        self.caller_pid = caller_pid

    def _call(self, typ, a=0, b=0, payload=b"", fds=()):
        from ocirun.errors import OcirunError

        try:
            if fds:
                self.conn.sendmsg([WIRE.pack(typ, a, b) + payload],
                                  [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))])
            else:
                self.conn.send(WIRE.pack(typ, a, b) + payload)
            if typ == procs.W_FORWARD:
                return None
            while True:
                try:
                    data = self.conn.recv(4096)
                    break
                except InterruptedError:
                    continue
        except OSError:
            data = b""
        if len(data) < WIRE.size:
            raise OcirunError("the ocirun process that made this request is gone")
        return WIRE.unpack_from(data)

    def spawn(self, exe_fd, argv, env, moves, keep_below, path, cwd):
        fds = ([exe_fd] if exe_fd is not None else []) + [fd for fd, _ in moves]
        base = 1 if exe_fd is not None else 0
        head = procs.SPAWN_HEAD.pack(0 if exe_fd is not None else -1, keep_below, len(moves), len(argv), len(env))
        pairs = struct.pack(f"<{2 * len(moves)}i", *[x for i, (_, t) in enumerate(moves) for x in (base + i, t)])
        strings = [path or "", cwd or ""] + list(argv) + list(env)
        payload = head + pairs + b"".join(s.encode(errors="surrogateescape") + b"\0" for s in strings)
        _t, a, _b = self._call(procs.W_SPAWN, 0, 0, payload, fds)
        if a < 0:
            raise OSError(-a, os.strerror(-a))
        return a

    def waitpid(self, pid, nohang):
        _t, a, b = self._call(procs.W_WAIT, pid, 1 if nohang else 0)
        if a < 0:
            raise ChildProcessError(-a, os.strerror(-a))
        return a, b

    def kill(self, pid, sig):
        _t, a, _b = self._call(procs.W_KILL, pid, sig)
        if a == -3:
            raise ProcessLookupError(3, os.strerror(3))
        if a < 0:
            raise OSError(-a, os.strerror(-a))

    def set_subreaper(self, on):
        _t, a, _b = self._call(procs.W_SUBREAPER, 1 if on else 0, 0)
        if a < 0:
            raise OSError(-a, os.strerror(-a))

    def forward(self, mode, pid):
        self._call(procs.W_FORWARD, mode, pid)

    def run_captured(self, path, args, env, cwd, data, timeout):
        import select
        import time

        if env is None:
            env = [f"{k}={v}" for k, v in os.environ.items()]
        in_r, in_w = os.pipe2(os.O_CLOEXEC)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        try:
            pid = self.spawn(None, list(args), env, [(in_r, 0), (out_w, 1), (err_w, 2)], 0, path, cwd)
        finally:
            for fd in (in_r, out_w, err_w):
                os.close(fd)
        os.set_blocking(in_w, False)
        deadline = None if timeout is None else time.monotonic() + timeout
        outs = {out_r: [], err_r: []}
        p = select.poll()
        p.register(out_r, select.POLLIN)
        p.register(err_r, select.POLLIN)
        if data:
            p.register(in_w, select.POLLOUT)
        else:
            os.close(in_w)
            in_w = None
        open_fds = 2
        try:
            while open_fds:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    try:
                        self.kill(pid, 9)
                    except ProcessLookupError:
                        pass
                    self.waitpid(pid, False)
                    raise TimeoutError
                for fd, _ev in p.poll(None if left is None else min(left, 86400) * 1000):
                    if fd == in_w:
                        try:
                            n = os.write(in_w, data)
                        except (BrokenPipeError, BlockingIOError) as e:
                            n = len(data) if isinstance(e, BrokenPipeError) else 0
                        data = data[n:]
                        if not data:
                            p.unregister(in_w)
                            os.close(in_w)
                            in_w = None
                    else:
                        chunk = os.read(fd, 65536)
                        if chunk:
                            outs[fd].append(chunk)
                        else:
                            p.unregister(fd)
                            open_fds -= 1
        finally:
            for fd in (in_w, out_r, err_r):
                if fd is not None:
                    os.close(fd)
        _, st = self.waitpid(pid, False)
        rc = os.WEXITSTATUS(st) if os.WIFEXITED(st) else -os.WTERMSIG(st)
        return rc, b"".join(outs[out_r]), b"".join(outs[err_r])


# ------------------------------------------------------- the `warm` command

def control(root, op):
    """`ocirun warm status|stop`: (found, text)."""
    build = build_id()
    if build is None:
        return False, "no warm path in a source tree"
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    try:
        try:
            s.connect(socket_path(root, build))
        except OSError:
            return False, f"no warm server for {root}"
        _pid, uid, _gid = struct.unpack("3i", s.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12))
        if uid != os.geteuid():
            return False, f"the warm socket for {root} belongs to uid {uid}: not used"
        s.send(WIRE.pack(procs.W_REQUEST, 0, 0) + b"\0".join([MAGIC, build.encode(), op.encode(),
                                                            root.encode(), str(os.getpid()).encode(), b"022",
                                                            b"0", b"0", b""]))
        s.settimeout(10)
        data = s.recv(4096)
    finally:
        s.close()
    if len(data) < WIRE.size:
        return False, "the warm server did not answer"
    typ = WIRE.unpack_from(data)[0]
    return typ == procs.W_DONE, data[WIRE.size:].decode(errors="replace")
