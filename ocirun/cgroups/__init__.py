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

# set by the CLI from the global --systemd-cgroup flag (create/run only; later
# commands read the driver from the state)
SYSTEMD = False


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


# cgroup v1 mount options that are not controllers
_V1_OPTIONS = {"rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode", "favordynmods",
               "nofavordynmods", "none", "all"}


def hierarchies(root=ROOT):
    """{mountpoint: controllers-string} of cgroup hierarchies under root, and
    the version in use (2 when root itself is cgroup2)."""
    from ocirun.plan import cgroup_hierarchies

    found = {}
    unified = None
    version = 1
    for fstype, mp, sopts in cgroup_hierarchies():
        if fstype == "cgroup2" and mp == root:
            return {root: ""}, 2
        if fstype == "cgroup" and mp.startswith(root + "/"):
            # the hierarchy's name as /proc/<pid>/cgroup spells it: its
            # controllers and name=, not the mount's other options (xattr,
            # clone_children, noprefix, release_agent=… on systemd hosts)
            found[mp] = ",".join(o for o in sopts.split(",")
                                 if o.startswith("name=") or ("=" not in o and o not in _V1_OPTIONS))
        elif fstype == "cgroup2" and mp.startswith(root + "/") and "/" not in mp[len(root) + 1:]:
            unified = mp
    if found and unified:
        # a hybrid host: the container joins the cgroup2 hierarchy's group of
        # the same path too (as runc does); it holds no controller but is
        # what /proc/<pid>/cgroup's "0::" line and systemd look at
        found[unified] = ""
    return found, version


def resolve(cgroups_path, cid, root=ROOT):
    """The cgroup description for a new container (nothing is created)."""
    from ocirun.plan import own_cgroup_paths

    if SYSTEMD:
        _systemd_check(cgroups_path)
    if cgroups_path is not None and not isinstance(cgroups_path, str):
        raise CgroupError("linux.cgroupsPath: must be a string")
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
    if not parts:
        raise CgroupError(f"linux.cgroupsPath: {inner!r} names an existing group of the host (the root, or the "
                          "runtime's own); a container needs a group of its own")
    own = own_cgroup_paths()
    paths = {}
    made = []
    for mp, ctrls in hier.items():
        if inner.startswith("/"):
            base = ""
        else:
            base = own.get(ctrls if version == 1 else "", "/")
            if version == 1 and ctrls.startswith("name="):
                base = own.get(ctrls, "/")
        path = paths[mp] = os.path.normpath(mp + base + "/" + "/".join(parts))
        # the directories create() will make, deepest first: only these are
        # ever removed (a group or parent that existed before is the host's)
        d = path
        while d != mp and d.startswith(mp + "/") and not os.path.isdir(d):
            made.append(d)
            d = os.path.dirname(d)
    return {"version": version, "paths": paths, "made": made}


def _systemd_check(cgroups_path):
    """The systemd driver needs a running systemd to create the scope unit."""
    if not os.path.isdir("/run/systemd/system"):
        raise CgroupError("systemd cgroup flag passed, but systemd support for managing cgroups is not available")
    if cgroups_path:
        parts = cgroups_path.split(":")
        if len(parts) != 3 or "/" in cgroups_path:
            raise CgroupError(f'expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, '
                              f'got "{cgroups_path}" instead')
        if parts[0] and not parts[0].endswith(".slice"):
            raise CgroupError(f'linux.cgroupsPath: invalid slice name "{parts[0]}" (must end in .slice)')
    raise CgroupError("--systemd-cgroup: the systemd cgroup driver is not implemented yet; "
                      "use the cgroupfs driver (no --systemd-cgroup)")


def controller_dir(cg, ctrl):
    """The directory holding ctrl's files for this container, or None when
    the controller is not available (not mounted on v1, not enabled on v2)."""
    if not cg:
        return None
    if cg["version"] == 2:
        path = next(iter(cg["paths"].values()))
        if ctrl == "cgroup":
            return path
        avail = _read(os.path.join(path, "cgroup.controllers"))
        return path if avail is not None and ctrl in avail.split() else None
    for mp, path in cg["paths"].items():
        if ctrl in os.path.basename(mp).split(","):
            return path
    return None


def _enable_controllers(cg, mp, path):
    """v2: a controller's files appear in a group only once every ancestor
    lists it in cgroup.subtree_control.  Best effort, as runc: a level that
    holds processes refuses (no internal processes)."""
    avail = (_read(os.path.join(mp, "cgroup.controllers")) or "").split()
    if not avail:
        return
    cur = mp
    rel = [p for p in path[len(mp):].split("/") if p]
    for part in rel:
        ctl = os.path.join(cur, "cgroup.subtree_control")
        have = (_read(ctl) or "").split()
        want = [c for c in (_read(os.path.join(cur, "cgroup.controllers")) or "").split() if c not in have]
        if want:
            try:
                _write(ctl, " ".join("+" + c for c in want))
            except OSError:
                for c in want:
                    try:
                        _write(ctl, "+" + c)
                    except OSError:
                        pass
        cur = os.path.join(cur, part)


def apply(cg, resources, device_paths=()):
    """Validate linux.resources completely, then write it; the normalised
    object is kept in cg["resources"] (persisted with the state).
    device_paths: the paths of linux.devices (see DEFAULT_DEVICE_RULES)."""
    if not cg:
        return
    from ocirun.cgroups import resources as R

    # an absent linux.resources still gets the device rules (deny by default)
    res = R.normalize(resources or {})
    w = R.compile(cg, res, device_paths=device_paths)
    R.apply_writes(w)
    cg["resources"] = res


def update(cg, resources):
    """Merge `resources` into what the container has, validate the result,
    write it; returns the new persisted resources object."""
    from ocirun.cgroups import resources as R

    new = R.normalize(resources)
    merged = R.normalize(R.merge(cg.get("resources"), new))
    nm = new.get("memory", {})
    if nm.get("limit") == -1 and not nm.get("swap") and merged.get("memory", {}).get("swap"):
        # --memory -1 without --memory-swap: swap becomes unlimited too (runc),
        # else the kept memsw limit would sit below an unlimited memory limit
        merged["memory"]["swap"] = -1
    # like runc's update, everything is written again (the kernel keeps
    # unchanged values); device rules are never touched
    R.apply_writes(R.compile(cg, merged, update=True))
    return merged


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


def _procs_in(path):
    n = 0
    for d, _dirs, _files in os.walk(path):
        data = _read(os.path.join(d, "cgroup.procs"))
        if data:
            n += len(data.split())
    return n


def create(cg):
    """mkdir every path, after checking that a group which exists already is
    empty (runc >= 1.2 refuses to share one); refuses a frozen group, which
    would hang the init.  On error, what was made here is removed again."""
    mine = []
    try:
        for mp, path in cg["paths"].items():
            if os.path.isdir(path) and path not in cg.get("made", ()):
                n = _procs_in(path)
                if n:
                    raise CgroupError(f"linux.cgroupsPath: container's cgroup is not empty: {n} process(es) "
                                      f"found in {path}")
        for mp, path in cg["paths"].items():
            chain = []
            d = path
            while d != mp and d.startswith(mp + "/") and not os.path.isdir(d):
                chain.append(d)
                d = os.path.dirname(d)
            for d in reversed(chain):
                try:
                    os.mkdir(d, 0o755)
                    mine.insert(0, d)
                except FileExistsError:
                    pass
            if cg["version"] == 2:
                _enable_controllers(cg, mp, path)
            if cg["version"] == 1 and os.path.exists(os.path.join(mp, "cpuset.cpus")):
                _copy_cpuset(path, mp)
        if is_frozen(cg) or (cg["version"] == 2 and _v2_effectively_frozen(next(iter(cg["paths"].values())))):
            raise CgroupError("container's cgroup unexpectedly frozen")
    except (OSError, CgroupError) as e:
        for d in mine:
            try:
                os.rmdir(d)
            except OSError:
                pass
        if isinstance(e, CgroupError):
            raise
        raise CgroupError(f"creating cgroup {e.filename}: {os.strerror(e.errno).lower()}") from None
    return mine


def add_pid(cg, pid):
    from ocirun import front

    try:
        for path in cg["paths"].values():
            try:
                _write(os.path.join(path, "cgroup.procs"), str(pid))
            except OSError as e:
                raise CgroupError(f"adding pid {pid} to cgroup {path}: {os.strerror(e.errno).lower()}") from None
    finally:
        front.stop_primer()  # the migration it pre-paid for is done


def pids(cg):
    """Host pids in the container's cgroup and its sub-cgroups (from the
    first hierarchy that has the group)."""
    if not cg:
        return []
    for path in cg["paths"].values():
        if not os.path.isdir(path):
            continue
        res = []
        for d, _dirs, _files in os.walk(path):
            data = _read(os.path.join(d, "cgroup.procs"))
            if data:
                res.extend(int(x) for x in data.split())
        return res
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


def _v2_effectively_frozen(path):
    """cgroup.freeze holds the group's own setting; a frozen ancestor freezes
    it too, which only cgroup.events' "frozen" line says."""
    for line in (_read(os.path.join(path, "cgroup.events")) or "").splitlines():
        if line.split() == ["frozen", "1"]:
            return True
    return False


def is_frozen(cg):
    p = _freezer_path(cg)
    if not p:
        return False
    v = _read(p)
    if v is None:
        return False
    v = v.strip()
    return v == "1" if cg["version"] == 2 else v in ("FROZEN", "FREEZING")


def freeze(cg, frozen=True):
    """Freeze or thaw, waiting until the kernel reports the transition done
    (v1 FREEZING can take a while when tasks are in uninterruptible sleep)."""
    p = _freezer_path(cg)
    if not p:
        raise CgroupError("cannot pause: the freezer cgroup controller is not available")
    v2 = cg["version"] == 2
    _write(p, ("1" if frozen else "0") if v2 else ("FROZEN" if frozen else "THAWED"))
    delay = 0.001
    deadline = time.monotonic() + 10
    while True:
        if v2:
            ev = _read(os.path.join(os.path.dirname(p), "cgroup.events")) or ""
            done = f"frozen {1 if frozen else 0}" in ev
        else:
            st = (_read(p) or "").strip()
            done = st == ("FROZEN" if frozen else "THAWED")
            if frozen and st == "FREEZING" and delay >= 0.05:
                _write(p, "FROZEN")  # nudge, as runc does, for tasks that raced in
        if done:
            return
        if time.monotonic() > deadline:
            if frozen:
                try:
                    _write(p, "0" if v2 else "THAWED")
                except OSError:
                    pass
            raise CgroupError(f"unable to {'freeze' if frozen else 'thaw'} the container's cgroup")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def signal_all(cg, sig):
    """Signal every process of the cgroup; SIGKILL uses cgroup.kill on v2
    (no pid can escape by forking), elsewhere the group is frozen around the
    signalling so no new process appears in between."""
    if not cg:
        return
    if sig == 9 and cg["version"] == 2:
        path = next(iter(cg["paths"].values()))
        kp = os.path.join(path, "cgroup.kill")
        if os.path.exists(kp):
            try:
                _write(kp, "1")
                return
            except OSError:
                pass
    frozen_before = is_frozen(cg)
    can_freeze = _freezer_path(cg) is not None and os.path.exists(_freezer_path(cg))
    if can_freeze and not frozen_before:
        try:
            freeze(cg, True)
        except (OSError, CgroupError):
            can_freeze = False
    try:
        for pid in pids(cg):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    finally:
        if can_freeze and (not frozen_before or sig == 9):
            try:
                freeze(cg, False)
            except (OSError, CgroupError):
                pass


def made_dirs(cg):
    """What ocirun created for this container, deepest first (a state from
    before the list was kept: the container's own directories)."""
    if "made" in cg:
        return list(cg["made"])
    return list(cg["paths"].values())


def remove(cg, timeout=5.0):
    """Remove what ocirun made: the container's own directories with every
    sub-group its processes made (depth first, retrying while dying
    processes still hold them), then the parents it created, each only if
    nothing else lives in it by now.  A group that existed before is left.
    Raises CgroupError naming the first directory that could not go."""
    if not cg:
        return
    deadline = time.monotonic() + timeout
    own = set(cg["paths"].values())
    err = None
    legacy = "made" not in cg  # a state written before ownership was recorded
    for path in made_dirs(cg):
        if path in cg["paths"]:
            continue  # a hierarchy's root is never the container's
        if legacy:
            e = _rmdir_retry(path, deadline)
            if e:
                err = err or e
        elif path in own:
            subs = [d for d, _dirs, _f in os.walk(path, topdown=False)] or [path]
            for d in subs:
                e = _rmdir_retry(d, deadline)
                if e:
                    err = err or e
                    break
        else:
            try:
                os.rmdir(path)
            except OSError:
                pass  # ENOENT, or in use by another group now: not ours to take
    if err:
        raise CgroupError(err)


def _rmdir_retry(path, deadline):
    delay = 0.001
    while True:
        try:
            os.rmdir(path)
            return None
        except FileNotFoundError:
            return None
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() > deadline:
                return f"removing cgroup {path}: {os.strerror(e.errno).lower()}"
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
