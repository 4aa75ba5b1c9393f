"""`list`: the state of every container under --root, with its owner."""

import os

from ocirun.errors import OcirunError
from ocirun.state import public_state


def list_states(store, on_error=None):
    """The public state of every container; an entry that cannot be read is
    left out and its one-line reason passed to on_error (the CLI prints it
    on stderr)."""
    import pwd

    on_error = on_error or (lambda msg: None)
    res = []
    for cid in store.ids():
        try:
            st = store.read(cid)
            uid = os.stat(store.dir(cid)).st_uid
        except (OcirunError, OSError) as e:
            on_error(f"{cid}: {e}")
            continue
        try:
            owner = pwd.getpwuid(uid).pw_name
        except KeyError:
            owner = f"#{uid}"
        try:
            res.append(public_state(store, st, owner))
        except Exception as e:  # noqa: BLE001 - one bad entry must not hide the others
            on_error(f"{cid}: state of container {cid} is unusable: {type(e).__name__}: {e}")
    return res
