"""Container state on disk: <root>/<id>/state.json (+ exec.fifo while created).

state.json is written atomically (temp file + rename) under an flock of the
container directory.  Status is derived on every call, as runc does: no pid or
a pid whose start time differs (pid reuse) -> stopped; frozen -> paused;
exec.fifo present -> created; else running.

The rules about a container's process and directories (id grammar, start
time, never-executed, status, removal of the state directory) are written
once, in C (csrc/core/lifecycle.c), shared with the front-end, and reached
through the ocirun._lifecycle extension.
"""

import os

from ocirun import host
from ocirun.errors import ContainerExists, ContainerNotFound, OcirunError, strerror

STATE_FILE = "state.json"
FIFO = "exec.fifo"
# What the C front-end (csrc/front) reads to answer state/start/kill/delete
# without starting an interpreter; see fast_record().
FAST_FILE = "fast"
FAST_MAGIC = "ocirun-fast 2"


class StateCorrupt(OcirunError):
    """state.json cannot be parsed or does not have the shape we write."""


def _want(ok, field):
    if not ok:
        raise ValueError(field)


def _cgroup_root(path, version):
    """/sys/fs/cgroup, or on v1 /sys/fs/cgroup/<controllers>."""
    rest = path[len("/sys/fs/cgroup"):].strip("/") if (path + "/").startswith("/sys/fs/cgroup/") else None
    return rest is not None and (not rest or (version == 1 and "/" not in rest))


def check_state(st, cid):
    """The shape Store.write gives state.json, checked field by field before
    anything acts on it: a tampered or truncated file must not steer `delete`
    at another process or cgroup (a path outside the hierarchy, the root
    cgroup), and must not end a command in a traceback."""
    _want(isinstance(st, dict), "the top level")
    _want(st.get("id") == cid, "id")
    pid = st.get("pid", 0)
    _want(isinstance(pid, int) and not isinstance(pid, bool) and 0 <= pid < 2**31, "pid")
    t = st.get("start_time")
    _want(t is None or (isinstance(t, int) and not isinstance(t, bool) and t >= 0), "start_time")
    for k in ("bundle", "rootfs", "created", "ociVersion", "config"):
        _want(isinstance(st.get(k, ""), str), k)
    ann = st.get("annotations", {})
    _want(isinstance(ann, dict) and all(isinstance(v, str) for v in ann.values()), "annotations")
    _want(isinstance(st.get("ns", []), list), "ns")
    cg = st.get("cgroup")
    if cg is not None:
        _want(isinstance(cg, dict) and cg.get("version") in (1, 2) and isinstance(cg.get("paths"), dict)
              and cg["paths"], "cgroup")
        for mp, path in cg["paths"].items():
            # never a hierarchy's root (delete kills what is in it), never
            # anything but a normalised absolute path
            _want(isinstance(path, str) and path.startswith("/") and os.path.normpath(path) == path
                  and path != mp and not _cgroup_root(path, cg["version"]) and "\n" not in path, "cgroup.paths")
    hooks = st.get("hooks", {})
    _want(isinstance(hooks, dict), "hooks")
    for phase, lst in hooks.items():
        _want(isinstance(lst, list), f"hooks.{phase}")
        for h in lst:
            _want(isinstance(h, dict) and isinstance(h.get("path"), str)
                  and all(isinstance(a, str) for a in h.get("args") or [])
                  and all(isinstance(e, str) for e in h.get("env") or [])
                  and (h.get("timeout") is None or isinstance(h["timeout"], int)), f"hooks.{phase}")
    return st


def validate_id(cid):
    """runc's rule: [A-Za-z0-9_+.-]{1,1024}, not '.' or '..'."""
    from ocirun import _lifecycle as _lc

    if not isinstance(cid, str) or not _lc.valid_id(cid):
        raise OcirunError("invalid container ID format")
    return cid


def proc_stat(pid):
    """The fields of /proc/<pid>/stat after the command name (state, ppid,
    …), or None when the process is gone."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data[data.rfind(b")") + 2:].split() or None


def pid_start_time(pid):
    """Field 22 of /proc/<pid>/stat, or None if gone or a zombie."""
    from ocirun import _lifecycle as _lc

    t = _lc.pid_start_time(pid)
    return None if t < 0 else t


def never_executed(pid, start_time=None):
    """True when the process (running or a zombie, of this start time unless
    None: a child not reaped yet) has made no execve since it was cloned
    (PF_FORKNOEXEC): an init that died before running the program.  False
    when it did, or when it is gone (it can no longer be told)."""
    from ocirun import _lifecycle as _lc

    return _lc.never_executed(pid, -1 if start_time is None else start_time)


class Store:
    def __init__(self, root):
        self.root = root

    def dir(self, cid):
        return os.path.join(self.root, cid)

    def ensure_root(self):
        try:
            os.mkdir(self.root, 0o700)
        except FileExistsError:
            pass
        except FileNotFoundError:
            try:
                os.makedirs(self.root, 0o700, exist_ok=True)
            except OSError as e:
                raise OcirunError(f"mkdir {e.filename or self.root}: {strerror(e.errno)}") from None
        except OSError as e:
            raise OcirunError(f"mkdir {self.root}: {strerror(e.errno)}") from None

    def create_dir(self, cid):
        """Make <root>/<id> (O_EXCL semantics) and return a locked fd of it."""
        self.ensure_root()
        path = self.dir(cid)
        try:
            os.mkdir(path, 0o711)
        except FileExistsError:
            raise ContainerExists("container with given ID already exists") from None
        except OSError as e:
            raise OcirunError(f"mkdir {path}: {strerror(e.errno)}") from None
        return self.lock(cid)

    def lock(self, cid, missing_ok=False):
        import fcntl

        try:
            fd = os.open(self.dir(cid), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            if missing_ok:
                return None
            raise ContainerNotFound("container does not exist") from None
        except OSError as e:
            raise OcirunError(f"open {self.dir(cid)}: {strerror(e.errno)}") from None
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def _replace(self, cid, name, data):
        d = self.dir(cid)
        tmp = os.path.join(d, "." + name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(d, name))

    def write(self, cid, state):
        """state.json, and the front-end's record of the same state (written
        first: a record never claims less than state.json; without one the
        front-end hands the command to Python)."""
        from ocirun.jsonutil import dumps

        rec = fast_record(state)
        if rec is None:
            try:
                os.unlink(os.path.join(self.dir(cid), FAST_FILE))
            except FileNotFoundError:
                pass
        else:
            self._replace(cid, FAST_FILE, rec)
        self._replace(cid, STATE_FILE, dumps(state).encode())

    def write_file(self, cid, name, data):
        """A private copy of something the container was created with."""
        fd = os.open(os.path.join(self.dir(cid), name), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def read_file(self, cid, name):
        fd = os.open(os.path.join(self.dir(cid), name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            chunks = []
            while True:
                b = os.read(fd, 1 << 20)
                if not b:
                    return b"".join(chunks)
                chunks.append(b)
        finally:
            os.close(fd)

    def read(self, cid):
        from ocirun.jsonutil import JSONError, loads

        try:
            fd = os.open(os.path.join(self.dir(cid), STATE_FILE), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ContainerNotFound("container does not exist") from None
        try:
            data = os.read(fd, 1 << 22)
        finally:
            os.close(fd)
        try:
            return check_state(loads(data), cid)
        except JSONError as e:
            raise StateCorrupt(f"state of container {cid} is corrupt: {e}") from None
        except ValueError as e:
            raise StateCorrupt(f"state of container {cid} is corrupt: bad {e}") from None

    def remove(self, cid):
        """The container's directory as a whole, whatever a crash left in it
        (symlinks removed, never followed; nothing on another file system
        entered).  Best effort, as before: what cannot go stays."""
        from ocirun import _lifecycle as _lc

        _lc.remove_dir(self.dir(cid))

    def ids(self):
        try:
            return sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []


def status(store, st):
    """Derive created/running/paused/stopped for a state dict."""
    from ocirun import _lifecycle as _lc

    pid = st.get("pid") or 0
    start = st.get("start_time")
    if pid <= 0 or start is None:
        return "stopped"
    # frozen first, as runc: a paused never-started container is "paused"
    cg = st.get("cgroup")
    return _lc.status(pid, start, host.freezer_file(cg["version"], cg["paths"]) if cg else None,
                      cg["version"] if cg else 0, os.path.join(store.dir(st["id"]), FIFO))


def oci_state(st, status_, pid, owner=None):
    """The one builder of the OCI state object, from a state dict (or
    anything with its keys: ociVersion, id, bundle, annotations, rootfs,
    created).  Without `owner`: runtime-spec's State, what hooks, the
    seccomp agent and in-container hooks get (runc's specs.State key order).
    With `owner`: what `state` and `list` print (runc's key order, rootfs,
    created and owner included)."""
    if owner is None:
        out = {"ociVersion": st.get("ociVersion", ""), "id": st["id"], "status": status_, "pid": pid,
               "bundle": st.get("bundle", "")}
        if st.get("annotations"):
            out["annotations"] = st["annotations"]
        return out
    out = {
        "ociVersion": st.get("ociVersion", ""),
        "id": st["id"],
        "pid": pid,
        "status": status_,
        "bundle": st.get("bundle", ""),
        "rootfs": st.get("rootfs", ""),
        "created": st.get("created", ""),
    }
    if st.get("annotations"):
        out["annotations"] = st["annotations"]
    out["owner"] = owner
    return out


def public_state(store, st, owner=""):
    """The OCI state object as runc prints it (key order included)."""
    s = status(store, st)
    return oci_state(st, s, 0 if s == "stopped" else st.get("pid", 0), owner)


_PID_STATUS = '\n  "pid": 0,\n  "status": "\\u0000"'


def fast_record(st):
    """The state as the C front-end reads it: `key value` lines (values never
    hold a newline, else no record is written and Python answers), then the
    `state` output pre-rendered in two pieces around pid and status:

        ocirun-fast 1
        pid 1234
        start 5678              start time of the pid (- when unknown)
        freeze <file>           freezer.state (v1) / cgroup.freeze (v2), or -
        cgv 1|2|0
        cg <dir>                one line per cgroup directory, in order
        made <dir>              what ocirun created, deepest first: a cg dir
                                goes with its sub-groups, a parent only if empty
        pidns 1|0               whether the container has a pid namespace of
                                its own (killing its init ends it all)
        py start delete         commands this container leaves to Python
        head <n>                then n bytes: output up to the pid
        tail <n>                then n bytes: output after the status
    """
    from ocirun.jsonutil import dumps_indent

    cg = st.get("cgroup")
    hooks = st.get("hooks") or {}
    py = []
    if hooks.get("poststart") or hooks.get("startContainer"):
        py.append("start")
    if hooks.get("poststop") or st.get("host_mounts_before") is not None:
        py.append("delete")  # poststop hooks; mounts in our namespace to detach
    elif cg and "systemd" in cg:
        py.append("delete")  # the unit is stopped over D-Bus
    start = st.get("start_time")
    lines = [FAST_MAGIC, f"pid {int(st.get('pid') or 0)}", f"start {'-' if start is None else int(start)}",
             f"freeze {(host.freezer_file(cg['version'], cg['paths']) if cg else None) or '-'}",
             f"cgv {cg['version'] if cg else 0}"]
    lines += [f"cg {p}" for p in (cg["paths"].values() if cg else ())]
    # a state from before "made" was kept: the container's own directories
    lines += [f"made {p}" for p in ((cg["made"] if "made" in cg else cg["paths"].values()) if cg else ())]
    lines.append(f"pidns {1 if 'pid' in (st.get('ns') or ()) else 0}")
    lines.append("py " + " ".join(py))
    if any("\n" in x for x in lines):
        return None
    # the `state` output (oci_state) cut around its pid and status, which the
    # front-end fills in: JSON escapes every newline inside a string, so the
    # cut can only fall on the document's own structure
    text = dumps_indent(oci_state(st, "\0", 0, owner=""))
    head, _, tail = text.partition(_PID_STATUS)
    head = (head + '\n  "pid": ').encode()
    tail = ('"' + tail).encode()
    out = ("\n".join(lines) + "\n").encode()
    return out + b"head %d\n" % len(head) + head + b"\ntail %d\n" % len(tail) + tail + b"\n"
