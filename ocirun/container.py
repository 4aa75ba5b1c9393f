"""The container lifecycle of runtime-spec runtime.md: create, start, run,
state, kill, delete.  Each verb takes a Store (the --root) and the id; errors
are OcirunError with runc's wording, which engines match on."""

import os
import time

from ocirun import log
from ocirun.errors import ContainerNotFound, OcirunError, StateError
from ocirun.state import FIFO, StateCorrupt, never_executed, pid_start_time, public_state, status, validate_id


def _rfc3339_now():
    ns = time.time_ns()
    sec, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    f = f"{frac:09d}".rstrip("0")
    return f"{base}.{f}Z" if f else f"{base}Z"


def write_pid_file(path, pid):
    """Atomic, digits only, no newline (containerd parses it with Atoi)."""
    d, name = os.path.split(path)
    tmp = os.path.join(d, "." + name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        os.write(fd, str(pid).encode())
    finally:
        os.close(fd)
    os.rename(tmp, path)


class CreateOptions:
    def __init__(self, bundle=".", console_socket=None, pid_file=None, no_pivot=False,
                 no_new_keyring=False, preserve_fds=0, detach=True, pidfd_socket=None, rootless=False):
        self.pidfd_socket = pidfd_socket
        self.rootless = rootless
        self.bundle = bundle
        self.console_socket = console_socket
        self.pid_file = pid_file
        self.no_pivot = no_pivot
        self.no_new_keyring = no_new_keyring
        self.preserve_fds = preserve_fds
        self.detach = detach


def _refuse_rootless_limits(res):
    """A rootless container has no cgroup: device rules are moot (it cannot
    create device nodes), any other limit cannot be honoured."""
    for key, v in (res or {}).items():
        if key != "devices" and v not in (None, {}, []):
            raise OcirunError(f"linux.resources.{key}: cgroup limits need root (a rootless container has no cgroup "
                              "on this host)")


def _listen_fds():
    """Socket activation passed through as runc does (create/run only)."""
    n = os.environ.get("LISTEN_FDS")
    if n and n.isdigit() and os.environ.get("LISTEN_PID") == str(os.getpid()):
        return int(n)
    return 0


def create(store, cid, opts, *, keep_sync=False, on_pty=None):
    """Build the container and leave its init blocked before user code.
    Returns (state dict, Spawn); the Spawn's socket stays open with keep_sync
    (run uses it to learn whether the final execve succeeded)."""
    from ocirun import cgroups, launch
    from ocirun.plan import build
    from ocirun.spec.load import load_config

    validate_id(cid)
    bundle = os.path.abspath(opts.bundle)
    cfg, raw_cfg = load_config(bundle, raw=True)
    log.debug(f"create {cid}: loaded {bundle}/config.json")
    nlisten = _listen_fds()
    extra_env = [f"LISTEN_FDS={nlisten}", "LISTEN_PID=1"] if nlisten else []
    notify_host = os.environ.get("NOTIFY_SOCKET")
    if notify_host:
        from ocirun import notify

        extra_env.append("NOTIFY_SOCKET=" + notify.CONTAINER_SOCKET)
    preserve = nlisten + opts.preserve_fds
    for i in range(3, 3 + preserve):
        try:
            os.fstat(i)
        except OSError:
            raise OcirunError(f"unable to stat preserved-fd {i - 2} (of {preserve})") from None
    linux = cfg.get("linux") if isinstance(cfg.get("linux"), dict) else {}
    # the cgroup is known before the plan: a v1 cgroup mount binds from it
    cg = None if opts.rootless else cgroups.resolve(linux.get("cgroupsPath"), cid)
    plan = build(cfg, bundle, no_pivot=opts.no_pivot, no_new_keyring=opts.no_new_keyring,
                 preserve_fds=preserve, extra_env=extra_env, console_socket=bool(opts.console_socket),
                 cgroup=cg)
    if opts.detach:
        if plan.terminal and not opts.console_socket:
            raise OcirunError("cannot allocate tty if ocirun will detach without setting console socket")
        if not plan.terminal and opts.console_socket:
            raise OcirunError("cannot use console socket if ocirun will not detach or allocate tty")
    elif opts.console_socket:
        raise OcirunError("cannot use console socket if ocirun will not detach or allocate tty")
    for w in plan.warnings:
        log.warning(w)
    log.debug(f"create {cid}: plan built: rootfs {plan.rootfs}, new namespaces {','.join(sorted(plan.ns_new)) or '-'}"
              + (f", seccomp filter of {len(plan.seccomp.bpf) // 8} instructions" if plan.seccomp else ""))
    if opts.rootless:
        # no cgroup: an unprivileged user cannot create one here (cgroup v1,
        # no systemd delegation), and limits that cannot be applied are an
        # error, not something to skip quietly
        _refuse_rootless_limits(linux.get("resources"))
        if "user" not in plan.ns_new and "user" not in plan.ns_paths and os.geteuid() != 0:
            raise OcirunError("linux.namespaces: a rootless container needs a user namespace "
                              "(`ocirun spec --rootless` writes such a config)")
    # on cgroup v2 the init is born in its cgroup (clone3 CLONE_INTO_CGROUP);
    # on v1 the parent moves it there during the SETUP handshake
    born_in_cgroup = bool(cg) and cg["version"] == 2
    if cg and not born_in_cgroup and not plan.setup_sync:
        plan.setup_sync = True
        from ocirun import proto

        plan.w.flag(proto.R_SETUP_SYNC)
    blob = plan.blob()

    lockfd = store.create_dir(cid)
    if notify_host:
        os.mkdir(notify.state_dir(store, cid), 0o755)
        from ocirun.plan import add_runtime_bind

        add_runtime_bind(plan, notify.state_dir(store, cid), notify.CONTAINER_DIR)
        blob = plan.blob()
    sp = None
    fifo_fd = None
    made_cg = False
    st = {
        "id": cid, "pid": 0, "start_time": None, "bundle": bundle,
        "rootfs": plan.rootfs, "created": _rfc3339_now(), "ociVersion": plan.oci_version,
        "annotations": plan.annotations, "cgroup": cg, "hooks": plan.hooks,
        "ns": sorted(plan.ns_new), "config": os.path.join(bundle, "config.json"),
    }
    if not plan.mount_ns:
        # the init mounts in our namespace, on the rootfs: remember what was
        # there before, so that only its own mounts are detached later
        st["host_mounts_before"] = _mounts_at(plan.rootfs)
    try:
        # recorded before anything exists, so that if this process dies at
        # any point, `delete --force <id>` finds the cgroup and the init
        store.write_file(cid, "config.json", raw_cfg)
        store.write(cid, st)
        fifo = os.path.join(store.dir(cid), FIFO)
        os.mkfifo(fifo, 0o622)
        os.chmod(fifo, 0o622)
        if plan.host_root != (0, 0):
            os.chown(fifo, *plan.host_root)
        fifo_fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
        if cg:
            cgroups.create(cg)
            made_cg = True
            devs = linux.get("devices") if isinstance(linux.get("devices"), list) else []
            cgroups.apply(cg, linux.get("resources"), [d.get("path") for d in devs if isinstance(d, dict)])
            log.debug(f"create {cid}: cgroup v{cg['version']} {' '.join(sorted(set(cg['paths'].values())))}")
        console = opts.console_socket

        def pty(fd):
            if on_pty:
                on_pty(fd)
            else:
                launch.send_console(console, fd)

        def hooks(pid):
            from ocirun import hooks as H
            from ocirun.jsonutil import dumps

            # runc: "creating" for prestart, createRuntime and
            # createContainer, "created" for startContainer; the init gets
            # both, NUL-separated
            state = _public(cid, pid, "creating", bundle, plan)
            log.debug(f"create {cid}: running prestart/createRuntime hooks")
            H.run_create_runtime(plan.hooks, state)
            return dumps(state) + "\0" + dumps(dict(state, status="created"))

        def seccomp_listener(fd, pid):
            launch.send_seccomp_listener(plan.seccomp.listener_path, fd, _public(cid, pid, "creating", bundle, plan),
                                         plan.seccomp.metadata)

        cg_fd = None
        if born_in_cgroup:
            cg_fd = os.open(next(iter(cg["paths"].values())), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            sp = launch.spawn(plan, blob, fifo_fd=fifo_fd, preserve_fds=preserve, cgroup_fd=cg_fd)
            log.debug(f"create {cid}: started ocirun-init (bootstrap pid {sp.bootstrap_pid})")
        finally:
            if cg_fd is not None:
                os.close(cg_fd)
        os.close(fifo_fd)
        fifo_fd = None
        def record_pid(pid):
            st["pid"], st["start_time"] = pid, pid_start_time(pid)
            store.write(cid, st)
            log.debug(f"create {cid}: container init is pid {pid}")

        pid = launch.converse(sp, plan, cgroup=None if born_in_cgroup else cg, on_pid=record_pid, on_pty=pty,
                              on_hooks=hooks, on_seccomp=seccomp_listener, warn=log.warning)
        if opts.pidfd_socket:
            launch.send_pidfd(opts.pidfd_socket, pid, b"standard")
        if opts.pid_file:
            write_pid_file(opts.pid_file, pid)
        if not keep_sync:
            sp.sock.close()
            sp.sock = None
            sp.close_report()
        sp.plan = plan
        log.debug(f"create {cid}: created, init waiting on exec.fifo")
        return st, sp
    except BaseException:
        if fifo_fd is not None:
            os.close(fifo_fd)
        if sp is not None:
            sp.kill()
        _detach_host_mounts(st)
        if made_cg:
            try:
                cgroups.remove(cg)
            except OcirunError as e:
                log.warning(str(e))
        store.remove(cid)
        raise
    finally:
        os.close(lockfd)


def _mounts_at(path):
    """[(mount id, parent id)] of the mounts whose mount point is `path`, in
    mountinfo order."""
    from ocirun.plan import _unescape

    out = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            fields = line.split(b" ", 5)
            if len(fields) > 4 and _unescape(fields[4].decode(errors="surrogateescape")) == path:
                out.append((int(fields[0]), int(fields[1])))
    return out


def _detach_host_mounts(st):
    """A container without a mount namespace: detach the bind its init made
    on the rootfs in our mount namespace (and with it every mount below it),
    but nothing that was there before and nothing stacked on top of it."""
    before = st.get("host_mounts_before")
    if before is None:
        return
    import ctypes

    old = {m[0] for m in before}
    libc = ctypes.CDLL(None, use_errno=True)
    path = st["rootfs"]
    for _ in range(16):
        here = _mounts_at(path)
        ids = {m[0] for m in here}
        top = [m for m in here if not any(o[1] == m[0] for o in here if o[0] in ids)]
        if not top or top[0][0] in old:
            return
        if libc.umount2(path.encode(), 2) != 0:  # MNT_DETACH
            log.warning(f"unmounting {path}: {os.strerror(ctypes.get_errno()).lower()}")
            return


def _public(cid, pid, status_, bundle, plan):
    out = {"ociVersion": plan.oci_version, "id": cid, "status": status_, "pid": pid, "bundle": bundle}
    if plan.annotations:
        out["annotations"] = plan.annotations
    return out


def _poll_fd(fd, timeout_ms):
    import select

    p = select.poll()
    p.register(fd, select.POLLIN | select.POLLHUP)
    return p.poll(timeout_ms)


def _read_rest(fd, timeout_ms=1000):
    """What a failing init wrote after its 'E', up to EOF (it exits right
    after writing), without blocking on a non-blocking fifo."""
    out = b""
    end = time.monotonic() + timeout_ms / 1000
    while len(out) < 4096 and time.monotonic() < end and _poll_fd(fd, timeout_ms):
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            continue
        if not chunk:
            break
        out += chunk
    return out


def _await_execve(fd, st):
    """After "0" the init keeps the fifo open until its execve (close-on-exec):
    wait for EOF, then tell an init that died before running the program
    (one a seccomp profile stopped: it could neither report nor exit) from
    one that ran it, however short-lived."""
    while True:
        if _poll_fd(fd, 100):
            try:
                if os.read(fd, 64):
                    continue
            except BlockingIOError:
                continue
            break
        if pid_start_time(st["pid"]) != st.get("start_time"):
            break  # gone: EOF is there already
    if never_executed(st["pid"], st.get("start_time")):
        raise StateError("container process is already dead")


def start(store, cid, notify_wait=True):
    """Release a created container.  With NOTIFY_SOCKET set (and the
    container created with it), wait for its READY= and forward it (unless
    notify_wait is False: `run` relays it while it waits for the exit)."""
    validate_id(cid)
    lockfd = store.lock(cid)
    nsock = None
    try:
        st = store.read(cid)
        s = status(store, st)
        if s == "stopped":
            raise StateError("cannot start a container that has stopped")
        if s == "running":
            raise StateError("cannot start an already running container")
        if s == "paused":
            raise StateError("cannot start a container in the paused state")
        fifo = os.path.join(store.dir(cid), FIFO)
        if os.environ.get("NOTIFY_SOCKET"):
            from ocirun import notify

            if os.path.isdir(notify.state_dir(store, cid)):
                nsock = notify.bind(store, cid)
        try:
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise StateError("cannot start an already running container") from None
        try:
            while True:
                if _poll_fd(fd, 100):
                    data = os.read(fd, 1)
                    if data == b"0":
                        _await_execve(fd, st)
                        break
                    if data == b"E":  # a startContainer hook failed; the init exits
                        from ocirun.launch import format_error
                        from ocirun.proto import STEPS

                        what = _read_rest(fd).decode(errors="replace")
                        raise StateError(format_error(None, STEPS.index("hook"), 0, 2 << 16, what))
                    if not data and pid_start_time(st["pid"]) == st.get("start_time"):
                        continue
                    raise StateError("cannot start an already running container")
                if pid_start_time(st["pid"]) != st.get("start_time"):
                    raise StateError("container process is already dead")
        finally:
            os.close(fd)
        os.unlink(fifo)
        log.debug(f"start {cid}: released the init (pid {st['pid']})")
        if st.get("hooks", {}).get("poststart"):
            from ocirun import hooks as H

            H.run_poststart(st["hooks"], public_state(store, st))
        if nsock is not None:
            if notify_wait:
                notify.relay_ready(nsock, st["pid"], st.get("start_time"), notify.host_socket())
            else:
                st["notify_sock"], nsock = nsock, None
        return st
    finally:
        if nsock is not None:
            nsock.close()
        os.close(lockfd)


def get_state(store, cid):
    validate_id(cid)
    st = store.read(cid)
    return public_state(store, st)


def container_pids(store, st):
    """Host pids of the container's processes: its cgroup's, or without one
    (rootless) those in the init's own pid namespace."""
    from ocirun import cgroups

    if st.get("cgroup"):
        return cgroups.pids(st["cgroup"])
    if status(store, st) == "stopped":
        return []
    if "pid" not in st.get("ns", ()):
        return [st["pid"]]
    try:
        ns = os.readlink(f"/proc/{st['pid']}/ns/pid")
    except OSError:
        return []
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.readlink(f"/proc/{name}/ns/pid") == ns:
                    out.append(int(name))
            except OSError:
                pass
    return sorted(out)


def _signal_pidns(store, st, sig):
    """kill --all without a cgroup: every process of the init's pid namespace,
    each through a pidfd checked to still be in that namespace."""
    import _signal

    try:
        ns = os.readlink(f"/proc/{st['pid']}/ns/pid")
    except OSError:
        return
    for pid in container_pids(store, st):
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            continue
        try:
            if os.readlink(f"/proc/{pid}/ns/pid") == ns:
                _signal.pidfd_send_signal(fd, sig)
        except OSError:
            pass
        finally:
            os.close(fd)


def signal_container(store, cid, sig, all_=False):
    validate_id(cid)
    st = store.read(cid)
    s = status(store, st)
    if all_:
        from ocirun import cgroups

        if not st.get("cgroup") and "pid" in st.get("ns", ()):
            if s != "stopped":
                _signal_pidns(store, st, sig)
            return
        pids = cgroups.pids(st.get("cgroup"))
        if s == "stopped" and not pids:
            return
        cgroups.signal_all(st.get("cgroup"), sig)
        if s != "stopped" and not pids:
            _signal_init(st, sig)
        return
    if s == "stopped":
        raise StateError("container not running")
    _signal_init(st, sig)
    if sig == 9 and s == "paused":
        _thaw(st)


def _thaw(st):
    from ocirun import _lifecycle, cgroups

    cg = st.get("cgroup")
    _lifecycle.thaw(cgroups._freezer_path(cg), cg["version"] if cg else 0)  # best effort


def _signal_init(st, sig):
    """Signal through a pidfd opened before checking the start time, so a
    recycled pid is never signalled (csrc/core/lifecycle.c:lc_signal)."""
    import errno

    from ocirun import _lifecycle

    start = st.get("start_time")
    r = _lifecycle.signal(st["pid"], -1 if start is None else start, sig)
    if r == -errno.ESRCH:
        raise StateError("container not running")
    if r < 0:
        raise OSError(-r, os.strerror(-r))


def _wait_dead(pid, start_time, timeout=10.0):
    from ocirun import _lifecycle

    r = _lifecycle.wait_dead(pid, -1 if start_time is None else start_time, int(timeout * 1000))
    if r < 0:
        raise OSError(-r, os.strerror(-r))
    return bool(r)


def delete(store, cid, force=False):
    validate_id(cid)
    lockfd = store.lock(cid, missing_ok=True)
    if lockfd is None:
        if force:
            return
        raise ContainerNotFound("container does not exist")
    try:
        try:
            st = store.read(cid)
        except ContainerNotFound:
            store.remove(cid)  # a stray directory left by a crash
            if force:
                return
            raise
        except StateCorrupt as e:
            if not force:
                raise
            _delete_corrupt(store, cid, e)
            return
        s = status(store, st)
        if s in ("running", "paused") and not force:
            raise StateError(f"cannot delete container {cid} that is not stopped: {s}")
        if s != "stopped":
            if s == "paused":
                _thaw(st)
            try:
                _signal_init(st, 9)
            except StateError:
                pass
            if not _wait_dead(st["pid"], st.get("start_time")):
                raise OcirunError("container init still running")
        destroy(store, st)
    finally:
        os.close(lockfd)


def _delete_corrupt(store, cid, err):
    """delete --force of a container whose state.json is unusable: its pid
    cannot be trusted, but its cgroup is where create put it (the saved
    config's cgroupsPath, else the id): kill what is in there and remove it,
    then the state directory."""
    from ocirun import cgroups
    from ocirun.jsonutil import loads

    log.warning(f"{err}: removing it with what config.json says")
    try:
        cfg = loads(store.read_file(cid, "config.json"))
        from ocirun.plan import _str

        cgp = _str(((cfg.get("linux") or {}) if isinstance(cfg, dict) else {}).get("cgroupsPath"),
                   "linux.cgroupsPath")
        # never the root cgroup or the runtime's own: resolve refuses those
        cg = cgroups.resolve(cgp, cid)
        if cg:
            # which directories create made is lost with the state: the
            # container's own groups only (create refused a non-empty one),
            # never a parent
            cg["made"] = sorted(set(cg["paths"].values()), key=len, reverse=True)
    except Exception as e:  # noqa: BLE001 - best effort; the directory goes regardless
        log.warning(f"cannot find the cgroup of container {cid}: {e}")
        cg = None
    if cg and all(os.path.isdir(p) for p in cg["paths"].values()):
        destroy(store, {"id": cid, "cgroup": cg})
    store.remove(cid)


def destroy(store, st):
    """Remove everything a stopped container still holds: leftover processes
    of a container without its own pid namespace, the cgroup, the state
    directory; then poststop hooks."""
    from ocirun import cgroups

    cg = st.get("cgroup")
    err = None
    _detach_host_mounts(st)
    if cg:
        # with a pid namespace of its own, the init's death took every
        # process of the container along; otherwise the others outlive it
        # and are killed with the group frozen (no fork escapes).  Nothing
        # else in the group is signalled: it is not the container's.
        at_root = any(p == mp for mp, p in cg["paths"].items())  # only an old state can say so
        if "pid" not in (st.get("ns") or ()) and not at_root:
            try:
                cgroups.signal_all(cg, 9)
            except (OSError, OcirunError) as e:
                log.warning(str(e))
        try:
            cgroups.remove(cg)
        except OcirunError as e:
            err = e
    store.remove(st["id"])
    if st.get("hooks", {}).get("poststop"):
        from ocirun import hooks as H

        state = {"ociVersion": st.get("ociVersion", ""), "id": st["id"], "status": "stopped", "pid": 0,
                 "bundle": st.get("bundle", "")}
        if st.get("annotations"):
            state["annotations"] = st["annotations"]
        H.run_poststop(st["hooks"], state)
    if err:
        raise err


def list_states(store):
    import pwd

    res = []
    for cid in store.ids():
        try:
            st = store.read(cid)
            uid = os.stat(store.dir(cid)).st_uid
        except (OcirunError, OSError) as e:
            log.stderr(f"{cid}: {e}")
            continue
        try:
            owner = pwd.getpwuid(uid).pw_name
        except KeyError:
            owner = f"#{uid}"
        try:
            res.append(public_state(store, st, owner))
        except Exception as e:  # noqa: BLE001 - one bad entry must not hide the others
            log.stderr(f"{cid}: state of container {cid} is unusable: {type(e).__name__}: {e}")
    return res


# --- run ---------------------------------------------------------------------

def run(store, cid, opts, keep=False, subreaper=True):
    """create + start + wait, forwarding signals; returns the exit status
    (128+N when killed by signal N).  Cleans up unless detached or keep."""
    from ocirun.foreground import SignalForwarder, exec_error, wait_status

    from ocirun import front

    if opts.detach:
        front.subreaper(False)
        create(store, cid, opts)
        try:
            start(store, cid)
        except BaseException:
            _force_delete(store, cid)
            raise
        return 0
    front.subreaper(subreaper)
    master = []

    def take_pty(fd):
        master.append(os.dup(fd))
        if os.isatty(0):
            from ocirun.tty import copy_winsize

            copy_winsize(fd)

    made = False  # only what this run created is deleted: never a container that had this id already
    try:
        with SignalForwarder() as fwd:
            st, sp = create(store, cid, opts, keep_sync=True, on_pty=take_pty)
            made = True
            try:
                started = start(store, cid, notify_wait=False)
            except BaseException as e:
                why = None
                if isinstance(e, StateError) and str(e) == "container process is already dead":
                    # dead before its execve: what it reported, or how it died
                    why = exec_error(sp.sock) or _death(st["pid"], sp)
                sp.sock.close()
                sp.close_report()
                _force_delete(store, cid)
                if why:
                    raise StateError(why) from None
                raise
            fwd.set_target(st["pid"])
            nsock = started.get("notify_sock")
            if nsock is not None:
                _relay_in_background(nsock, st)
            err = exec_error(sp.sock)
            sp.sock.close()
            sp.close_report()
            if err:
                log.error(err)
            return wait_status(st["pid"], master[0] if master else None)
    finally:
        if made and not keep:
            try:
                _force_delete(store, cid)
            except OcirunError as e:
                log.warning(str(e))


def _death(pid, sp):
    """How our child `pid`, dead before its execve, ended (None if unknown).
    It is dying already (its fifo closed without an execve, or it is a
    zombie), so the wait is short."""
    from ocirun.launch import death_message

    try:
        _, status_ = os.waitpid(pid, 0)
    except ChildProcessError:
        return sp.report(sp.plan)
    return death_message(sp.plan, status_, sp.report(sp.plan))


def _relay_in_background(nsock, st):
    """`run` forwards READY= while it waits for the container to exit."""
    import threading

    from ocirun import notify

    def relay():
        try:
            notify.relay_ready(nsock, st["pid"], st.get("start_time"), notify.host_socket())
        except OSError as e:
            log.warning(f"NOTIFY_SOCKET: {e}")
        finally:
            nsock.close()

    threading.Thread(target=relay, daemon=True).start()


def _force_delete(store, cid):
    try:
        delete(store, cid, force=True)
    except ContainerNotFound:
        pass
