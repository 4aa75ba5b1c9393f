"""`ps`: the container's processes, as pids or as the host's `ps` output
filtered to them."""

from ocirun.errors import OcirunError
from ocirun.state import validate_id


def pids(store, cid):
    from ocirun.verbs.common import container_pids

    validate_id(cid)
    return container_pids(store, store.read(cid))


def ps_lines(pids_, ps_args):
    """The host's `ps` (default -ef) output: its header and the lines of
    `pids_`."""
    import subprocess

    try:
        p = subprocess.run(["ps"] + (ps_args or ["-ef"]), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           close_fds=True)
    except OSError as e:
        from ocirun.errors import strerror

        raise OcirunError(f"exec: \"ps\": {strerror(e.errno)}") from None
    out = p.stdout.decode(errors="replace")
    if p.returncode != 0:
        raise OcirunError(f"exit status {p.returncode}: {out.strip()}")
    lines = out.split("\n")
    header = lines[0].split()
    if "PID" not in header:
        raise OcirunError("couldn't find PID field in ps output")
    idx = header.index("PID")
    want = set(pids_)
    res = [lines[0]]
    for line in lines[1:]:
        if not line:
            continue
        fields = line.split()
        try:
            pid = int(fields[idx])
        except (ValueError, IndexError):
            raise OcirunError(f"unable to parse pid: {line!r}") from None
        if pid in want:
            res.append(line)
    return res
