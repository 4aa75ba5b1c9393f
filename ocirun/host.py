"""The host and the runtime's own process as /proc and /sys show them:
cgroup hierarchies and the runtime's own groups, where a group's controller
and freezer files are, the highest capability the kernel knows, the
runtime's bounding set, which LSMs are enabled, what is mounted where; and
read()/write(), the primitives for kernel files (cgroupfs) every layer uses.

The lowest layer with errors, tables and proto: it imports nothing of ocirun.
What does not change while a command runs (cgroup hierarchies) is read once
per process."""

import os


def read(path):
    """A kernel file's text, or None when it cannot be read (bytes that are
    not UTF-8, a process name in /proc/self/status say, come through as
    surrogate escapes, never as an exception)."""
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="surrogateescape")
    except OSError:
        return None


def write(path, value):
    """One write(2), as the kernel wants for cgroup files (no truncation, no
    symlink followed); raises OSError."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        os.write(fd, value.encode() if isinstance(value, str) else value)
    finally:
        os.close(fd)


def unescape(s):
    """A mountinfo field: octal escapes (\\040 for a space) undone."""
    if "\\" not in s:
        return s
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 4 <= len(s) and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


_HIERARCHIES = []


def cgroup_hierarchies():
    """[(fstype, mountpoint, super options)] of the host's cgroup mounts;
    read once per command (the plan and the cgroup set-up both ask, and
    mountinfo is long on hosts with many mounts)."""
    if _HIERARCHIES:
        return list(_HIERARCHIES[0])
    res = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f.read().decode().splitlines():
            pre, _, post = line.partition(" - ")
            fields = pre.split(" ")
            fstype, _src, sopts = (post.split(" ") + ["", "", ""])[:3]
            if fstype in ("cgroup", "cgroup2"):
                res.append((fstype, unescape(fields[4]), sopts))
    _HIERARCHIES.append(res)
    return list(res)


def mounts_at(path):
    """[(mount id, parent id)] of the mounts whose mount point is `path`, in
    mountinfo order (read now: mounts come and go while a command runs)."""
    out = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            fields = line.split(b" ", 5)
            if len(fields) > 4 and unescape(fields[4].decode(errors="surrogateescape")) == path:
                out.append((int(fields[0]), int(fields[1])))
    return out


def own_cgroup_paths():
    """{controller-set: path} of the runtime's own groups (/proc/self/cgroup;
    "" is the cgroup2 one)."""
    res = {}
    with open("/proc/self/cgroup", "rb") as f:
        for line in f.read().decode().splitlines():
            _hid, ctrls, path = line.split(":", 2)
            res[ctrls] = path
    return res


def controller_dir(cg, ctrl):
    """The directory holding ctrl's files for the cgroup described by `cg`
    ({"version", "paths": {hierarchy mountpoint: dir}}), or None when the
    controller is not available (not mounted on v1, not enabled on v2)."""
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


def freezer_file(version, paths):
    """The freezer file of a cgroup given as {hierarchy mountpoint: dir}:
    cgroup.freeze on v2, freezer.state under the v1 freezer hierarchy; None
    when it has no freezer."""
    if version == 2:
        return os.path.join(next(iter(paths.values())), "cgroup.freeze")
    for mp, path in paths.items():
        if os.path.basename(mp) == "freezer":
            return os.path.join(path, "freezer.state")
    return None


def cgroup_frozen(version, paths):
    """Whether that cgroup is frozen (v1 FREEZING counts, as runc); the same
    rule as the C front-end's frozen() in csrc/front/record.c."""
    p = freezer_file(version, paths)
    v = read(p) if p else None
    if v is None:
        return False
    v = v.strip()
    return v == "1" if version == 2 else v in ("FROZEN", "FREEZING")


def cap_last_cap(known):
    """The highest capability number the kernel knows; `known` (the number
    of capabilities ocirun knows by name) minus one when it cannot be read."""
    try:
        return int(read("/proc/sys/kernel/cap_last_cap"))
    except (TypeError, ValueError):
        return known - 1


def own_bounding_set():
    """The runtime's own capability bounding set (all bits when unknown)."""
    for line in (read("/proc/self/status") or "").splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split()[1], 16)
    return (1 << 64) - 1


def apparmor_enabled():
    return (read("/sys/module/apparmor/parameters/enabled") or "").strip() == "Y"


def selinux_enabled():
    return os.path.exists("/sys/fs/selinux/enforce")


def intel_rdt_available():
    return os.path.isdir("/sys/fs/resctrl/info")


def systemd_running():
    """systemd is PID 1 and manages units (sd_booted(3))."""
    return os.path.isdir("/run/systemd/system")
