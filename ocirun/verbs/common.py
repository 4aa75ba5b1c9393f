"""What several verbs share: the init's signalling and death (kill, delete),
the container's pids (kill --all, ps), and the mounts an init without a
mount namespace of its own makes in ours (create's clean-up, delete)."""

import os
import time

from ocirun import log
from ocirun.errors import OcirunError, StateError
from ocirun.state import pid_start_time, status


def poll_fd(fd, timeout_ms):
    import select

    p = select.poll()
    p.register(fd, select.POLLIN | select.POLLHUP)
    return p.poll(timeout_ms)


def signal_init(st, sig):
    """Signal through a pidfd taken after checking the start time, so a
    recycled pid is never signalled."""
    import _signal

    pid = st["pid"]
    try:
        pfd = os.pidfd_open(pid)
    except ProcessLookupError:
        raise StateError("container not running") from None
    try:
        if pid_start_time(pid) != st.get("start_time"):
            raise StateError("container not running")
        try:
            _signal.pidfd_send_signal(pfd, sig)
        except ProcessLookupError:
            raise StateError("container not running") from None
    finally:
        os.close(pfd)


def thaw(st):
    """Best effort, before a SIGKILL: a frozen task dies only once thawed."""
    from ocirun import cgroups

    cg = st.get("cgroup")
    if not cg:
        return
    try:
        cgroups.freeze(cg, False)
    except (OSError, OcirunError):
        pass


def wait_dead(pid, start_time, timeout=10.0):
    try:
        pfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        if pid_start_time(pid) != start_time:
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if poll_fd(pfd, 100):
                return True
        return False
    finally:
        os.close(pfd)


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


def mounts_at(path):
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


def detach_host_mounts(st):
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
        here = mounts_at(path)
        ids = {m[0] for m in here}
        top = [m for m in here if not any(o[1] == m[0] for o in here if o[0] in ids)]
        if not top or top[0][0] in old:
            return
        if libc.umount2(path.encode(), 2) != 0:  # MNT_DETACH
            log.warning(f"unmounting {path}: {os.strerror(ctypes.get_errno()).lower()}")
            return
