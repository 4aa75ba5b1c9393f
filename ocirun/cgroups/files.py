"""The bottom of the cgroup library: its error, reading and writing a
cgroup file, and which directory of a container's cgroup holds a
controller's files.  resources, stats, oom and devices build on this; the
Cgroup object (ocirun/cgroups/__init__.py) on all of them."""

import os

from ocirun.errors import OcirunError


class CgroupError(OcirunError):
    pass


def read(path):
    """The file's text, or None when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read().decode()
    except OSError:
        return None


def write(path, value):
    """One write(2), as the kernel wants for cgroup files (no truncation,
    no symlink followed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        os.write(fd, value.encode() if isinstance(value, str) else value)
    finally:
        os.close(fd)


def controller_dir(cg, ctrl):
    """The directory holding ctrl's files for the cgroup described by `cg`,
    or None when the controller is not available (not mounted on v1, not
    enabled on v2)."""
    if not cg:
        return None
    if cg["version"] == 2:
        path = next(iter(cg["paths"].values()))
        if ctrl == "cgroup":
            return path
        avail = read(os.path.join(path, "cgroup.controllers"))
        return path if avail is not None and ctrl in avail.split() else None
    for mp, path in cg["paths"].items():
        if ctrl in os.path.basename(mp).split(","):
            return path
    return None
