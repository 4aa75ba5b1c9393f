"""`kill`: a signal to the container's init, or with all_ to every process
of the container (runtime-spec runtime.md "kill")."""

import os

from ocirun.errors import StateError
from ocirun.state import status, validate_id
from ocirun.verbs.common import container_pids, signal_init, thaw


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


def kill(store, cid, sig, all_=False):
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
            signal_init(st, sig)
        return
    if s == "stopped":
        raise StateError("container not running")
    signal_init(st, sig)
    if sig == 9 and s == "paused":
        thaw(st)
