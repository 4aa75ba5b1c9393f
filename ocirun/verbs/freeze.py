"""`pause` and `resume`: freeze and thaw the container's cgroup."""

import os

from ocirun.errors import OcirunError, StateError
from ocirun.state import status, validate_id

# verb -> (the statuses it acts on, what the freezer is set to)
_VERBS = {"pause": (("running", "created"), True, "container not running"),
          "resume": (("paused",), False, "container not paused")}


def _freeze(store, cid, verb):
    from ocirun import cgroups

    wanted, frozen, refusal = _VERBS[verb]
    validate_id(cid)
    lockfd = store.lock(cid)
    try:
        st = store.read(cid)
        if status(store, st) not in wanted:
            raise StateError(refusal)
        try:
            cgroups.freeze(st.get("cgroup"), frozen)
        except OSError as e:
            from ocirun.errors import strerror

            raise OcirunError(f"{verb}: {e.filename}: {strerror(e.errno)}") from None
    finally:
        os.close(lockfd)


def pause(store, cid):
    _freeze(store, cid, "pause")


def resume(store, cid):
    _freeze(store, cid, "resume")
