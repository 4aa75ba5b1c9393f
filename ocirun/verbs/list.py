"""`list`: the state of every container under --root, with its owner."""

import os

from ocirun import log
from ocirun.errors import OcirunError
from ocirun.state import public_state


def list_states(store):
    import pwd

    res = []
    for cid in store.ids():
        try:
            st = store.read(cid)
            uid = os.stat(store.dir(cid)).st_uid
        except (OcirunError, OSError) as e:
            log.stderr(f"{cid}: {e}")
            continue
        try:
            owner = pwd.getpwuid(uid).pw_name
        except KeyError:
            owner = f"#{uid}"
        try:
            res.append(public_state(store, st, owner))
        except Exception as e:  # noqa: BLE001 - one bad entry must not hide the others
            log.stderr(f"{cid}: state of container {cid} is unusable: {type(e).__name__}: {e}")
    return res
