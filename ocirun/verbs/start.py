"""`start`: release a created container (runtime-spec runtime.md "start")."""

import os
import time

from ocirun import log
from ocirun.errors import StateError
from ocirun.state import FIFO, public_state, status, validate_id


def _read_rest(fd, timeout_ms=1000):
    """What a failing init wrote after its 'E', up to EOF (it exits right
    after writing), without blocking on a non-blocking fifo."""
    from ocirun.verbs.common import poll_fd

    out = b""
    end = time.monotonic() + timeout_ms / 1000
    while len(out) < 4096 and time.monotonic() < end and poll_fd(fd, timeout_ms):
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            continue
        if not chunk:
            break
        out += chunk
    return out


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
            # csrc/core/lifecycle.c:lc_release, as the front-end's start: "0"
            # read and the init's execve seen (the fifo closes with it), or why not
            from ocirun import _lifecycle

            start_time = st.get("start_time")
            how = _lifecycle.release(fd, st["pid"], -1 if start_time is None else start_time)
            if how == "hook":  # a startContainer hook failed; the init exits
                from ocirun.launch import start_hook_error

                raise StateError(start_hook_error(_read_rest(fd).decode(errors="replace")))
            if how == "dead":
                raise StateError("container process is already dead")
            if how == "taken":
                raise StateError("cannot start an already running container")
        finally:
            os.close(fd)
        os.unlink(fifo)
        log.debug(f"start {cid}: released the init (pid {st['pid']})")
        if st.get("hooks", {}).get("poststart"):
            from ocirun import hooks as H

            H.run_after(st["hooks"], "poststart", public_state(store, st))
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
