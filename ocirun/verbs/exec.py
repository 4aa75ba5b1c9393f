"""`exec`: a new process in a running (or created) container.

The process joins every namespace of the container's init at once through
setns(pidfd) (the pidfd is taken after checking the init's start time, so a
recycled pid is never joined), the init's cgroup, and gets the container's
seccomp profile; it is a child of this process (CLONE_PARENT), as with runc.
"""

import os

from ocirun import log
from ocirun.errors import OcirunError, StateError, strerror
from ocirun.state import oci_state, pid_start_time, status, validate_id
from ocirun.tables import NAMESPACES, NS_PROC_NAME


class ExecError(OcirunError):
    status = 255


def parse_user(text):
    """-u UID[:GID], numeric only (G13)."""
    uid, sep, gid = text.partition(":")
    if not uid.isdigit() or (sep and not gid.isdigit()):
        raise ExecError(f"exec failed: invalid --user {text!r}: must be UID[:GID] with numeric ids")
    return int(uid), (int(gid) if sep else None)


def process_from_flags(cfg, opts, args):
    """runc's newProcess: the container's process, overridden by the flags."""
    import copy

    base = copy.deepcopy(cfg.get("process") or {})
    proc = {
        "terminal": bool(opts["tty"]),
        "args": list(args),
        "env": list(base.get("env") or []) + list(opts["env"]),
        "cwd": opts["cwd"] or base.get("cwd") or "/",
        "user": dict(base.get("user") or {"uid": 0, "gid": 0}),
        "noNewPrivileges": bool(base.get("noNewPrivileges")) or bool(opts["no_new_privs"]),
        "rlimits": base.get("rlimits") or [],
    }
    # without --cap the container's own sets apply (plan.build_exec); --cap
    # adds to them, to none at all when the config has none (runc)
    caps = base.get("capabilities")
    if caps is not None or opts["cap"]:
        caps = copy.deepcopy(caps) if isinstance(caps, dict) else {}
        sets = ("bounding", "effective", "permitted") + (("ambient",) if caps.get("inheritable") is not None else ())
        for c in opts["cap"]:
            for k in sets:
                caps.setdefault(k, [])
                if c not in caps[k]:
                    caps[k].append(c)
        proc["capabilities"] = caps
    if opts["user"]:
        uid, gid = parse_user(opts["user"])
        proc["user"]["uid"] = uid
        if gid is not None:
            proc["user"]["gid"] = gid
    if opts["additional_gids"]:
        try:
            proc["user"]["additionalGids"] = [int(g) for g in opts["additional_gids"]]
        except ValueError:
            raise ExecError("exec failed: --additional-gids must be numeric") from None
    if opts["apparmor"] or base.get("apparmorProfile"):
        proc["apparmorProfile"] = opts["apparmor"] or base.get("apparmorProfile")
    if opts["process_label"] or base.get("selinuxLabel"):
        proc["selinuxLabel"] = opts["process_label"] or base.get("selinuxLabel")
    for key in ("consoleSize", "scheduler", "ioPriority", "execCPUAffinity"):
        if base.get(key):
            proc[key] = base[key]
    return proc


def load_process_file(path):
    from ocirun.jsonutil import JSONError, loads

    try:
        with open(path, "rb") as f:
            proc = loads(f.read())
    except OSError as e:
        raise ExecError(f"exec failed: --process {path}: {strerror(e.errno)}") from None
    except JSONError as e:
        raise ExecError(f"exec failed: --process {path}: invalid JSON: {e}") from None
    if not isinstance(proc, dict):
        raise ExecError(f"exec failed: --process {path}: must be a JSON object")
    if not isinstance(proc.get("cwd"), str) or not proc["cwd"].startswith("/"):
        raise ExecError("exec failed: process.cwd: must be a non-empty absolute path")
    if not isinstance(proc.get("args"), list) or not proc["args"]:
        raise ExecError("exec failed: process.args: must not be empty")
    return proc


def _namespace_flags(pid, cfg):
    """CLONE_NEW* flags of the init's namespaces that differ from ours."""
    flags = 0
    for ns in (cfg.get("linux") or {}).get("namespaces") or []:
        t = ns.get("type")
        if t not in NAMESPACES:
            continue
        name = NS_PROC_NAME[t]
        try:
            theirs = os.readlink(f"/proc/{pid}/ns/{name}")
        except (FileNotFoundError, ProcessLookupError):
            raise StateError("cannot exec in a stopped container") from None
        except OSError as e:  # EACCES and the like: say so, not "stopped"
            raise ExecError(f"exec failed: /proc/{pid}/ns/{name}: {strerror(e.errno)}") from None
        if theirs != os.readlink(f"/proc/self/ns/{name}"):
            flags |= NAMESPACES[t]
    return flags


def _sub_cgroup(cg, spec):
    """--cgroup [ctrl[,ctrl]:]PATH: run in an existing sub-cgroup of the
    container's.  The path never leaves the container's group (no `..`, the
    result checked to lie inside it) and every controller named must be one
    the container has (runc: "unknown controller", "bad sub cgroup path")."""
    import copy

    cg = copy.deepcopy(cg)
    ctrls, sep, path = spec.rpartition(":")
    if ":" in ctrls:
        raise ExecError(f"exec failed: invalid --cgroup argument: {spec}")
    if any(p == ".." for p in path.split("/")):
        raise ExecError(f"exec failed: --cgroup {spec}: bad sub cgroup path: {path} (it must stay inside the "
                        "container's cgroup)")
    want = None
    if sep:
        want = set(ctrls.split(","))
        if "" in want:
            raise ExecError(f"exec failed: invalid --cgroup argument: {spec} (empty <controller> prefix)")
        if cg["version"] == 2:
            base = next(iter(cg["paths"].values()))
            known = set((_read_text(os.path.join(base, "cgroup.controllers")) or "").split())
        else:
            known = set()
            for mp in cg["paths"]:
                known |= set(os.path.basename(mp).split(",")) - {"unified"}
            known |= {n[len("name="):] for n in known if n.startswith("name=")}
        for c in sorted(want):
            if c not in known:
                raise ExecError(f"exec failed: --cgroup {spec}: unknown controller {c}")
    for mp, p in list(cg["paths"].items()):
        names = set(os.path.basename(mp).split(","))
        hybrid_unified = cg["version"] == 1 and mp.endswith("/unified")
        if want is not None and not (want & (names | {n[len("name="):] for n in names if n.startswith("name=")})):
            continue
        sub = os.path.normpath(p + "/" + path.strip("/"))
        if sub != p and not sub.startswith(p + "/"):
            raise ExecError(f"exec failed: --cgroup {spec}: bad sub cgroup path: {path}")
        if not os.path.isdir(sub):
            if hybrid_unified:
                continue  # the container's processes made it in the v1 hierarchies only
            raise ExecError(f"exec failed: --cgroup {spec}: {sub} does not exist")
        cg["paths"][mp] = sub
    return cg


def _read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def process_from_config(store, cid, opts, args):
    """The process of `exec <id> <command>`: the container's own process
    (from the config it was created with), overridden by the flags."""
    from ocirun.jsonutil import loads

    validate_id(cid)  # before any path is made of it
    try:
        cfg = loads(store.read_file(cid, "config.json"))
    except OSError:
        store.read(cid)  # "container does not exist"
        cfg = {}
    return process_from_flags(cfg, opts, args)


def exec_process(store, cid, proc, *, detach=False, pid_file=None, console_socket=None, preserve_fds=0,
                 cgroup_spec=None, ignore_paused=False, pidfd_socket=None):
    """Returns the process's exit status (128+N if killed), or 0 with detach."""
    child, master = spawn_process(store, cid, proc, detach=detach, pid_file=pid_file,
                                  console_socket=console_socket, preserve_fds=preserve_fds,
                                  cgroup_spec=cgroup_spec, ignore_paused=ignore_paused, pidfd_socket=pidfd_socket)
    if detach:
        return 0
    return _wait_foreground(child, master)


def spawn_process(store, cid, proc, *, detach=False, pid_file=None, console_socket=None, preserve_fds=0,
                  cgroup_spec=None, ignore_paused=False, pidfd_socket=None, stdio=None):
    """Start the process (a child of this one) and return (pid, the
    terminal's master or None) once its execve happened; `stdio`: its fds
    0, 1, 2 (None: this process's).  The caller waits for it."""
    from ocirun.errors import ConfigError
    from ocirun.jsonutil import loads
    from ocirun.plan import build_exec
    from ocirun.verbs.spawn import Spawner, check_console, harden_fds, joins_cgroup_at_setup

    harden_fds(preserve_fds)
    validate_id(cid)
    st = store.read(cid)
    s = status(store, st)
    if s == "stopped":
        raise ExecError("exec failed: cannot exec in a stopped container")
    if s == "paused" and not ignore_paused:
        raise ExecError("exec failed: cannot exec in a paused container (use --ignore-paused to override)")
    try:
        check_console(detach, bool(proc.get("terminal")), console_socket)
    except OcirunError as e:
        raise ExecError(f"exec failed: {e}") from None
    try:
        cfg = loads(store.read_file(cid, "config.json"))
    except OSError:
        cfg = {}
    pid = st["pid"]
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        raise ExecError("exec failed: cannot exec in a stopped container") from None
    spawner = None
    try:
        if pid_start_time(pid) != st.get("start_time"):
            raise ExecError("exec failed: cannot exec in a stopped container")
        flags = _namespace_flags(pid, cfg)
        cg = st.get("cgroup")
        if cg and cgroup_spec:
            cg = _sub_cgroup(cg, cgroup_spec)
        try:
            plan = build_exec(cfg, proc, flags, preserve_fds=preserve_fds, join_cgroup=joins_cgroup_at_setup(cg))
        except ConfigError as e:
            raise ExecError(f"exec failed: {e}") from None
        for w in plan.warnings:
            log.warning(w)
        spawner = Spawner(plan, cgroup=cg, console_socket=console_socket, pid_file=pid_file,
                          pidfd_socket=pidfd_socket, pidfd_kind=b"setns", what=f"exec {cid}")

        def on_seccomp(fd, child_pid):
            from ocirun import launch

            # runc 1.1 (setnsProcess): the container's state as "running"
            # with the init's pid; the process is the exec'd one
            launch.send_seccomp_listener(plan.seccomp.listener_path, fd, oci_state(st, "running", pid),
                                         plan.seccomp.metadata, process_pid=child_pid)

        log.debug(f"exec {cid}: joining the namespaces of pid {pid} (flags {flags:#x})")
        try:
            child = spawner.start(fifo_fd=pidfd, preserve_fds=preserve_fds,
                                  on_seccomp=on_seccomp if plan.seccomp and plan.seccomp.notify else None,
                                  stdio=stdio)
        except OcirunError as e:
            raise ExecError(f"exec failed: {e}") from None
        log.debug(f"exec {cid}: process is pid {child}")
    except BaseException:
        if spawner is not None:
            spawner.abort()
        raise
    finally:
        os.close(pidfd)
    err = spawner.execve_failure(child)
    spawner.close_sync()
    if err:
        _reap(child)
        spawner.sp.init_pid = 0  # reaped: never signal that pid again
        spawner.abort()
        raise ExecError(f"exec failed: {err}")
    spawner.publish(child)
    return child, spawner.terminal.master


def _reap(pid):
    from ocirun import procs

    try:
        procs.waitpid(pid)
    except ChildProcessError:
        pass


def _wait_foreground(pid, master):
    from ocirun.foreground import SignalForwarder, wait_status

    with SignalForwarder() as fwd:
        fwd.set_target(pid)
        return wait_status(pid, master)
