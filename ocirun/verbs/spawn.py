"""The one spawn path of `create` and `exec`: the console-socket rules, the
cgroup the new process is born in or moved to, the terminal (sent to
--console-socket or kept to relay), --pid-file and --pidfd-socket.

    sp = Spawner(plan, cgroup=cg, pid_file=..., pidfd_socket=..., console_socket=...)
    pid = sp.start(fifo_fd=..., preserve_fds=..., on_pid=..., on_hooks=..., on_seccomp=...)
    why = sp.execve_failure(pid)   # after the release: did the execve happen?
    sp.publish(pid)      # once the process is what the caller asked for
    sp.abort()           # on any failure: processes killed, the pid file's temp removed

Build the plan with `join_cgroup=joins_cgroup_at_setup(cg)` so that it
already holds what this spawn needs (plan.build returns a final plan)."""

import os

from ocirun import launch, log
from ocirun.errors import OcirunError, strerror


def listen_fds():
    """Socket activation passed through as runc does (create/run only): the
    number of LISTEN_FDS meant for this process."""
    n = os.environ.get("LISTEN_FDS")
    if n and n.isdigit() and os.environ.get("LISTEN_PID") == str(os.getpid()):
        return int(n)
    return 0


def harden_fds(preserve):
    """G1: inherited fds beyond stdio, the socket-activation ones and the
    preserved ones become close-on-exec at once (the init closes them too).
    A walk of /proc/self/fd rather than close_range(CLOSE_RANGE_CLOEXEC): it
    keeps the cffi extension (and its memory) off the create path."""
    first = 3 + listen_fds() + preserve
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= first:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass  # the directory fd of the listing itself


def check_console(detach, terminal, console_socket):
    """runc's rules: a detached terminal needs a console socket, and a console
    socket is only for a detached terminal."""
    if detach and terminal and not console_socket:
        raise OcirunError("cannot allocate tty if ocirun will detach without setting console socket")
    if console_socket and not (detach and terminal):
        raise OcirunError("cannot use console socket if ocirun will not detach or allocate tty")


def joins_cgroup_at_setup(cg):
    """On cgroup v1 the parent moves the bootstrap into the cgroup during the
    SETUP exchange (the plan must ask for it); on v2 the process is born in
    it (clone3 CLONE_INTO_CGROUP), unless the group does not exist yet: the
    systemd driver's unit is started with the bootstrap's pid at SETUP."""
    return bool(cg) and (cg["version"] != 2 or not cg.get("systemd", {}).get("started", True))


class Terminal:
    """Where the pty master goes: to --console-socket, or kept (`master`) for
    the caller to relay in the foreground."""

    def __init__(self, console_socket=None):
        self.console_socket = console_socket
        self.master = None

    def __call__(self, fd):
        if self.console_socket:
            launch.send_console(self.console_socket, fd)
            return
        self.master = os.dup(fd)
        if os.isatty(0):
            from ocirun.tty import copy_winsize

            copy_winsize(fd)


class PidFile:
    """--pid-file: its temporary file is made before the process exists (a
    path that cannot be written fails before anything runs), then filled and
    renamed into place: digits only, no newline (containerd parses it with
    Atoi)."""

    def __init__(self, path):
        self.path = path
        d, name = os.path.split(path)
        self.tmp = os.path.join(d, "." + name)
        try:
            self.fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o666)
        except OSError as e:
            raise OcirunError(f"--pid-file {path}: {strerror(e.errno)}") from None

    def commit(self, pid):
        try:
            os.write(self.fd, str(pid).encode())
        finally:
            os.close(self.fd)
            self.fd = None
        os.rename(self.tmp, self.path)

    def abort(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
            try:
                os.unlink(self.tmp)
            except OSError:
                pass


class Spawner:
    def __init__(self, plan, *, cgroup=None, console_socket=None, pid_file=None, pidfd_socket=None,
                 pidfd_kind=b"standard", what="spawn"):
        self.what = what  # "create <id>", "exec <id>": what the debug log lines start with
        self.plan = plan
        self.cgroup = cgroup
        self.terminal = Terminal(console_socket)
        self.pid_file = pid_file
        self.pidfd_socket = pidfd_socket
        self.pidfd_kind = pidfd_kind
        self.sp = None
        self._pidf = None

    def start(self, *, fifo_fd=None, preserve_fds=0, on_pid=None, on_hooks=None, on_seccomp=None):
        """Spawn the bootstrap and serve it until the process is set up;
        returns its pid.  The launch.Spawn is `.sp` (its sync socket stays
        open: whether the final execve happened arrives there)."""
        if self.pid_file:
            self._pidf = PidFile(self.pid_file)
        cg = self.cgroup
        born_in = bool(cg) and not joins_cgroup_at_setup(cg)
        cg_fd = None
        if born_in:
            cg_fd = os.open(next(iter(cg["paths"].values())), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            self.sp = launch.spawn(self.plan, self.plan.blob(), fifo_fd=fifo_fd, preserve_fds=preserve_fds,
                                   cgroup_fd=cg_fd)
        finally:
            if cg_fd is not None:
                os.close(cg_fd)
        log.debug(f"{self.what}: started ocirun-init (bootstrap pid {self.sp.bootstrap_pid})")
        return launch.converse(self.sp, self.plan, cgroup=None if born_in else cg, on_pid=on_pid,
                               on_pty=self.terminal, on_hooks=on_hooks, on_seccomp=on_seccomp, warn=log.warning)

    def publish(self, pid):
        """The process is what was asked for: hand out its pidfd and pid."""
        if self.pidfd_socket:
            launch.send_pidfd(self.pidfd_socket, pid, self.pidfd_kind)
        if self._pidf is not None:
            pidf, self._pidf = self._pidf, None
            pidf.commit(pid)

    def execve_failure(self, pid, dead=False):
        """After the release: None when the process made its final execve,
        else why not — what it reported on the sync socket, or how it died
        (a seccomp profile can deny it even the report and the exit; its
        report page still says what failed).  `dead`: the caller knows it
        died before its execve."""
        err = launch.exec_error(self.sp.sock)
        if err:
            return err
        if not dead:
            from ocirun.state import never_executed

            if not never_executed(pid):  # our child, not reaped yet
                return None
        try:
            _, wst = os.waitpid(pid, 0)
        except ChildProcessError:
            return self.sp.report(self.plan)
        return launch.death_message(self.plan, wst, self.sp.report(self.plan))

    def close_sync(self):
        """Done with the sync socket and the report page."""
        if self.sp is not None:
            if self.sp.sock is not None:
                self.sp.sock.close()
                self.sp.sock = None
            self.sp.close_report()

    def abort(self):
        if self.sp is not None:
            self.sp.kill()
        if self._pidf is not None:
            self._pidf.abort()
            self._pidf = None
