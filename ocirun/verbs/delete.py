"""`delete`: remove what a container holds (runtime-spec runtime.md
"delete"), killing it first with force; poststop hooks last."""

import os

from ocirun import log
from ocirun.errors import ContainerNotFound, OcirunError, StateError
from ocirun.state import StateCorrupt, oci_state, status, validate_id
from ocirun.verbs.common import detach_host_mounts, signal_init, thaw, wait_dead


def delete(store, cid, force=False):
    validate_id(cid)
    lockfd = store.lock(cid, missing_ok=True)
    if lockfd is None:
        if force:
            return
        raise ContainerNotFound("container does not exist")
    try:
        try:
            st = store.read(cid)
        except ContainerNotFound:
            store.remove(cid)  # a stray directory left by a crash
            if force:
                return
            raise
        except StateCorrupt as e:
            if not force:
                raise
            _delete_corrupt(store, cid, e)
            return
        s = status(store, st)
        if s in ("running", "paused") and not force:
            raise StateError(f"cannot delete container {cid} that is not stopped: {s}")
        if s != "stopped":
            if s == "paused":
                thaw(st)
            try:
                signal_init(st, 9)
            except StateError:
                pass
            if not wait_dead(st["pid"], st.get("start_time")):
                raise OcirunError("container init still running")
        destroy(store, st)
    finally:
        os.close(lockfd)


def force_delete(store, cid):
    """delete --force that is quiet about a container already gone (what
    `run` does with the container it made)."""
    try:
        delete(store, cid, force=True)
    except ContainerNotFound:
        pass


def _delete_corrupt(store, cid, err):
    """delete --force of a container whose state.json is unusable: its pid
    cannot be trusted, but its cgroup is where create put it (the saved
    config's cgroupsPath, else the id): kill what is in there and remove it,
    then the state directory."""
    from ocirun import cgroups
    from ocirun.jsonutil import loads

    log.warning(f"{err}: removing it with what config.json says")
    try:
        cfg = loads(store.read_file(cid, "config.json"))
        from ocirun.config import string

        cgp = string(((cfg.get("linux") or {}) if isinstance(cfg, dict) else {}).get("cgroupsPath"),
                   "linux.cgroupsPath")
        # never the root cgroup or the runtime's own: resolve refuses those;
        # a slice:prefix:name path was the systemd driver's (its unit is
        # stopped; the cgroupfs driver refuses such a path)
        systemd = bool(cgp) and ":" in cgp and not cgp.startswith("/")
        cg = cgroups.resolve(cgp, cid, driver=cgroups.driver(systemd=systemd))
        if cg and systemd:
            cg["systemd"]["started"] = True
        if cg:
            # which directories create made is lost with the state: the
            # container's own groups only (create refused a non-empty one),
            # never a parent
            cg["made"] = sorted(set(cg["paths"].values()), key=len, reverse=True)
    except Exception as e:  # noqa: BLE001 - best effort; the directory goes regardless
        log.warning(f"cannot find the cgroup of container {cid}: {e}")
        cg = None
    if cg and all(os.path.isdir(p) for p in cg["paths"].values()):
        destroy(store, {"id": cid, "cgroup": cg})
    store.remove(cid)


def destroy(store, st):
    """Remove everything a stopped container still holds: leftover processes
    of a container without its own pid namespace, the cgroup, the state
    directory; then poststop hooks."""
    from ocirun import cgroups

    cg = st.get("cgroup")
    err = None
    detach_host_mounts(st)
    if cg:
        # with a pid namespace of its own, the init's death took every
        # process of the container along; otherwise the others outlive it
        # and are killed with the group frozen (no fork escapes).  Nothing
        # else in the group is signalled: it is not the container's.
        at_root = any(p == mp for mp, p in cg["paths"].items())  # only an old state can say so
        if "pid" not in (st.get("ns") or ()) and not at_root:
            try:
                cgroups.signal_all(cg, 9)
            except (OSError, OcirunError) as e:
                log.warning(str(e))
        try:
            cgroups.remove(cg)
        except OcirunError as e:
            err = e
    store.remove(st["id"])
    if st.get("hooks", {}).get("poststop"):
        from ocirun import hooks as H

        H.run_after(st["hooks"], "poststop", oci_state(st, "stopped", 0))
    if err:
        raise err
