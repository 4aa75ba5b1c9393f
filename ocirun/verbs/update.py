"""`update`: new limits for a running container's cgroup (a runtime-spec
LinuxResources object), kept in its state."""

import os

from ocirun.errors import OcirunError, StateError
from ocirun.state import status, validate_id


def update(store, cid, resources):
    from ocirun import cgroups

    validate_id(cid)
    lockfd = store.lock(cid)
    try:
        st = store.read(cid)
        if status(store, st) == "stopped":
            raise StateError("container not running")
        cg = st.get("cgroup")
        if not cg:
            raise OcirunError("the container has no cgroup to update")
        cg["resources"] = cgroups.update(cg, resources)
        store.write(cid, st)
    finally:
        os.close(lockfd)
