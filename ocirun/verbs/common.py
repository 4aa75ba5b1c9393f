"""What several verbs share: the init's signalling and death (kill, delete),
the container's pids (kill --all, ps), and the mounts an init without a
mount namespace of its own makes in ours (create's clean-up, delete)."""

import os

from ocirun import host, log
from ocirun.errors import OcirunError, StateError, strerror
from ocirun.state import status


def poll_fd(fd, timeout_ms):
    import select

    p = select.poll()
    p.register(fd, select.POLLIN | select.POLLHUP)
    return p.poll(timeout_ms)


def signal_init(st, sig):
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
    """Whether the process (pid and start time) is gone, waiting up to
    timeout seconds (csrc/core/lifecycle.c:lc_wait_dead)."""
    from ocirun import _lifecycle

    r = _lifecycle.wait_dead(pid, -1 if start_time is None else start_time, int(timeout * 1000))
    if r < 0:
        raise OSError(-r, os.strerror(-r))
    return bool(r)


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
        here = host.mounts_at(path)
        ids = {m[0] for m in here}
        top = [m for m in here if not any(o[1] == m[0] for o in here if o[0] in ids)]
        if not top or top[0][0] in old:
            return
        if libc.umount2(path.encode(), 2) != 0:  # MNT_DETACH
            log.warning(f"unmounting {path}: {strerror(ctypes.get_errno())}")
            return
