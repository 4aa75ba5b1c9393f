"""cgroups: where a container's cgroup lives and its lifecycle (create, join,
freeze, thaw, kill, remove, stats) on v1 and v2.

A driver places a new container's cgroup (Driver.resolve) and gives back the
object for a stored one (Driver.load); the Cgroup object does the rest.  The
cgroupfs driver is here; the systemd driver (--systemd-cgroup) is the second
implementation of the same interface, in systemd.py (a transient scope per
container; its description carries a "systemd" entry and load() gives its
class).
The driver is passed in by the caller, never set globally.

A container's cgroup description is a plain dict stored in its state:
    {"version": 1|2, "paths": {hierarchy-mountpoint: absolute dir},
     "made": [dirs ocirun created, deepest first], "resources": {...}}
so later commands need no host probing and no --systemd-cgroup flag.
Path rules follow runc's cgroupfs driver: an absolute linux.cgroupsPath is
taken under each hierarchy's root; a relative one (or the container id when
none is given) under the runtime's own cgroup.

The module-level functions taking a description are the interface the verbs
use today; each is one line over the object.
"""

import os
import time

from ocirun import host
from ocirun.errors import CgroupError, strerror
from ocirun.host import controller_dir, read as _read, write as _write  # noqa: F401  (the package's names)

ROOT = "/sys/fs/cgroup"

# cgroup v1 mount options that are not controllers
_V1_OPTIONS = {"rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode", "favordynmods",
               "nofavordynmods", "none", "all"}


def hierarchies(root=ROOT):
    """{mountpoint: controllers-string} of cgroup hierarchies under root, and
    the version in use (2 when root itself is cgroup2)."""
    found = {}
    unified = None
    version = 1
    for fstype, mp, sopts in host.cgroup_hierarchies():
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


def _check_type(cgroups_path):
    if cgroups_path is not None and not isinstance(cgroups_path, str):
        raise CgroupError("linux.cgroupsPath: must be a string")


def _check_path(cgroups_path, cid):
    """linux.cgroupsPath (or the id) as cgroupfs path components."""
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
    return inner, parts


class Driver:
    """Where containers' cgroups are made.  resolve() describes a new
    container's cgroup (nothing is created yet) or returns None on a host
    without cgroups; load() gives the object for a stored description."""

    name = ""

    def resolve(self, cgroups_path, cid, root=ROOT):
        raise NotImplementedError

    def load(self, desc):
        return load(desc) if desc else None


class Cgroupfs(Driver):
    """runc's cgroupfs driver: directories under each hierarchy."""

    name = "cgroupfs"

    def resolve(self, cgroups_path, cid, root=ROOT):
        _check_type(cgroups_path)
        hier, version = hierarchies(root)
        if not hier:
            return None
        inner, parts = _check_path(cgroups_path, cid)
        own = host.own_cgroup_paths()
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
        return Cgroup({"version": version, "paths": paths, "made": made})


def rootless_resolve(cgroups_path, cid, root=ROOT):
    """A rootless container's cgroup (runc's rootless cgroupfs on v2): only
    where the caller may make one, i.e. in a delegated cgroup2 subtree, else
    None (no cgroup: cgroup v1, or nothing delegated).  As runc, a relative
    path is placed next to the caller's own group, not in it (that one holds
    processes).  Delegated means: the first existing directory on the way is
    the caller's to write, and so is cgroup.procs of the closest group the
    caller's and the container's share (the kernel's rule for moving a
    process between them).  Device rules are left out (the caller cannot
    load a device program; a user namespace cannot make device nodes)."""
    if cgroups_path is not None and not isinstance(cgroups_path, str):
        return None
    hier, version = hierarchies(root)
    if version != 2 or not hier:
        return None
    try:
        inner, parts = _check_path(cgroups_path, cid)
    except CgroupError:
        return None
    own = os.path.normpath(root + host.own_cgroup_paths().get("", "/"))
    base = root if inner.startswith("/") else os.path.dirname(own)
    path = os.path.normpath(base + "/" + "/".join(parts))
    if not path.startswith(root + "/"):
        return None
    made = []
    d = path
    while d != root and not os.path.isdir(d):
        made.append(d)
        d = os.path.dirname(d)
    common = os.path.commonpath([own, path])
    if d == root or not os.access(d, os.W_OK) or not os.access(os.path.join(common, "cgroup.procs"), os.W_OK):
        return None
    if not made and not os.access(os.path.join(path, "cgroup.procs"), os.W_OK):
        return None
    return {"version": 2, "paths": {root: path}, "made": made, "rootless": True}


class Systemd(Driver):
    """runc's systemd driver: a transient scope per container, started with
    the init's pid in it (systemd.py has the names, the properties and the
    D-Bus calls)."""

    name = "systemd"

    def resolve(self, cgroups_path, cid, root=ROOT, annotations=None):
        from ocirun.cgroups import systemd as S

        if not host.systemd_running():
            raise CgroupError("systemd cgroup flag passed, but systemd support for managing cgroups is not "
                              "available")
        slice_, unit = S.parse_path(cgroups_path, cid)
        props = S.annotation_props(annotations)
        hier, version = hierarchies(root)
        if not hier:
            raise CgroupError(f"--systemd-cgroup: no cgroup hierarchy is mounted under {root}")
        init = S.init_paths()
        sub = S.expand_slice(slice_) + "/" + unit
        paths = {}
        for mp, ctrls in hier.items():
            # runc's getSubsystemPath: PID 1's group (init.scope stripped),
            # the slice, the unit
            paths[mp] = os.path.normpath(mp + init.get(ctrls if version == 1 else "", "/") + "/" + sub)
        return SystemdCgroup({"version": version, "paths": paths,
                              "made": sorted(set(paths.values()), key=len, reverse=True),
                              "systemd": {"unit": unit, "slice": slice_, "props": props, "started": False}})


def driver(systemd=False):
    """The driver for the global --systemd-cgroup flag."""
    return Systemd() if systemd else Cgroupfs()


def resolve(cgroups_path, cid, root=ROOT, driver=None, annotations=None):
    """The cgroup description for a new container (nothing is created);
    annotations: the config's, for the systemd driver's
    org.systemd.property.* ones."""
    d = driver or Cgroupfs()
    cg = d.resolve(cgroups_path, cid, root, annotations) if d.name == "systemd" else d.resolve(cgroups_path, cid, root)
    return cg.desc if cg else None


def load(desc):
    """The Cgroup object for a stored description: a systemd-managed one
    (its description says so) gets the systemd driver's class."""
    return SystemdCgroup(desc) if desc and "systemd" in desc else Cgroup(desc)


class Cgroup:
    """One container's cgroup.  `desc` is its description (the dict kept in
    the state); the object adds no state of its own."""

    def __init__(self, desc):
        self.desc = desc

    @property
    def version(self):
        return self.desc["version"]

    @property
    def paths(self):
        return self.desc["paths"]

    def controller_dir(self, ctrl):
        """The directory holding ctrl's files, or None when the controller is
        not available (not mounted on v1, not enabled on v2)."""
        return controller_dir(self.desc, ctrl)

    # --- creation and limits ---------------------------------------------

    def create(self):
        """mkdir every path, after checking that a group which exists already is
        empty (runc >= 1.2 refuses to share one); refuses a frozen group, which
        would hang the init.  On error, what was made here is removed again."""
        mine = []
        try:
            for mp, path in self.paths.items():
                if os.path.isdir(path) and path not in self.desc.get("made", ()):
                    n = _procs_in(path)
                    if n:
                        raise CgroupError(f"linux.cgroupsPath: container's cgroup is not empty: {n} process(es) "
                                          f"found in {path}")
            for mp, path in self.paths.items():
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
                if self.version == 2:
                    _enable_controllers(mp, path)
                if self.version == 1 and os.path.exists(os.path.join(mp, "cpuset.cpus")):
                    _copy_cpuset(path, mp)
            if self.is_frozen() or (self.version == 2 and _v2_effectively_frozen(next(iter(self.paths.values())))):
                raise CgroupError("container's cgroup unexpectedly frozen")
        except (OSError, CgroupError) as e:
            for d in mine:
                try:
                    os.rmdir(d)
                except OSError:
                    pass
            if isinstance(e, CgroupError):
                raise
            raise CgroupError(f"creating cgroup {e.filename}: {strerror(e.errno)}") from None
        return mine

    def apply(self, resources, device_paths=()):
        """Validate linux.resources completely, then write it; the normalised
        object is kept in desc["resources"] (persisted with the state).
        device_paths: the paths of linux.devices (see devices.DEFAULT_DEVICE_RULES)."""
        from ocirun.cgroups import resources as R

        # an absent linux.resources still gets the device rules (deny by default)
        res = R.normalize(resources or {})
        R.apply_writes(R.compile(self.desc, res, device_paths=device_paths))
        self.desc["resources"] = res

    def update(self, resources):
        """Merge `resources` into what the container has, validate the result,
        write it; returns the new persisted resources object."""
        from ocirun.cgroups import resources as R

        new = R.normalize(resources)
        merged = R.normalize(R.merge(self.desc.get("resources"), new))
        nm = new.get("memory", {})
        if nm.get("limit") == -1 and not nm.get("swap") and merged.get("memory", {}).get("swap"):
            # --memory -1 without --memory-swap: swap becomes unlimited too (runc),
            # else the kept memsw limit would sit below an unlimited memory limit
            merged["memory"]["swap"] = -1
        # like runc's update, everything is written again (the kernel keeps
        # unchanged values); device rules are never touched
        R.apply_writes(R.compile(self.desc, merged, update=True))
        return merged

    def add_pid(self, pid):
        for path in self.paths.values():
            try:
                _write(os.path.join(path, "cgroup.procs"), str(pid))
            except OSError as e:
                raise CgroupError(f"adding pid {pid} to cgroup {path}: {strerror(e.errno)}") from None

    def pids(self):
        """Host pids in the container's cgroup and its sub-cgroups (from the
        first hierarchy that has the group)."""
        for path in self.paths.values():
            if not os.path.isdir(path):
                continue
            res = []
            for d, _dirs, _files in os.walk(path):
                data = _read(os.path.join(d, "cgroup.procs"))
                if data:
                    res.extend(int(x) for x in data.split())
            return res
        return []

    def stats(self):
        """The `events --stats` data (runc's types.Stats)."""
        from ocirun.cgroups import stats

        return stats.collect(self.desc)

    # --- freezer ----------------------------------------------------------

    def freezer_file(self):
        """freezer.state (v1) or cgroup.freeze (v2); None without a freezer."""
        return host.freezer_file(self.version, self.paths)

    def is_frozen(self):
        return host.cgroup_frozen(self.version, self.paths)

    def freeze(self):
        self._set_frozen(True)

    def thaw(self, wait=True):
        """Thaw; wait=False only asks (kill of a paused container: the
        SIGKILL is on its way, nothing to wait for) and ignores failure."""
        if wait:
            self._set_frozen(False)
            return
        p = self.freezer_file()
        if p:
            try:
                _write(p, "0" if self.version == 2 else "THAWED")
            except OSError:
                pass

    def _set_frozen(self, frozen):
        """Freeze or thaw, waiting until the kernel reports the transition done
        (v1 FREEZING can take a while when tasks are in uninterruptible sleep)."""
        p = self.freezer_file()
        if not p:
            raise CgroupError("cannot pause: the freezer cgroup controller is not available")
        v2 = self.version == 2
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

    # --- the end ------------------------------------------------------------

    def kill(self, sig):
        """Signal every process of the cgroup; SIGKILL uses cgroup.kill on v2
        (no pid can escape by forking), elsewhere the group is frozen around the
        signalling so no new process appears in between."""
        if sig == 9 and self.version == 2:
            kp = os.path.join(next(iter(self.paths.values())), "cgroup.kill")
            if os.path.exists(kp):
                try:
                    _write(kp, "1")
                    return
                except OSError:
                    pass
        frozen_before = self.is_frozen()
        fz = self.freezer_file()
        can_freeze = fz is not None and os.path.exists(fz)
        if can_freeze and not frozen_before:
            try:
                self.freeze()
            except (OSError, CgroupError):
                can_freeze = False
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if can_freeze and (not frozen_before or sig == 9):
                try:
                    self.thaw()
                except (OSError, CgroupError):
                    pass

    def made_dirs(self):
        """What ocirun created for this container, deepest first (a state from
        before the list was kept: the container's own directories)."""
        if "made" in self.desc:
            return list(self.desc["made"])
        return list(self.paths.values())

    def remove(self, timeout=5.0):
        """Remove what ocirun made: the container's own directories with every
        sub-group its processes made (depth first, retrying while dying
        processes still hold them), then the parents it created, each only if
        nothing else lives in it by now.  A group that existed before is left.
        Raises CgroupError naming the first directory that could not go."""
        from ocirun import _lifecycle

        # csrc/core/lifecycle.c:lc_remove_made, the front-end's delete too; a
        # hierarchy's root is never the container's; a state from before
        # "made" was kept: its own directories, whole (made_dirs, state.py's
        # record gives the front-end the same)
        made = [p for p in self.made_dirs() if p not in self.paths]
        r = _lifecycle.remove_made(made, list(self.paths.values()), timeout)
        if r:
            raise CgroupError(f"removing cgroup {r[1]}: {strerror(r[0])}")


class SystemdCgroup(Cgroup):
    """A container's cgroup under its systemd unit.  Nothing exists before
    the init's pid is known: the unit is started with it (add_pid, during
    the SETUP exchange), then the limits are written to its files."""

    @property
    def unit(self):
        return self.desc["systemd"]["unit"]

    def create(self):
        """Refuses a group of that path holding processes, as cgroupfs does."""
        for path in self.paths.values():
            if os.path.isdir(path):
                n = _procs_in(path)
                if n:
                    raise CgroupError(f"linux.cgroupsPath: container's cgroup is not empty: {n} process(es) found "
                                      f"in {path} (unit {self.unit})")
        return []

    def apply(self, resources, device_paths=()):
        """Validated now; the properties go into StartTransientUnit and the
        files are written once the unit exists (add_pid)."""
        from ocirun.cgroups import resources as R, systemd as S

        res = R.normalize(resources or {})
        S.resource_props(res, self.version, 999)  # conversion errors before anything exists
        self.desc["resources"] = res
        self.desc["systemd"]["pending"] = [p for p in device_paths if isinstance(p, str)]

    def add_pid(self, pid):
        sd = self.desc["systemd"]
        if sd.get("started"):
            return super().add_pid(pid)
        from ocirun import log
        from ocirun.cgroups import devices, resources as R, systemd as S

        res = self.desc.get("resources") or {}
        pending = sd.get("pending") or []
        S.start_unit(self.desc, pid, devices.effective_rules(res.get("devices", []), pending),
                     warn=log.warning, debug=log.debug)
        # systemd made the groups of the controllers it manages (all of them
        # on v2); on v1 the others are made here and joined (runc's joinCgroups)
        for mp, path in self.paths.items():
            try:
                os.makedirs(path, 0o755, exist_ok=True)
                if self.version == 1 and os.path.exists(os.path.join(mp, "cpuset.cpus")):
                    _copy_cpuset(path, mp)
                _write(os.path.join(path, "cgroup.procs"), str(pid))
            except OSError as e:
                raise CgroupError(f"unit {self.unit}: joining {path}: {strerror(e.errno)}") from None
        R.apply_writes(R.compile(self.desc, res, device_paths=pending))
        sd.pop("pending", None)

    def update(self, resources):
        """What systemd owns through SetUnitProperties first, as runc does;
        then every file, by the cgroupfs code."""
        from ocirun.cgroups import resources as R, systemd as S

        S.set_properties(self.desc, R.normalize(R.merge(self.desc.get("resources"), R.normalize(resources))))
        return super().update(resources)

    def remove(self, timeout=5.0):
        """StopUnit (systemd kills what is left in the scope and removes its
        group), then whatever is still there (v1 groups of controllers
        systemd does not manage, sub-groups an older systemd leaves).  An
        unreachable systemd is reported after the groups are removed."""
        from ocirun.cgroups import systemd as S

        err = None
        if self.desc["systemd"].get("started", True):
            # never a unit this container did not start (a name taken by
            # another one made StartTransientUnit fail)
            try:
                S.stop_unit(self.desc)
            except CgroupError as e:
                err = e
        try:
            super().remove(timeout)
        except CgroupError as e:
            err = err or e
        if err:
            raise err


def _enable_controllers(mp, path):
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


def _v2_effectively_frozen(path):
    """cgroup.freeze holds the group's own setting; a frozen ancestor freezes
    it too, which only cgroup.events' "frozen" line says."""
    for line in (_read(os.path.join(path, "cgroup.events")) or "").splitlines():
        if line.split() == ["frozen", "1"]:
            return True
    return False


# --- the description-based interface the verbs call today (one line each) ---

def create(cg):
    return load(cg).create()


def apply(cg, resources, device_paths=()):
    return load(cg).apply(resources, device_paths) if cg else None


def update(cg, resources):
    return load(cg).update(resources)


def add_pid(cg, pid):
    return load(cg).add_pid(pid)


def pids(cg):
    return load(cg).pids() if cg else []


def is_frozen(cg):
    return load(cg).is_frozen() if cg else False


def freeze(cg, frozen=True):
    return load(cg)._set_frozen(frozen)


def signal_all(cg, sig):
    return load(cg).kill(sig) if cg else None


def remove(cg, timeout=5.0):
    return load(cg).remove(timeout) if cg else None


