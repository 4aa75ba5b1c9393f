"""Process operations that belong to the `ocirun` process the caller started.

On the cold path that process is this interpreter, and every function here
is the plain system call.  On the warm path (ocirun/warm.py) this code runs
in a worker forked from a pre-imported server, and the caller's `ocirun` is
the C front-end (csrc/front/warm.c): the container's init must still be that
process's child (engines' subreapers adopt it when `ocirun` exits), inherit
its rlimits, oom_score_adj and cgroup, and be waited for by it.  So the
worker asks the front-end, over the request's connection, to spawn, wait,
signal, set the subreaper flag and forward signals; the front-end does it as
itself.  `install(agent)` switches this module to that agent.

Wire format (SOCK_SEQPACKET, one message per datagram, little-endian):
    header  u32 type, i32 a, i32 b          (WIRE.size bytes), then payload
Types and their payloads are the W_* constants below; csrc/front/warm.h has
the same numbers.  The request and its verification are warm.py's."""

import os
import struct

WIRE = struct.Struct("<Iii")
W_REQUEST, W_ACCEPT, W_REFUSE, W_GO = 1, 2, 3, 4
W_SPAWN, W_SPAWNED, W_WAIT, W_STATUS, W_KILL, W_RESULT, W_SUBREAPER, W_FORWARD, W_DONE = range(10, 19)
FWD_STOP, FWD_START, FWD_TARGET = 0, 1, 2
# SPAWN's fixed part: exe index (-1: exec `path`), keep_below, nmoves, nargv, nenv
SPAWN_HEAD = struct.Struct("<iiiii")

_agent = None


def received_fds(ancillary):
    """The fds of the SCM_RIGHTS messages in recvmsg's ancillary data."""
    import _socket

    fds = []
    for level, typ, payload in ancillary:
        if level == _socket.SOL_SOCKET and typ == _socket.SCM_RIGHTS:
            fds.extend(struct.unpack(f"{len(payload) // 4}i", payload[: len(payload) // 4 * 4]))
    return fds


def install(agent):
    global _agent
    _agent = agent


def warm():
    """True in a warm worker: the `ocirun` process is the front-end."""
    return _agent is not None


def hangup_fd():
    """Warm: an fd that becomes readable when the `ocirun` process is gone
    (the front-end never writes unasked), for loops that wait on something
    else; None on the cold path."""
    return _agent.conn.fileno() if _agent else None


def caller_pid():
    """The pid of the `ocirun` process the caller started (LISTEN_PID names it)."""
    return _agent.caller_pid if _agent else os.getpid()


# every signal back to its default in a spawned process (Python ignores SIGPIPE, …)
SIGNALS = [s for s in range(1, 65) if s not in (9, 19, 32, 33)]


def spawn(exe_fd, argv, env, moves, keep_below, path=None, cwd=None):
    """Start `argv` from the executable open at `exe_fd` (or `path` when
    exe_fd is None) as a child of the `ocirun` process, with environment
    `env` (a list of "K=V"), fds 0..keep_below-1 inherited, each (fd, target)
    of `moves` at `target`, every other fd closed, all signals default and
    unblocked.  Returns its pid.  Raises OSError.  (`cwd`: warm only; the
    cold path's hooks use subprocess.)"""
    if _agent:
        return _agent.spawn(exe_fd, argv, env, moves, keep_below, path, cwd)
    import fcntl

    actions = [(os.POSIX_SPAWN_DUP2, fd, fd) for fd in range(3, keep_below)]  # clears close-on-exec
    opened = []
    try:
        lowest = max([keep_below] + [t for _, t in moves]) + 1
        for fd, target in moves:
            # above every target, so that no dup2 clobbers another source
            src = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, lowest)
            opened.append(src)
            actions.append((os.POSIX_SPAWN_DUP2, src, target))
        if exe_fd is not None:
            # the image too: a dup2 onto its number would replace what is executed
            exe = fcntl.fcntl(exe_fd, fcntl.F_DUPFD_CLOEXEC, lowest)
            opened.append(exe)
            path = f"/proc/self/fd/{exe}"
        envd = dict(e.split("=", 1) for e in env if "=" in e)
        return os.posix_spawn(path, argv, envd, file_actions=actions, setsigmask=(), setsigdef=SIGNALS)
    finally:
        for fd in opened:
            os.close(fd)


def waitpid(pid, nohang=False):
    """(pid, status) like os.waitpid; (0, 0) with nohang while it runs.
    Raises ChildProcessError for a pid that is not the ocirun process's child."""
    if _agent:
        return _agent.waitpid(pid, nohang)
    return os.waitpid(pid, os.WNOHANG if nohang else 0)


def kill(pid, sig):
    """Signal a child of the `ocirun` process that has not been waited for.
    Raises ProcessLookupError once it has."""
    if _agent:
        return _agent.kill(pid, sig)
    os.kill(pid, sig)


def set_subreaper(on):
    if _agent:
        return _agent.set_subreaper(on)
    from ocirun import _native

    _native.set_child_subreaper(on)


def forward(mode, pid=0):
    """Warm only: the front-end forwards the signals it receives (FWD_START
    queues them, FWD_TARGET sends them to `pid`, FWD_STOP ends it)."""
    _agent.forward(mode, pid)


def run_captured(path, args, env, cwd, data, timeout):
    """Warm only: run a hook as a child of the `ocirun` process with `data`
    on its stdin; (returncode, stdout, stderr).  Raises TimeoutError (the
    hook was killed and waited for) or OSError."""
    return _agent.run_captured(path, args, env, cwd, data, timeout)
