"""`events`: the container's OOM notifications and cgroup statistics, as
runc's event objects ({"type", "id", "data"})."""

from ocirun.errors import OcirunError, StateError
from ocirun.state import status, validate_id


def _container_cgroup(store, cid):
    validate_id(cid)
    st = store.read(cid)
    if status(store, st) == "stopped":
        raise StateError(f"container with id {cid} is not running")
    cg = st.get("cgroup")
    if not cg:
        raise OcirunError(f"container {cid} has no cgroup")
    return cg


def stats(store, cid):
    """One stats event (`events --stats`)."""
    from ocirun.cgroups import stats as S

    cg = _container_cgroup(store, cid)
    return {"type": "stats", "id": cid, "data": S.collect(cg)}


def events(store, cid, interval):
    """Yield an event for every OOM kill and a stats event every `interval`
    seconds, until the container's cgroup is gone."""
    import time

    from ocirun.cgroups import stats as S
    from ocirun.cgroups.oom import OOMWatch

    cg = _container_cgroup(store, cid)
    watch = OOMWatch(cg)
    try:
        next_stats = time.monotonic() + interval
        while True:
            timeout = max(0.0, next_stats - time.monotonic())
            for _ in range(watch.wait(timeout)):
                yield {"type": "oom", "id": cid}
            if not watch.alive():
                return
            if time.monotonic() >= next_stats:
                next_stats += interval
                try:
                    data = S.collect(cg)
                except OSError:
                    continue
                if not watch.alive():
                    return
                yield {"type": "stats", "id": cid, "data": data}
    finally:
        watch.close()
