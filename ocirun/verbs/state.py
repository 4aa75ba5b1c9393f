"""`state`: the OCI state object of one container (runc's output)."""

from ocirun.state import public_state, validate_id


def state(store, cid):
    validate_id(cid)
    return public_state(store, store.read(cid))
