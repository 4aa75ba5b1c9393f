"""NOTIFY_SOCKET (sd_notify) passthrough, as runc does it.

When ocirun is called with NOTIFY_SOCKET set, the container gets
<root>/<id>/notify/ bind-mounted read-only at /run/notify and
NOTIFY_SOCKET=/run/notify/notify.sock in its environment.  `start` (or
`run`) binds that datagram socket before releasing the container, waits for
a READY= message, forwards it with MAINPID=<init pid> to the caller's
socket, then sends BARRIER=1 with an fd and waits (at most 30 s) until the
caller closes it, so the caller has processed everything before we exit.
"""

import os
import struct

CONTAINER_DIR = "/run/notify"
CONTAINER_SOCKET = CONTAINER_DIR + "/notify.sock"


def host_socket():
    return os.environ.get("NOTIFY_SOCKET") or None


def state_dir(store, cid):
    return os.path.join(store.dir(cid), "notify")


def _address(path):
    return "\0" + path[1:] if path.startswith("@") else path


def bind(store, cid):
    """Bind the container-side socket (before the container runs)."""
    import _socket

    from ocirun.errors import OcirunError, strerror

    d = state_dir(store, cid)
    path = os.path.join(d, "notify.sock")
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    # through the directory's fd: a state path can exceed sun_path's 108 bytes
    dfd = os.open(d, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        s.bind(f"/proc/self/fd/{dfd}/notify.sock")
        os.chmod(path, 0o777)  # the container's user may be anyone
    except OSError as e:
        s.close()
        raise OcirunError(f"NOTIFY_SOCKET: binding {path}: {strerror(e.errno)}") from None
    finally:
        os.close(dfd)
    return s


def relay_ready(sock, pid, start_time, host):
    """Wait for READY= from the container (or its exit), forward it."""
    import _socket
    import select

    from ocirun.state import pid_start_time

    p = select.poll()
    p.register(sock.fileno(), select.POLLIN)
    ready = None
    while ready is None:
        if not p.poll(200):
            if pid_start_time(pid) != start_time:
                return False  # exited without being ready
            continue
        data = sock.recv(4096)
        for line in data.split(b"\n"):
            if line.startswith(b"READY="):
                ready = line
    from ocirun.errors import OcirunError, strerror

    out = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        try:
            out.connect(_address(host))
        except OSError as e:
            raise OcirunError(f"NOTIFY_SOCKET {host}: connect: {strerror(e.errno)}") from None
        out.send(ready + b"\nMAINPID=" + str(pid).encode())
        r, w = os.pipe2(os.O_CLOEXEC)
        try:
            out.sendmsg([b"BARRIER=1"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("i", w))])
            os.close(w)
            w = -1
            b = select.poll()
            b.register(r, select.POLLHUP | select.POLLIN)
            b.poll(30000)
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)
    finally:
        out.close()
    return True
