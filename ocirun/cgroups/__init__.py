"""cgroups: where a container's cgroup lives and its lifecycle (create, join,
freeze state, kill, remove) on v1 and v2, behind one small interface.

A container's cgroup description is a plain dict stored in its state:
    {"version": 1|2, "paths": {hierarchy-mountpoint: absolute dir}}
so later commands need no host probing and no --systemd-cgroup flag.
Path rules follow runc's cgroupfs driver: an absolute linux.cgroupsPath is
taken under each hierarchy's root; a relative one (or the container id when
none is given) under the runtime's own cgroup.
"""

import errno
import os
import time

from ocirun.errors import OcirunError

ROOT = "/sys/fs/cgroup"


class CgroupError(OcirunError):
    pass


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode()
    except OSError:
        return None


def _write(path, value):
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        os.write(fd, value.encode() if isinstance(value, str) else value)
    finally:
        os.close(fd)


def hierarchies(root=ROOT):
    """{mountpoint: controllers-string} of cgroup hierarchies under root, and
    the version in use (2 when root itself is cgroup2)."""
    from ocirun.plan import cgroup_hierarchies

    found = {}
    version = 1
    for fstype, mp, sopts in cgroup_hierarchies():
        if fstype == "cgroup2" and mp == root:
            return {root: ""}, 2
        if fstype == "cgroup" and mp.startswith(root + "/"):
            found[mp] = ",".join(o for o in sopts.split(",") if o not in ("rw", "ro"))
    return found, version


def resolve(cgroups_path, cid, root=ROOT):
    """The cgroup description for a new container (nothing is created)."""
    from ocirun.plan import own_cgroup_paths

    hier, version = hierarchies(root)
    if not hier:
        return None
    inner = cgroups_path or cid
    if ":" in inner and not inner.startswith("/"):
        raise CgroupError(f"linux.cgroupsPath: {inner!r} looks like a systemd slice:prefix:name path; "
                          "use --systemd-cgroup (and a running systemd)")
    parts = [p for p in inner.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise CgroupError(f"linux.cgroupsPath: {inner!r} must not contain '..'")
    own = own_cgroup_paths()
    paths = {}
    for mp, ctrls in hier.items():
        if inner.startswith("/"):
            base = ""
        else:
            base = own.get(ctrls if version == 1 else "", "/")
            if version == 1 and ctrls.startswith("name="):
                base = own.get(ctrls, "/")
        paths[mp] = os.path.normpath(mp + base + "/" + "/".join(parts))
    return {"version": version, "paths": paths}


def _copy_cpuset(path, mp):
    """A new v1 cpuset group starts with no cpus/mems: inherit the parent's."""
    chain = []
    p = path
    while p != mp and p.startswith(mp):
        chain.append(p)
        p = os.path.dirname(p)
    for d in reversed(chain):
        for f in ("cpuset.cpus", "cpuset.mems"):
            cur = _read(os.path.join(d, f))
            if cur is not None and not cur.strip():
                parent = _read(os.path.join(os.path.dirname(d), f))
                if parent and parent.strip():
                    _write(os.path.join(d, f), parent.strip())


def create(cg):
    """mkdir every path; returns the list actually created (for rollback)."""
    made = []
    try:
        for mp, path in cg["paths"].items():
            if not os.path.isdir(path):
                os.makedirs(path, 0o755, exist_ok=True)
                made.append(path)
            if cg["version"] == 1 and os.path.exists(os.path.join(mp, "cpuset.cpus")):
                _copy_cpuset(path, mp)
    except OSError as e:
        remove({"paths": {p: p for p in made}}, timeout=0)
        raise CgroupError(f"creating cgroup {e.filename}: {os.strerror(e.errno).lower()}") from None
    return made


def add_pid(cg, pid):
    for path in cg["paths"].values():
        try:
            _write(os.path.join(path, "cgroup.procs"), str(pid))
        except OSError as e:
            raise CgroupError(f"adding pid {pid} to cgroup {path}: {os.strerror(e.errno).lower()}") from None


def pids(cg):
    """Host pids in the container's cgroup (from the first hierarchy)."""
    if not cg:
        return []
    for path in cg["paths"].values():
        data = _read(os.path.join(path, "cgroup.procs"))
        if data is not None:
            return [int(x) for x in data.split()]
    return []


def _freezer_path(cg):
    if not cg:
        return None
    if cg["version"] == 2:
        return os.path.join(next(iter(cg["paths"].values())), "cgroup.freeze")
    for mp, path in cg["paths"].items():
        if os.path.basename(mp) == "freezer":
            return os.path.join(path, "freezer.state")
    return None


def is_frozen(cg):
    p = _freezer_path(cg)
    if not p:
        return False
    v = _read(p)
    if v is None:
        return False
    v = v.strip()
    return v == "1" if cg["version"] == 2 else v in ("FROZEN", "FREEZING")


def remove(cg, timeout=5.0):
    """rmdir every path, retrying while dying processes still hold it."""
    if not cg:
        return
    deadline = time.monotonic() + timeout
    for path in cg["paths"].values():
        delay = 0.001
        while True:
            try:
                os.rmdir(path)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise CgroupError(f"removing cgroup {path}: {os.strerror(e.errno).lower()}") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
