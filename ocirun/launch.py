"""Parent side of one container spawn.

Copies the C init into a sealed memfd (docs/security.md, G4: the container can never
reach a writable runtime image), hands it the plan, the sync socket and the
exec fifo at fixed fd numbers, and answers its requests until it reports READY
or an error.  Sync protocol (documented in csrc/init/proto.h):

    bootstrap -> SETUP_REQ(pid)   parent writes id maps, joins the cgroup -> SETUP_ACK
    bootstrap -> PID(init pid)    and exits; the init is our child (CLONE_PARENT)
    init      -> PTY + fd         parent forwards the master to --console-socket
    init      -> HOOK_REQ         parent runs prestart/createRuntime hooks -> HOOK_ACK(state JSON)
    init      -> SECCOMP + fd     parent hands the listener to linux.seccomp.listenerPath
    init      -> READY            set up; blocked on the exec fifo
    any       -> ERROR(step, errno, index, detail)

Every error is also written into a shared report page first (plain memory):
when a seccomp filter refuses the init the socket and even its exit, it
stops itself with a fault and the page still says what failed.
"""

import os
import struct

import _socket

from ocirun import procs, proto as P
from ocirun.errors import InitError, OcirunError, strerror

# the init that runs in containers is always the one installed with this
# package: nothing in the environment can choose another
INIT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libexec", "ocirun-init")
_SEALS = 0x0001 | 0x0002 | 0x0004 | 0x0008  # F_SEAL_SEAL|SHRINK|GROW|WRITE
_F_ADD_SEALS = 1033


_image = None


def keep_image():
    """The warm server (ocirun/warm.py) makes the sealed copy once; every
    request's spawn then uses a duplicate of it."""
    global _image
    _image = init_memfd()


def init_memfd():
    """A sealed, close-on-exec memfd holding the C init."""
    import fcntl

    if _image is not None:
        return fcntl.fcntl(_image, fcntl.F_DUPFD_CLOEXEC, 3)
    try:
        src = os.open(INIT_PATH, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise OcirunError(f"ocirun-init: {INIT_PATH}: {strerror(e.errno)} (is ocirun installed?)") from None
    try:
        size = os.fstat(src).st_size
        fd = os.memfd_create("ocirun-init", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        off = 0
        while off < size:
            n = os.sendfile(fd, src, off, size - off)
            if n <= 0:
                raise OcirunError("ocirun-init: short copy into memfd")
            off += n
    finally:
        os.close(src)
    fcntl.fcntl(fd, _F_ADD_SEALS, _SEALS)
    return fd


def _plan_memfd(blob):
    fd = os.memfd_create("ocirun-plan", os.MFD_CLOEXEC)
    view = memoryview(blob)
    while view:
        n = os.write(fd, view)
        view = view[n:]
    return fd


class Spawn:
    """One init being set up.  kill() undoes everything process-related."""

    def __init__(self):
        self.bootstrap_pid = 0
        self.init_pid = 0
        self.sock = None
        self.plan = None
        self.report_fd = None  # the init's report page (proto.h OCIRUN_FD_REPORT)

    def report(self, plan=None):
        """The error the init wrote into its report page, formatted, or None:
        what it failed at when a seccomp filter refused it the socket."""
        if self.report_fd is None:
            return None
        try:
            data = os.pread(self.report_fd, P.MSG_HDR.size + 1024, 0)
        except OSError:
            return None
        if len(data) < P.MSG_HDR.size:
            return None
        typ, err, step, value = P.MSG_HDR.unpack_from(data)
        if typ != P.M_ERROR:
            return None
        detail = data[P.MSG_HDR.size:].split(b"\0", 1)[0].decode(errors="replace")
        return format_error(plan, step, err, value, detail)

    def close_report(self):
        if self.report_fd is not None:
            os.close(self.report_fd)
            self.report_fd = None

    def kill(self):
        for pid in (self.init_pid, self.bootstrap_pid):
            if pid:
                try:
                    procs.kill(pid, 9)
                except ProcessLookupError:
                    pass
                try:
                    procs.waitpid(pid)
                except ChildProcessError:
                    pass
        self.init_pid = self.bootstrap_pid = 0
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.close_report()


def spawn(plan, blob, *, fifo_fd=None, preserve_fds=0, cgroup_fd=None, stdio=None):
    """Start the bootstrap process; with `cgroup_fd` (a cgroup v2 directory)
    it creates the container's process directly in that cgroup; `stdio`
    (three fds, None for "ours") are the process's 0, 1 and 2 (the Python
    API's pipes; the CLI passes its own stdio on).  Returns a Spawn whose
    .sock is the parent's end of the sync socket."""
    sp = Spawn()
    base = 3 + preserve_fds
    parent_end, child_end = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    sp.sock = parent_end
    opened = [child_end.detach()]
    try:
        exe = init_memfd()
        opened.append(exe)
        plan_fd = _plan_memfd(blob)
        opened.append(plan_fd)
        sp.report_fd = os.memfd_create("ocirun-report", os.MFD_CLOEXEC)
        os.ftruncate(sp.report_fd, P.REPORT_SIZE)
        slots = [(plan_fd, base), (opened[0], base + 1), (sp.report_fd, base + 4)]
        argv = ["ocirun-init", str(base), "report"]
        if fifo_fd is not None:
            slots.append((fifo_fd, base + 2))
            argv.append("fifo")
        if cgroup_fd is not None:
            slots.append((cgroup_fd, base + 3))  # the init is cloned into this cgroup
            argv.append("cgroup")
        for target, fd in enumerate(stdio or ()):
            if fd is not None:
                slots.append((fd, target))  # the API's pipes as the init's stdio
        # a child of the `ocirun` process the caller started (procs.py)
        sp.bootstrap_pid = procs.spawn(exe, argv, [], slots, base)
    except OSError as e:
        sp.kill()
        raise OcirunError(f"starting ocirun-init: {strerror(e.errno)}") from None
    finally:
        for fd in opened:
            os.close(fd)
    return sp


def _recv(sock):
    data, anc, _flags, _addr = sock.recvmsg(P.MSG_HDR.size + 1024, _socket.CMSG_SPACE(4))
    return data, procs.received_fds(anc)


def _write_proc(pid, name, data):
    fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)


def _setgroups_denied():
    """Root of a user namespace whose setgroups is denied (`unshare -Ur`,
    rootless engines) cannot allow it in a child namespace either."""
    try:
        with open("/proc/self/setgroups", "rb") as f:
            return f.read().strip() == b"deny"
    except OSError:
        return False


def _write_maps_unprivileged(pid, uid_map, gid_map):
    """Rootless: the kernel lets a user write a map of its own ids alone,
    with setgroups denied first; anything wider goes through the setuid
    newuidmap/newgidmap (shadow's uidmap), which check /etc/subuid and
    /etc/subgid, as runc does."""
    u, g = uid_map.split(), gid_map.split()
    if len(u) == 3 and len(g) == 3 and u[1:] == [str(os.geteuid()), "1"] and g[1:] == [str(os.getegid()), "1"]:
        _write_proc(pid, "setgroups", "deny")
        _write_proc(pid, "uid_map", uid_map)
        _write_proc(pid, "gid_map", gid_map)
        return
    import shutil
    import subprocess

    for tool, text, field in (("newuidmap", uid_map, "linux.uidMappings"), ("newgidmap", gid_map, "linux.gidMappings")):
        exe = shutil.which(tool, path="/usr/bin:/bin:/usr/sbin:/sbin")
        if exe is None:
            raise OcirunError(f"{field}: mapping more than your own id needs {tool} (the uidmap package)")
        r = subprocess.run([exe, str(pid)] + text.split(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, close_fds=True)
        if r.returncode != 0:
            why = r.stderr.decode(errors="replace").strip().splitlines()
            raise OcirunError(f"{field}: {tool} failed: {why[-1] if why else 'exit status ' + str(r.returncode)}")


def _send_idmapped(sock, pid, n, source, rec, uid_map, gid_map):
    """Build an idmapped tree (through the container's user namespace, or
    one with the mount's own mappings) and pass it to the bootstrap."""
    from ocirun import _native

    try:
        if uid_map is None:
            ns = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        else:
            ns = _native.userns_fd(uid_map, gid_map)
        try:
            tree = _native.idmapped_tree(source, rec, ns)
        finally:
            os.close(ns)
    except OSError as e:
        raise InitError(f"idmapped mount of {source}: {strerror(e.errno)}") from None
    try:
        sock.sendmsg([P.MSG_HDR.pack(P.M_MOUNT_FD, 0, 0, n) + b"\0"],
                     [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("i", tree))])
    finally:
        os.close(tree)


def send_fd(path, fd, payload, flag):
    """runc's socket protocol for --console-socket and --pidfd-socket:
    connect, one sendmsg carrying `payload` and exactly one fd, close."""
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        try:
            s.connect(path)
        except OSError as e:
            raise OcirunError(f"{flag} {path}: connect: {strerror(e.errno)}") from None
        s.sendmsg([payload], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("i", fd))])
    finally:
        s.close()


def send_console(path, master_fd):
    send_fd(path, master_fd, b"/dev/ptmx", "--console-socket")


def send_pidfd(path, pid, payload):
    """--pidfd-socket (runc 1.2): a pidfd of the new process."""
    fd = os.pidfd_open(pid)
    try:
        send_fd(path, fd, payload, "--pidfd-socket")
    finally:
        os.close(fd)


def _join_cgroup(cgroup, pid):
    from ocirun import cgroups, front

    try:
        cgroups.add_pid(cgroup, pid)
    finally:
        front.stop_primer()  # the migration it pre-paid for is done


def converse(sp, plan, *, cgroup=None, on_pid=None, on_pty=None, on_hooks=None, on_seccomp=None, warn=None):
    """Serve the init until READY; returns the init's pid.  Raises InitError.
    `cgroup` is joined during the SETUP exchange (the plan was built with
    join_cgroup); None when the process is born in its cgroup or has none."""
    sock = sp.sock
    while True:
        try:
            data, fds = _recv(sock)
        except InterruptedError:
            continue
        if len(data) < P.MSG_HDR.size:
            raise InitError(_died(sp, plan))
        typ, err, step, value = P.MSG_HDR.unpack_from(data)
        detail = data[P.MSG_HDR.size:].split(b"\0", 1)[0].decode(errors="replace")
        if typ == P.M_SETUP_REQ:
            pid = sp.bootstrap_pid
            try:
                if plan.uid_map is not None and (os.geteuid() != 0 or _setgroups_denied()):
                    _write_maps_unprivileged(pid, plan.uid_map, plan.gid_map)
                elif plan.uid_map is not None:
                    _write_proc(pid, "setgroups", "allow")
                    _write_proc(pid, "uid_map", plan.uid_map)
                    _write_proc(pid, "gid_map", plan.gid_map)
            except OSError as e:
                raise InitError(f"linux.uidMappings: writing id maps of pid {pid}: {strerror(e.errno)}") from None
            if cgroup:
                _join_cgroup(cgroup, pid)
            for n, source, rec, uid_map, gid_map in plan.idmap_mounts:
                _send_idmapped(sock, pid, n, source, rec, uid_map, gid_map)
            sock.send(P.MSG_HDR.pack(P.M_SETUP_ACK, 0, 0, 0) + b"\0")
        elif typ == P.M_PID:
            sp.init_pid = value
            try:
                procs.waitpid(sp.bootstrap_pid)
            except ChildProcessError:
                pass
            sp.bootstrap_pid = 0
            if on_pid:
                on_pid(value)
        elif typ == P.M_PTY:
            try:
                if on_pty is None:
                    raise OcirunError("the init sent a terminal nobody asked for")
                on_pty(fds[0])
            finally:
                for fd in fds:
                    os.close(fd)
        elif typ == P.M_HOOK_REQ:
            state = on_hooks(sp.init_pid) if on_hooks else "{}"
            payload = state.encode()
            if len(payload) >= P.HOOK_STATE_MAX:
                raise InitError("the container state is too large for in-container hooks")
            sock.send(P.MSG_HDR.pack(P.M_HOOK_ACK, 0, 0, 0) + payload + b"\0")
        elif typ == P.M_SECCOMP:
            try:
                if on_seccomp is None:
                    raise InitError("the init sent a seccomp listener nobody asked for")
                on_seccomp(fds[0], sp.init_pid)
            finally:
                for fd in fds:
                    os.close(fd)
        elif typ == P.M_NETLINK:
            if not fds or not plan.net_devices:
                for fd in fds:
                    os.close(fd)
                raise InitError("the init sent a route socket nobody asked for")
            for fd in fds[1:]:
                os.close(fd)
            from ocirun import netdev

            try:
                netdev.move(plan.net_devices, fds[0])
            except OcirunError as e:
                raise InitError(str(e)) from None
        elif typ == P.M_WARN:
            if warn:
                warn(detail)
        elif typ == P.M_ERROR:
            raise InitError(format_error(plan, step, err, value, detail), err)
        elif typ == P.M_READY:
            if not sp.init_pid:
                raise InitError("the container init reported ready before its pid was known")
            return sp.init_pid
        else:
            raise InitError(f"unexpected message {typ} from the container init")


def exec_error(sock):
    """Read the sync socket after start: EOF means the execve happened (the
    socket is close-on-exec in the container); an error record is returned
    as its message."""
    try:
        data = sock.recv(2048)
    except OSError:
        return None
    if len(data) >= P.MSG_HDR.size:
        typ, err, step, value = P.MSG_HDR.unpack_from(data)
        if typ == P.M_ERROR:
            detail = data[P.MSG_HDR.size:].split(b"\0", 1)[0].decode(errors="replace")
            return format_error(None, step, err, value, detail)
    return None


def _died(sp, plan=None):
    for pid in (sp.bootstrap_pid, sp.init_pid):
        if not pid:
            continue
        try:
            wpid, status = procs.waitpid(pid)
        except ChildProcessError:
            continue
        if pid == sp.init_pid:
            sp.init_pid = 0
        else:
            sp.bootstrap_pid = 0
        return death_message(plan, status, sp.report(plan))
    return sp.report(plan) or "container init exited unexpectedly"


def death_message(plan, status, report=None):
    """One line for an init that died without reporting why over the socket.
    Under a seccomp profile that denies what it needs, it cannot: the kernel
    kills it (SIGSYS), or, when even exit_group is refused, the init stops
    itself with a fault (SIGILL), which no filter can refuse.  `report` is
    what it failed at, from its report page."""
    seccomp = plan is not None and getattr(plan, "seccomp", None) is not None
    if not os.WIFSIGNALED(status):
        return report or f"container init exited unexpectedly (status {os.WEXITSTATUS(status)})"
    sig = os.WTERMSIG(status)
    if seccomp and sig == 31:
        return "linux.seccomp: the profile killed the container process before its execve (SIGSYS)"
    if seccomp and sig == 4:
        if report:
            return f"{report} (linux.seccomp then refused reporting it and exiting: stopped with SIGILL)"
        return ("linux.seccomp: the profile denies what the container process needs before its execve, "
                "down to reporting the error and exiting (stopped with SIGILL)")
    return report or f"container init was killed by signal {sig}"


def send_seccomp_listener(path, fd, state, metadata, process_pid=None):
    """The runtime-spec seccomp agent protocol: one message carrying the
    container process state as JSON and the listener fd (SCM_RIGHTS).  The
    process is the container's init unless `process_pid` (exec) says."""
    from ocirun.jsonutil import dumps

    pid = state.get("pid", 0) if process_pid is None else process_pid
    msg = {"ociVersion": state.get("ociVersion", ""), "fds": ["seccompFd"], "pid": pid,
           "metadata": metadata or "", "state": state}
    send_fd(path, fd, dumps(msg).encode(), "linux.seccomp.listenerPath")


def start_hook_error(detail):
    """What `start` says when a startContainer hook failed (the init writes
    its detail on the exec fifo after an 'E')."""
    return format_error(None, P.STEPS.index("hook"), 0, 2 << 16, detail)


def format_error(plan, step, err, index, detail):
    """One line naming the config field or path and the cause."""
    name = P.STEPS[step] if 0 < step < len(P.STEPS) else f"step {step}"
    es = strerror(err) if err else ""
    what, _, extra = detail.partition("\n")
    if name == "exec_lookup":
        if index == 0 and err == 2:
            return f'unable to start container process: exec: "{what}": executable file not found in $PATH'
        if err == 2:
            return f'unable to start container process: exec: "{what}": stat {what}: no such file or directory'
        return f'unable to start container process: exec: "{what}": {es}'
    if name == "exec":
        return f"unable to start container process: exec {what}: {es}"
    if name == "mount":
        ext = f"{extra}: " if extra else ""
        return f'error mounting mounts[{index}] to rootfs at "{what}": {ext}{es}'
    if name == "rlimit":
        t = plan.rlimit_name(index) if plan else str(index)
        hint = " (raising a hard limit needs CAP_SYS_RESOURCE)" if err == 1 else ""
        return f"process.rlimits[{index}] {t}: setrlimit: {es}{hint}"
    if name == "oom":
        hint = " (lowering it needs CAP_SYS_RESOURCE)" if err in (1, 13) else ""
        return f"process.oomScoreAdj: writing /proc/self/oom_score_adj: {es}{hint}"
    if name == "cwd":
        return f"process.cwd {what}: chdir: {es}"
    if name == "sysctl":
        return f"linux.sysctl.{what.replace('/', '.')}: writing /proc/sys/{what}: {es}"
    if name == "device":
        field = f"linux.devices[{index}]" if index < 1000 else "default device"
        return f"{field} {what}: {extra + ': ' if extra else ''}{es}"
    if name in ("mask", "readonly"):
        field = "linux.maskedPaths" if name == "mask" else "linux.readonlyPaths"
        return f"{field}[{index}] {what}: {es}"
    if name == "setns":
        return f"linux.namespaces[{index}].path {what}: setns: {es}"
    if name in ("hostname", "domainname"):
        return f"{name} {what!r}: set{name}: {es}"
    if name == "setuid":
        return f"process.user.uid {index}: setresuid: {es}"
    if name == "setgid":
        return f"process.user.gid {index}: setresgid: {es}"
    if name == "setgroups":
        return f"process.user.additionalGids: setgroups: {es}"
    if name == "caps":
        return f"process.capabilities: {what}: {es}"
    if name == "hook":
        phase = {1: "createContainer", 2: "startContainer"}.get(index >> 16, "hook")
        return f"hooks.{phase}[{index & 0xFFFF}] {what}: {extra or es}" + (f": {es}" if extra and es else "")
    if name == "seccomp":
        return f"linux.seccomp: loading the filter: {es}"
    if name == "mempolicy":
        hint = " (a node this host does not have?)" if err == 22 else ""
        return f"linux.memoryPolicy: set_mempolicy: {es}{hint}"
    if name == "personality":
        return f"linux.personality: {es}"
    if name == "plan":
        return f"internal error: the init rejected the plan: {what}"
    parts = [name] + [x for x in (what, extra) if x] + ([es] if es else [])
    return ": ".join(parts)
