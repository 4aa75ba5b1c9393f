"""config.json -> plan: the one place the OCI spec is interpreted.

All validation happens here, before any process exists, and every error names
the config field.  The result is a flat binary plan (proto.PlanWriter) that
the C init executes without parsing, plus the few facts the Python side needs
(id maps, terminal, hooks, annotations).  Pure apart from reading host facts
(ocirun.host: mountinfo, cap_last_cap ...) when the config needs them.
"""

import os

from ocirun import config as C
from ocirun import host
from ocirun import proto as P
from ocirun import tables as T
from ocirun.errors import ConfigError

DEFAULT_DEVICES = [
    ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
    ("/dev/tty", 5, 0), ("/dev/random", 1, 8), ("/dev/urandom", 1, 9),
]
# G7: the only mounts allowed below /proc (lxcfs and friends)
PROC_ALLOWED = {
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
    "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
}
IPC_SYSCTLS = {
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
    "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
}
U64_MAX = (1 << 64) - 1
# what the C init takes (csrc/init/init.h MAX_ITEMS, MAX_MOUNTS; plan.c): more
# is a limit on user input, reported on the field, not an internal error
MAX_ITEMS = 4096
MAX_MOUNTS = 1024 - 1  # one is kept for the runtime's own bind (NOTIFY_SOCKET)
MAX_RLIMITS = 64
MAX_GIDS = 65536
MAX_HOOKS = 64  # createContainer + startContainer
MAX_HOOK_ITEMS = 256


class Plan:
    def __init__(self):
        self.w = P.PlanWriter()
        self.oci_version = ""
        self.rootfs = ""
        self.annotations = {}
        self.terminal = False
        self.uid_map = None
        self.gid_map = None
        self.host_root = (0, 0)
        self.ns_new = set()
        self.ns_paths = {}
        self.hooks = {}
        self.warnings = []
        self.setup_sync = False
        self.hook_sync = False
        self.env = []
        self.rlimits = []
        self.seccomp = None
        self.idmap_mounts = []  # (mount record number, source, recursive bits, uid_map, gid_map)
        self.net_devices = []  # [(host name, name in the container)], linux.netDevices
        self.mount_ns = True  # False: the container shares the runtime's mount namespace (chroot only)

    def rlimit_name(self, index):
        return self.rlimits[index] if 0 <= index < len(self.rlimits) else f"rlimit {index}"

    def blob(self):
        return self.w.finish()


# the typed accessors (ocirun.config): each names the field on error
_obj, _list, _str, _int, _bool = C.obj, C.array, C.string, C.integer, C.boolean


def _semver_ident(s, numeric):
    return bool(s) and s.isascii() and all(c.isalnum() or c == "-" for c in s) and (
        not numeric or not s.isdigit() or s == "0" or s[0] != "0")


def is_semver(v):
    """SemVer 2.0.0 (https://semver.org), without the `re` module (start-up
    cost): MAJOR.MINOR.PATCH[-pre.release][+build]."""
    core, _, build = v.partition("+")
    if "+" in v and not all(_semver_ident(x, False) for x in build.split(".")):
        return False
    core, _, pre = core.partition("-")
    if "-" in v.partition("+")[0] and not all(_semver_ident(x, True) for x in pre.split(".")):
        return False
    nums = core.split(".")
    return len(nums) == 3 and all(n.isascii() and n.isdigit() and (n == "0" or n[0] != "0") for n in nums)


def clean_path(p):
    """Lexically clean an absolute container path; '..' cannot climb above '/'."""
    out = []
    for part in p.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        out.append(part)
    return "/" + "/".join(out)


def _abs_path(v, field):
    v = _str(v, field, required=True)
    if not v:
        raise ConfigError(f"{field}: must not be empty")
    return clean_path(v if v.startswith("/") else "/" + v)




# --- the builder -----------------------------------------------------------

def build(cfg, bundle, *, no_pivot=False, no_new_keyring=False, preserve_fds=0,
          extra_env=(), console_socket=False, cgroup=None, join_cgroup=False, runtime_binds=()):
    """Validate config.json (a dict) and compile it into a final plan (no
    record is added after this returns).  Raises ConfigError.
    cgroup: the container's cgroup description (cgroups.resolve), if any.
    join_cgroup: the parent moves the bootstrap into it during the SETUP
    exchange (cgroup v1; on v2 the init is born in it).
    runtime_binds: [(source, destination)] read-only binds the runtime adds
    on top of the config's mounts (the NOTIFY_SOCKET directory)."""
    plan = Plan()
    plan.cgroup = cgroup
    w = plan.w
    plan.oci_version = _str(cfg.get("ociVersion"), "ociVersion", required=True)
    if not is_semver(plan.oci_version):
        raise ConfigError(f"ociVersion: {plan.oci_version!r} is not a SemVer 2.0.0 version")
    ann = _obj(cfg.get("annotations"), "annotations")
    for k, v in ann.items():
        _str(v, f"annotations.{k}")
    plan.annotations = ann

    root = _obj(cfg.get("root"), "root")
    rpath = _str(root.get("path"), "root.path", required=True)
    rootfs = os.path.realpath(os.path.join(bundle, rpath))
    if not os.path.isdir(rootfs):
        try:
            os.stat(rootfs)
        except (FileNotFoundError, NotADirectoryError):
            pass
        except OSError as e:  # EACCES: say so
            from ocirun.errors import strerror

            raise ConfigError(f"root.path: rootfs ({rootfs}): {strerror(e.errno)}") from None
        raise ConfigError(f"root.path: rootfs ({rootfs}) does not exist or is not a directory")
    plan.rootfs = rootfs

    linux = _obj(cfg.get("linux"), "linux")
    _str(linux.get("cgroupsPath"), "linux.cgroupsPath")  # "/" and the like: cgroups.resolve refuses them
    if _str(linux.get("mountLabel"), "linux.mountLabel") and not host.selinux_enabled():
        raise ConfigError("linux.mountLabel: selinux mount label is specified, but selinux is disabled or "
                          "not supported on this host")
    if linux.get("intelRdt") is not None and not host.intel_rdt_available():
        raise ConfigError("linux.intelRdt: Intel RDT is not available on this host (no resctrl filesystem)")
    _namespaces(plan, linux)
    plan.mount_ns = "mount" in plan.ns_new or "mount" in plan.ns_paths
    if not plan.mount_ns:
        _without_mount_namespace(plan, cfg, linux, root, no_pivot)
    _id_maps(plan, linux)

    proc = cfg.get("process")
    if proc is None:
        raise ConfigError("process: is required to create a container")
    proc = _obj(proc, "process")

    # order matters only within a record type; the C side keeps its own order
    ns_flags = 0
    for t in plan.ns_new:
        ns_flags |= T.NAMESPACES[t]
    w.u64(P.R_NS_NEW, ns_flags)
    for i, (t, path) in enumerate(plan.ns_paths.items()):
        w.rec(P.R_NS_JOIN, P.REC_NS_JOIN.pack(T.NAMESPACES[t], i) + P.cstr(path))
    plan.setup_sync = "user" in plan.ns_new
    if plan.setup_sync:
        w.flag(P.R_SETUP_SYNC)
    if no_new_keyring:
        w.flag(P.R_NO_NEW_KEYRING)
    if "network" in plan.ns_new:
        w.flag(P.R_LOOPBACK)
    _memory_policy(plan, linux)
    if linux.get("netDevices") is not None:
        from ocirun import netdev

        plan.net_devices = netdev.parse(linux, "network" in plan.ns_new or "network" in plan.ns_paths)
        if plan.net_devices:
            w.flag(P.R_NETLINK)

    oom = _int(proc.get("oomScoreAdj"), "process.oomScoreAdj", -1000, 1000)
    if oom is not None:
        w.rec(P.R_OOM, P.REC_S32.pack(oom))

    offs = _obj(linux.get("timeOffsets"), "linux.timeOffsets")
    if offs:
        if "time" not in plan.ns_new:
            raise ConfigError("linux.timeOffsets: requires a new time namespace")
        lines = []
        for clock, v in offs.items():
            if clock not in ("monotonic", "boottime"):
                raise ConfigError(f"linux.timeOffsets.{clock}: unknown clock")
            v = _obj(v, f"linux.timeOffsets.{clock}")
            secs = _int(v.get("secs", 0), f"linux.timeOffsets.{clock}.secs")
            ns = _int(v.get("nanosecs", 0), f"linux.timeOffsets.{clock}.nanosecs", 0, 999999999)
            lines.append(f"{clock} {secs} {ns}\n")
        w.str(P.R_TIMENS, "".join(lines))

    w.str(P.R_ROOTFS, rootfs)
    if _bool(root.get("readonly"), "root.readonly"):
        w.flag(P.R_ROOT_RO)
    prop = _str(linux.get("rootfsPropagation"), "linux.rootfsPropagation")
    if prop:
        if prop not in T.PROPAGATION:
            raise ConfigError(f"linux.rootfsPropagation: unknown propagation {prop!r}")
        w.u64(P.R_ROOTPROP, T.PROPAGATION[prop])
    if no_pivot and plan.mount_ns:
        w.flag(P.R_NO_PIVOT)

    dev_bound = _mounts(plan, cfg, bundle)
    _devices(plan, linux, dev_bound)
    for i, p in enumerate(_list(linux.get("readonlyPaths"), "linux.readonlyPaths", MAX_ITEMS)):
        w.str(P.R_RO_PATH, _abs_path(p, f"linux.readonlyPaths[{i}]"))
    for i, p in enumerate(_list(linux.get("maskedPaths"), "linux.maskedPaths", MAX_ITEMS)):
        w.str(P.R_MASK, _abs_path(p, f"linux.maskedPaths[{i}]"))
    _sysctls(plan, linux, cfg)

    for key in ("hostname", "domainname"):
        v = _str(cfg.get(key), key)
        if v:
            if "uts" not in plan.ns_new and "uts" not in plan.ns_paths:
                raise ConfigError(f"{key}: unable to set {key} without a private UTS namespace")
            w.str(P.R_HOSTNAME if key == "hostname" else P.R_DOMAINNAME, v)

    # runc 1.1: without process.user.umask the init gets 0022, never the
    # caller's (exec keeps the caller's, as runc's does)
    _process(plan, proc, extra_env, console_socket, default_umask=0o022)
    if preserve_fds:
        w.rec(P.R_PRESERVE, P.REC_U32.pack(preserve_fds))

    plan.hooks = _hooks(plan, _obj(cfg.get("hooks"), "hooks"))
    sc = linux.get("seccomp")
    if sc is not None:
        from ocirun.seccomp import compile_profile

        plan.seccomp = compile_profile(sc)
        w.rec(P.R_SECCOMP, P.REC_SECCOMP.pack(plan.seccomp.flags, 0) + plan.seccomp.bpf)
    pers = linux.get("personality")
    if pers is not None:
        pers = _obj(pers, "linux.personality")
        dom = _str(pers.get("domain"), "linux.personality.domain", required=True)
        if dom not in T.PERSONALITY:
            raise ConfigError(f"linux.personality.domain: unknown domain {dom!r}")
        if pers.get("flags"):
            raise ConfigError("linux.personality.flags: no flags are supported (as in runc)")
        w.rec(P.R_PERSONALITY, P.REC_U32.pack(T.PERSONALITY[dom]))
    _finish(plan, join_cgroup)
    for source, dest in runtime_binds:
        add_runtime_bind(plan, source, dest)
    return plan


def _finish(plan, join_cgroup):
    """What build and build_exec end with: the SETUP exchange when the parent
    must act before the bootstrap goes on (id maps, idmapped mounts, the
    cgroup join)."""
    if join_cgroup and not plan.setup_sync:
        plan.setup_sync = True
        plan.w.flag(P.R_SETUP_SYNC)


def _without_mount_namespace(plan, cfg, linux, root, no_pivot):
    """No `mount` namespace: as runc, the container shares the runtime's.
    The init bind-mounts the rootfs on itself there (private), makes the
    config's mounts below that bind, and chroots into it; the mounts are in
    the host's mount table while the container exists and are detached at
    delete.  Masked and read-only paths are refused, with runc's words; a
    user namespace could not mount in the host's namespace at all."""
    for key in ("maskedPaths", "readonlyPaths"):
        if _list(linux.get(key), f"linux.{key}"):
            raise ConfigError(f"linux.{key}: unable to restrict sys entries without a private MNT namespace")
    if "user" in plan.ns_new or "user" in plan.ns_paths:
        raise ConfigError("linux.namespaces: a user namespace needs a mount namespace too (the rootfs and the "
                          "mounts would be made in the host's mount namespace)")
    if no_pivot:
        plan.warnings.append("--no-pivot has no effect without a mount namespace: the container is chrooted")


def _hooks(plan, hooks):
    """Validate every hook; compile the in-container ones into the plan."""
    out = {}
    for phase, entries in hooks.items():
        if phase not in T.HOOK_PHASES:
            raise ConfigError(f"hooks.{phase}: unknown hook phase")
        lst = []
        for i, h in enumerate(_list(entries, f"hooks.{phase}")):
            f = f"hooks.{phase}[{i}]"
            h = _obj(h, f)
            path = _str(h.get("path"), f + ".path", required=True)
            if not path.startswith("/"):
                raise ConfigError(f"{f}.path: must be an absolute path")
            args = [_str(a, f"{f}.args[{j}]") for j, a in enumerate(_list(h.get("args"), f + ".args"))]
            env = [_str(e, f"{f}.env[{j}]") for j, e in enumerate(_list(h.get("env"), f + ".env"))]
            if h.get("env") is None:
                # no env: the runtime's environment for the hooks it runs
                # itself (None), the process's for those in the container
                # (what runc's init has)
                env = None if phase in ("prestart", "createRuntime", "poststart", "poststop") else list(plan.env)
            timeout = _int(h.get("timeout"), f + ".timeout", 1, 2**31 - 1)
            if phase in ("prestart", "createRuntime", "poststart", "poststop"):
                _must_exist(path, f"{f}.path")
            lst.append({"path": path, "args": args, "env": env, "timeout": timeout})
            if phase in ("createContainer", "startContainer"):
                _hook_limits(f, args, env, plan)
                ph = P.HOOK_CREATE_CONTAINER if phase == "createContainer" else P.HOOK_START_CONTAINER
                payload = P.REC_HOOK.pack(ph, i, timeout or 0, len(args), len(env), 0) + P.cstr(path)
                payload += b"".join(P.cstr(a) for a in args) + b"".join(P.cstr(e) for e in env)
                plan.w.rec(P.R_HOOK, payload)
        if lst:
            out[phase] = lst
    if any(out.get(k) for k in ("prestart", "createRuntime", "createContainer", "startContainer")):
        plan.hook_sync = True
        plan.w.flag(P.R_HOOK_SYNC)
    return out


def _must_exist(path, field):
    """stat(path), reporting the real errno: an existence check
    (os.path.exists) says "no such file or directory" for a path the caller
    may not search (EACCES), which callers then misread."""
    try:
        os.stat(path)
    except OSError as e:
        from ocirun.errors import strerror

        raise ConfigError(f"{field}: {path}: {strerror(e.errno)}") from None


def _hook_limits(f, args, env, plan):
    """What the C init takes for the hooks it runs in the container."""
    for key, v in (("args", args), ("env", env)):
        if len(v) > MAX_HOOK_ITEMS:
            raise ConfigError(f"{f}.{key}: {len(v)} entries, more than the {MAX_HOOK_ITEMS} the runtime supports")
    plan.in_container_hooks = getattr(plan, "in_container_hooks", 0) + 1
    if plan.in_container_hooks > MAX_HOOKS:
        raise ConfigError(f"{f}: more than the {MAX_HOOKS} createContainer and startContainer hooks the runtime "
                          "supports")


def _namespaces(plan, linux):
    for i, ns in enumerate(_list(linux.get("namespaces"), "linux.namespaces")):
        ns = _obj(ns, f"linux.namespaces[{i}]")
        t = _str(ns.get("type"), f"linux.namespaces[{i}].type", required=True)
        if t not in T.NAMESPACES:
            raise ConfigError(f"linux.namespaces[{i}].type: unknown namespace type {t!r}")
        if t in plan.ns_new or t in plan.ns_paths:
            raise ConfigError(f"linux.namespaces[{i}]: duplicate namespace type {t!r}")
        path = _str(ns.get("path"), f"linux.namespaces[{i}].path")
        if path:
            _must_exist(path, f"linux.namespaces[{i}].path")
            plan.ns_paths[t] = path
        else:
            plan.ns_new.add(t)


def _parse_id_map(entries, field):
    """uidMappings/gidMappings -> [(containerID, hostID, size)]."""
    lines = []
    for i, m in enumerate(_list(entries, field)):
        f = f"{field}[{i}]"
        m = _obj(m, f)
        c = _int(m.get("containerID"), f + ".containerID", 0, 2**32 - 1, required=True)
        h = _int(m.get("hostID"), f + ".hostID", 0, 2**32 - 1, required=True)
        s = _int(m.get("size"), f + ".size", 1, 2**32 - 1, required=True)
        lines.append((c, h, s))
    return lines


def _id_maps(plan, linux):
    maps = {key: _parse_id_map(linux.get(key), f"linux.{key}") for key in ("uidMappings", "gidMappings")}
    user = "user" in plan.ns_new
    if (maps["uidMappings"] or maps["gidMappings"]) and not user:
        if "user" not in plan.ns_paths:
            raise ConfigError("linux.uidMappings: user namespace mappings require a new user namespace")
    if user:
        if not maps["uidMappings"] or not maps["gidMappings"]:
            raise ConfigError("linux.uidMappings: a new user namespace needs uidMappings and gidMappings")
        plan.uid_map = "".join(f"{c} {h} {s}\n" for c, h, s in maps["uidMappings"])
        plan.gid_map = "".join(f"{c} {h} {s}\n" for c, h, s in maps["gidMappings"])

        def host(lines, cid):
            for c, h, s in lines:
                if c <= cid < c + s:
                    return h + cid - c
            return None

        ru, rg = host(maps["uidMappings"], 0), host(maps["gidMappings"], 0)
        plan.host_root = (ru if ru is not None else 65534, rg if rg is not None else 65534)


def _parse_options(opts, field):
    flags = clear = 0
    prop = 0
    aset = aclr = 0
    data = []
    ext = set()
    for j, o in enumerate(_list(opts, field)):
        o = _str(o, f"{field}[{j}]")
        if o in T.MOUNT_FLAGS:
            c, f = T.MOUNT_FLAGS[o]
            if c:
                flags &= ~f
                clear |= f
            else:
                flags |= f
                clear &= ~f
        elif o in T.PROPAGATION:
            prop = T.PROPAGATION[o]
        elif o in T.RECURSIVE_ATTRS:
            c, a = T.RECURSIVE_ATTRS[o]
            if o in T.RECURSIVE_ATIME:
                aclr |= T.MOUNT_ATTR__ATIME
            if c:
                aclr |= a
                aset &= ~a
            else:
                aset |= a
        elif o in T.EXTENSION_OPTIONS:
            ext.add(o)
        elif o in ("idmap", "ridmap"):
            ext.add(o)
        else:
            data.append(o)
    return flags, prop, aset, aclr, data, ext


def _mount_rec(w, kind, index, flags, prop, aset, aclr, source, dest, fstype, data):
    rec_prop = prop & T.MS_REC
    pflags = flags & ~(T.MS_BIND | T.MS_REC | T.MS_REMOUNT)
    if kind == P.MK_BIND and flags & T.MS_REC:
        pflags |= P.MNT_REC_BIND
    if rec_prop:
        pflags |= P.MNT_REC_PROP
    if getattr(w, "nmounts", 0) >= MAX_MOUNTS and index != 0xFFFF:
        raise ConfigError(f"mounts[{index}]: more than the {MAX_MOUNTS} mounts the runtime supports "
                          "(a cgroup mount counts once per hierarchy)")
    payload = P.REC_MOUNT.pack(kind, index, pflags, prop & ~T.MS_REC, aset, aclr)
    w.rec(P.R_MOUNT, payload + P.cstr(source) + P.cstr(dest) + P.cstr(fstype) + P.cstr(data))
    w.nmounts = getattr(w, "nmounts", 0) + 1
    return w.nmounts - 1


def _mounts(plan, cfg, bundle):
    """Returns True when /dev is bind-mounted (then no device nodes are made)."""
    w = plan.w
    dev_bound = False
    for i, m in enumerate(_list(cfg.get("mounts"), "mounts")):
        f = f"mounts[{i}]"
        m = _obj(m, f)
        dest = _abs_path(m.get("destination"), f + ".destination")
        mtype = _str(m.get("type"), f + ".type") or ""
        source = _str(m.get("source"), f + ".source") or ""
        flags, prop, aset, aclr, data, ext = _parse_options(m.get("options"), f + ".options")
        idmap = _mount_idmap(plan, m, f, ext)
        if dest.startswith("/proc/") and dest not in PROC_ALLOWED:
            raise ConfigError(f"{f}.destination: {dest} cannot be mounted under /proc")
        is_bind = mtype == "bind" or flags & T.MS_BIND
        if flags & T.MS_REMOUNT:
            raise ConfigError(f"{f}.options: remount is not supported")
        if is_bind:
            if not source:
                raise ConfigError(f"{f}.source: a bind mount needs a source")
            if not source.startswith("/"):
                source = os.path.join(bundle, source)
            _must_exist(source, f"{f}.source")
            if dest == "/dev":
                dev_bound = True
            xflags = flags | (P.MNT_SRC_PROC if dest == "/proc" else 0)
            if idmap:
                xflags |= P.MNT_IDMAP
            n = _mount_rec(w, P.MK_BIND, i, xflags, prop, aset, aclr, source, dest, "", "")
            if idmap:
                rec = (1 if flags & T.MS_REC else 0) | (2 if "ridmap" in ext else 0)
                plan.idmap_mounts.append((n, source, rec, idmap[0], idmap[1]))
                if not plan.setup_sync:
                    plan.setup_sync = True
                    w.flag(P.R_SETUP_SYNC)
            continue
        if idmap:
            raise ConfigError(f"{f}.options: idmap/ridmap are only supported for bind mounts")
        if not mtype:
            raise ConfigError(f"{f}.type: is required for a non-bind mount")
        if mtype == "cgroup":
            _cgroup_mount(plan, i, dest, flags, prop, aset, aclr)
            continue
        sb = [o for o in data if o in T.SB_OPTIONS]
        for o, fl in T.SB_OPTIONS.items():
            if flags & fl:
                sb.append(o)
        xflags = flags
        if mtype in ("proc", "sysfs") or dest in ("/proc", "/sys"):
            xflags |= P.MNT_NOFOLLOW
        if "tmpcopyup" in ext:
            if mtype != "tmpfs":
                raise ConfigError(f"{f}.options: tmpcopyup is only valid for tmpfs")
            xflags |= P.MNT_TMPCOPYUP
        _mount_rec(w, P.MK_FS, i, xflags, prop, aset, aclr, source, dest, mtype,
                   ",".join([o for o in data if o not in T.SB_OPTIONS] + sb))
    return dev_bound


def _mount_idmap(plan, m, f, ext):
    """(uid_map, gid_map) for an idmapped mount: its own mappings, or (None,
    None) for the container's user namespace; False when not idmapped."""
    maps = ["".join(f"{c} {h} {s}\n" for c, h, s in _parse_id_map(m.get(key), f"{f}.{key}"))
            for key in ("uidMappings", "gidMappings")]
    wants = bool(ext & {"idmap", "ridmap"})
    if (maps[0] or maps[1]) and not wants:
        raise ConfigError(f"{f}.uidMappings: mount mappings need the idmap or ridmap option")
    if not wants:
        return False
    if bool(maps[0]) != bool(maps[1]):
        raise ConfigError(f"{f}: an idmapped mount needs both uidMappings and gidMappings")
    if not maps[0]:
        if "user" not in plan.ns_new:
            raise ConfigError(f"{f}.options: idmap without mount mappings needs a new user namespace")
        return (None, None)
    return (maps[0], maps[1])


def add_runtime_bind(plan, source, dest, readonly=True):
    """A bind mount the runtime adds after the config's own mounts (so it
    lands on top of them), e.g. the NOTIFY_SOCKET directory."""
    flags = T.MS_BIND | T.MS_NOSUID | T.MS_NODEV | T.MS_NOEXEC | (T.MS_RDONLY if readonly else 0)
    _mount_rec(plan.w, P.MK_BIND, 0xFFFF, flags, 0, 0, 0, source, dest, "", "")


def _cgroup_mount(plan, i, dest, flags, prop, aset, aclr):
    """Expand a `cgroup` mount the way runc does: cgroup2 directly on a unified
    host; on v1, a tmpfs with one mount per hierarchy (bind-mounted from the
    host inside a user namespace or without a cgroup namespace)."""
    w = plan.w
    hier = host.cgroup_hierarchies()
    unified = [h for h in hier if h[0] == "cgroup2" and h[1] == "/sys/fs/cgroup"]
    # bind sources: the container's own groups (a container without a cgroup,
    # rootless, gets the runtime's own ones, which are the caller's anyway)
    cgp = (getattr(plan, "cgroup", None) or {}).get("paths") or {}
    own = None if cgp else host.own_cgroup_paths()
    use_ns = "cgroup" in plan.ns_new and "user" not in plan.ns_new
    if unified:
        if "cgroup" in plan.ns_new:
            _mount_rec(w, P.MK_FS, i, flags, prop, aset, aclr, "cgroup2", dest, "cgroup2", "")
        else:
            src = cgp.get("/sys/fs/cgroup") or "/sys/fs/cgroup" + (own or {}).get("", "/")
            _mount_rec(w, P.MK_BIND, i, flags | T.MS_BIND | T.MS_REC, prop, aset, aclr, src, dest, "", "")
        return
    tmp_flags = (flags & ~T.MS_RDONLY) | T.MS_NOSUID | T.MS_NODEV | T.MS_NOEXEC
    _mount_rec(w, P.MK_FS, i, tmp_flags, prop, 0, 0, "tmpfs", dest, "tmpfs", "mode=755")
    for fstype, mp, sopts in hier:
        if fstype != "cgroup" or not mp.startswith("/sys/fs/cgroup/"):
            continue
        name = mp.rsplit("/", 1)[1]
        ctrls = [o for o in sopts.split(",") if o not in ("rw", "ro")]
        key = ",".join(c for c in ctrls)
        sub = dest + "/" + name
        if use_ns:
            _mount_rec(w, P.MK_FS, i, flags, 0, aset, aclr, "cgroup", sub, "cgroup", key)
        else:
            if cgp:
                src = cgp.get(mp)
                if src is None:
                    continue  # a hierarchy the container has no group in
            else:
                path = own.get(key) or own.get(",".join(c for c in ctrls if not c.startswith("name="))) or "/"
                src = mp + path
            _mount_rec(w, P.MK_BIND, i, flags | T.MS_BIND | T.MS_REC, 0, aset, aclr, src, sub, "", "")
        if "," in name:
            for c in name.split(","):
                _mount_rec(w, P.MK_SYMLINK, i, 0, 0, 0, 0, name, dest + "/" + c, "", "")
    if flags & T.MS_RDONLY:
        _mount_rec(w, P.MK_SETATTR, i, T.MS_RDONLY, 0, 0, 0, "", dest, "", "")


def _devices(plan, linux, dev_bound):
    w = plan.w
    user = "user" in plan.ns_new or "user" in plan.ns_paths
    seen = {}
    for i, d in enumerate(_list(linux.get("devices"), "linux.devices", MAX_ITEMS - len(DEFAULT_DEVICES))):
        f = f"linux.devices[{i}]"
        d = _obj(d, f)
        path = _abs_path(d.get("path"), f + ".path")
        t = _str(d.get("type"), f + ".type", required=True)
        if t not in ("c", "b", "u", "p"):
            raise ConfigError(f"{f}.type: unknown device type {t!r}")
        t = "c" if t == "u" else t
        major = _int(d.get("major"), f + ".major", 0, 2**32 - 1, required=t != "p") or 0
        minor = _int(d.get("minor"), f + ".minor", 0, 2**32 - 1, required=t != "p") or 0
        mode = _int(d.get("fileMode"), f + ".fileMode", 0, 0o7777)
        uid = _int(d.get("uid"), f + ".uid", 0, 2**32 - 1) or 0
        gid = _int(d.get("gid"), f + ".gid", 0, 2**32 - 1) or 0
        seen[path] = (t, major, minor, 0o666 if mode is None else mode, uid, gid, i)
    if dev_bound:
        if seen:
            pass  # runc creates configured nodes even on a bound /dev
    else:
        for k, (path, ma, mi) in enumerate(DEFAULT_DEVICES):
            seen.setdefault(path, ("c", ma, mi, 0o666, 0, 0, 1000 + k))
    for path, (t, ma, mi, mode, uid, gid, idx) in seen.items():
        bind = 1 if user and t != "p" else 0
        w.rec(P.R_DEVICE, P.REC_DEVICE.pack(ord(t), ma, mi, mode, uid, gid, bind, idx) + P.cstr(path))
    if not dev_bound:
        w.flag(P.R_DEV_SYMLINKS)


def _sysctls(plan, linux, cfg):
    """runc's rule: each sysctl must belong to a namespace the container has
    of its own.  kernel.hostname is refused outright (the `hostname` field
    sets it); kernel.domainname is what docker uses for --domainname and is
    accepted, unless the `domainname` field (runtime-spec 1.2) says it too."""
    w = plan.w
    ipc = "ipc" in plan.ns_new or "ipc" in plan.ns_paths
    net = "network" in plan.ns_new or "network" in plan.ns_paths
    uts = "uts" in plan.ns_new or "uts" in plan.ns_paths
    for i, (k, v) in enumerate(_obj(linux.get("sysctl"), "linux.sysctl").items()):
        f = f"linux.sysctl.{k}"
        _str(v, f, required=True)
        parts = k.split(".")
        if not k or any(not p for p in parts) or any(
                not all(c.isalnum() or c in "_-" for c in p) for p in parts):
            raise ConfigError(f"{f}: invalid sysctl name")
        if k in IPC_SYSCTLS or k.startswith("fs.mqueue."):
            ok = ipc
        elif k.startswith("net."):
            ok = net
        elif k in ("kernel.hostname", "kernel.domainname"):
            ok = uts
            field = k.split(".")[1]
            if uts and (k == "kernel.hostname" or cfg.get(field)):
                raise ConfigError(f'{f}: sysctl "{k}" is not allowed as it conflicts with the OCI "{field}" field')
        else:
            raise ConfigError(f"{f}: sysctl is not in a separate kernel namespace")
        if not ok:
            raise ConfigError(f"{f}: sysctl is not allowed without its own namespace")
        w.rec(P.R_SYSCTL, P.REC_SYSCTL.pack(i, 0) + P.cstr("/".join(parts)) + P.cstr(v))


def _caps(plan, caps):
    for key in caps:
        if key not in ("bounding", "effective", "permitted", "inheritable", "ambient"):
            raise ConfigError(f"process.capabilities.{key}: unknown capability set")
    last = host.cap_last_cap(len(T.CAPABILITIES))
    masks = {}
    unknown = []
    for key in ("bounding", "effective", "permitted", "inheritable", "ambient"):
        m = 0
        for j, name in enumerate(_list(caps.get(key), f"process.capabilities.{key}")):
            name = _str(name, f"process.capabilities.{key}[{j}]")
            n = T.CAP_NUMBER.get(name.upper() if name.upper().startswith("CAP_") else "CAP_" + name.upper())
            if n is None or n > last:
                if name not in unknown:
                    unknown.append(name)
                continue
            m |= 1 << n
        masks[key] = m
    if unknown:
        plan.warnings.append("ignoring unknown or unavailable capabilities: [" + " ".join(unknown) + "]")
    # capset cannot grant what the runtime itself may not hold.  config.md:
    # such a capability is logged as a warning and the container runs without
    # it (runc 1.1.5 fails on capset's EPERM instead; the spec is followed:
    # the container gets less than asked, never more)
    bnd = host.own_bounding_set()
    wanted = masks["bounding"] | masks["effective"] | masks["permitted"] | masks["inheritable"] | masks["ambient"]
    missing = [T.CAPABILITIES[n] for n in range(len(T.CAPABILITIES)) if wanted >> n & 1 and not bnd >> n & 1]
    if missing:
        plan.warnings.append(f"process.capabilities: {' '.join(missing)} cannot be granted (not in the runtime's "
                             "own bounding set), left out")
        for key in masks:
            masks[key] &= bnd
    plan.w.rec(P.R_CAPS, P.REC_CAPS.pack(masks["bounding"], masks["effective"], masks["permitted"],
                                     masks["inheritable"], masks["ambient"]))


def _process(plan, proc, extra_env, console_socket, default_umask=None):
    w = plan.w
    plan.terminal = _bool(proc.get("terminal"), "process.terminal")
    cs = _obj(proc.get("consoleSize"), "process.consoleSize")
    rows = _int(cs.get("height"), "process.consoleSize.height", 0, 65535) or 0
    cols = _int(cs.get("width"), "process.consoleSize.width", 0, 65535) or 0
    if plan.terminal:
        w.rec(P.R_TERMINAL, P.REC_TERMINAL.pack(rows, cols))
    for j, rl in enumerate(_list(proc.get("rlimits"), "process.rlimits", MAX_RLIMITS)):
        f = f"process.rlimits[{j}]"
        rl = _obj(rl, f)
        t = _str(rl.get("type"), f + ".type", required=True)
        if t not in T.RLIMITS:
            raise ConfigError(f"{f}.type: unknown rlimit {t!r}")
        hard = _int(rl.get("hard"), f + ".hard", 0, U64_MAX, required=True)
        soft = _int(rl.get("soft"), f + ".soft", 0, U64_MAX, required=True)
        plan.rlimits.append(t)
        w.rec(P.R_RLIMIT, P.REC_RLIMIT.pack(T.RLIMITS[t], j, soft, hard))
    user = _obj(proc.get("user"), "process.user")
    uid = _int(user.get("uid", 0), "process.user.uid", 0, 2**32 - 2, required=True)
    gid = _int(user.get("gid", 0), "process.user.gid", 0, 2**32 - 2, required=True)
    umask = _int(user.get("umask"), "process.user.umask", 0, 0o777)
    if umask is None:
        umask = default_umask
    gids = [_int(g, f"process.user.additionalGids[{k}]", 0, 2**32 - 2)
            for k, g in enumerate(_list(user.get("additionalGids"), "process.user.additionalGids", MAX_GIDS))]
    if _str(user.get("username"), "process.user.username"):
        raise ConfigError("process.user.username: is only meaningful on Windows")
    w.rec(P.R_USER, P.REC_USER.pack(uid, gid, -1 if umask is None else umask, len(gids))
          + P.u32_array(gids))
    # absent: all five sets empty (runc); never the runtime's own
    _caps(plan, _obj(proc.get("capabilities"), "process.capabilities"))
    if _bool(proc.get("noNewPrivileges"), "process.noNewPrivileges"):
        w.flag(P.R_NNP)
    cwd = _str(proc.get("cwd"), "process.cwd", required=True)
    if not cwd.startswith("/"):
        raise ConfigError("process.cwd: must be an absolute path")
    w.str(P.R_CWD, clean_path(cwd))
    args = _list(proc.get("args"), "process.args", MAX_ITEMS)
    if not args:
        raise ConfigError("process.args: must not be empty")
    for j, a in enumerate(args):
        w.str(P.R_ARG, _str(a, f"process.args[{j}]"))
    # a name given twice: the last value wins, in the first one's place
    # (runc sets each with os.Setenv); so does exec --env (PATH included,
    # which the init then uses to find args[0])
    byname = {}
    for j, e in enumerate(_list(proc.get("env"), "process.env")):
        e = _str(e, f"process.env[{j}]")
        if "=" not in e:
            raise ConfigError(f"process.env[{j}]: invalid environment variable {e!r}")
        if e.startswith("="):
            raise ConfigError(f"process.env[{j}]: invalid environment variable {e!r}: the name is empty")
        byname[e.split("=", 1)[0]] = e
    for e in extra_env:
        byname[e.split("=", 1)[0]] = e
    env = list(byname.values())
    if len(env) > MAX_ITEMS:
        raise ConfigError(f"process.env: {len(env)} entries, more than the {MAX_ITEMS} the runtime supports")
    plan.env = env
    for e in env:
        w.str(P.R_ENV, e)
    _lsm(plan, proc)
    _scheduling(plan, proc)


_MPOL_NEED_NODES = ("MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE", "MPOL_PREFERRED_MANY")


def _flag_bits(names, field, table):
    """An array of flag names -> the OR of their bits in `table`."""
    bits = 0
    for i, fl in enumerate(_list(names, field)):
        if _str(fl, f"{field}[{i}]") not in table:
            raise ConfigError(f"{field}[{i}]: unknown flag {fl!r}")
        bits |= table[fl]
    return bits


def _memory_policy(plan, linux):
    """linux.memoryPolicy (runtime-spec 1.3): set_mempolicy(2) for the
    container's processes."""
    mp = linux.get("memoryPolicy")
    if mp is None:
        return
    mp = _obj(mp, "linux.memoryPolicy")
    mode = _str(mp.get("mode"), "linux.memoryPolicy.mode", required=True)
    if mode not in T.MPOL_MODES:
        raise ConfigError(f"linux.memoryPolicy.mode: unknown mode {mode!r}")
    value = T.MPOL_MODES[mode] | _flag_bits(mp.get("flags"), "linux.memoryPolicy.flags", T.MPOL_FLAGS)
    nodes = _str(mp.get("nodes"), "linux.memoryPolicy.nodes")
    mask = cpu_mask(nodes, "linux.memoryPolicy.nodes", 1024, "node") if nodes else b""
    if mode in ("MPOL_DEFAULT", "MPOL_LOCAL") and mask:
        raise ConfigError(f"linux.memoryPolicy.nodes: {mode} takes no nodes")
    if mode in _MPOL_NEED_NODES and not mask:
        raise ConfigError(f"linux.memoryPolicy.nodes: {mode} needs at least one node")
    plan.w.rec(P.R_MEMPOLICY, P.REC_MEMPOLICY.pack(value, 0) + mask)


def _scheduling(plan, proc):
    """process.scheduler (sched_setattr) and process.ioPriority (ioprio_set)."""
    sch = proc.get("scheduler")
    if sch is not None:
        f = "process.scheduler"
        sch = _obj(sch, f)
        pol = _str(sch.get("policy"), f + ".policy", required=True)
        if pol not in T.SCHED_POLICIES:
            raise ConfigError(f"{f}.policy: unknown policy {pol!r}")
        flags = _flag_bits(sch.get("flags"), f + ".flags", T.SCHED_FLAGS)
        nice = _int(sch.get("nice"), f + ".nice", -20, 19) or 0
        prio = _int(sch.get("priority"), f + ".priority", 0, 99) or 0
        if pol in ("SCHED_FIFO", "SCHED_RR") and prio == 0:
            raise ConfigError(f"{f}.priority: {pol} needs a priority in 1..99")
        if pol not in ("SCHED_FIFO", "SCHED_RR") and prio:
            raise ConfigError(f"{f}.priority: only SCHED_FIFO and SCHED_RR take a priority")
        rt = _int(sch.get("runtime"), f + ".runtime", 0, U64_MAX) or 0
        dl = _int(sch.get("deadline"), f + ".deadline", 0, U64_MAX) or 0
        per = _int(sch.get("period"), f + ".period", 0, U64_MAX) or 0
        attr = P.REC_SCHED.pack(P.REC_SCHED.size, T.SCHED_POLICIES[pol], flags, nice, prio, rt, dl, per, 0, 0)
        plan.w.rec(P.R_SCHED, attr)
    io = proc.get("ioPriority")
    if io is not None:
        f = "process.ioPriority"
        io = _obj(io, f)
        cls = _str(io.get("class"), f + ".class", required=True)
        if cls not in T.IOPRIO_CLASSES:
            raise ConfigError(f"{f}.class: unknown class {cls!r}")
        prio = _int(io.get("priority"), f + ".priority", 0, 7) or 0
        plan.w.rec(P.R_IOPRIO, P.REC_U32.pack(T.IOPRIO_CLASSES[cls] << 13 | prio))


def cpu_mask(text, field, limit=8192, what="CPU"):
    """'0-3,7' -> a cpu_set_t-style bitmask (multiple of 8 bytes)."""
    cpus = set()
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                a, b = part.split("-", 1)
                if int(a) > int(b):
                    raise ValueError
                cpus.update(range(int(a), int(b) + 1))
            else:
                cpus.add(int(part))
    except ValueError:
        raise ConfigError(f"{field}: invalid {what} list {text!r}") from None
    if not cpus or min(cpus) < 0 or max(cpus) >= limit:
        raise ConfigError(f"{field}: invalid {what} list {text!r}")
    nbytes = ((max(cpus) // 64) + 1) * 8
    mask = bytearray(nbytes)
    for c in cpus:
        mask[c // 8] |= 1 << (c % 8)
    return bytes(mask)


def _lsm(plan, proc):
    """Labels are applied when the host has the LSM; asking for one the host
    lacks is an error (a silently unconfined container is worse)."""
    aa = _str(proc.get("apparmorProfile"), "process.apparmorProfile")
    se = _str(proc.get("selinuxLabel"), "process.selinuxLabel")
    if aa:
        if not host.apparmor_enabled():
            raise ConfigError("process.apparmorProfile: apparmor profile is specified, but apparmor is not "
                              "enabled on this host")
        plan.w.rec(P.R_LSM, P.REC_LSM.pack(P.LSM_APPARMOR, 0) + P.cstr(aa))
    if se:
        if not host.selinux_enabled():
            raise ConfigError("process.selinuxLabel: selinux label is specified, but selinux is disabled or "
                              "not supported on this host")
        plan.w.rec(P.R_LSM, P.REC_LSM.pack(P.LSM_SELINUX, 0) + P.cstr(se))


def build_exec(cfg, proc, ns_flags, *, preserve_fds=0, join_cgroup=False):
    """A plan for `exec`: join the running container (namespaces given as
    CLONE_NEW* flags, joined through a pidfd), apply the process fields and
    the container's seccomp profile."""
    plan = Plan()
    w = plan.w
    plan.oci_version = cfg.get("ociVersion", "")
    w.u64(P.R_EXEC, ns_flags)
    proc = _obj(proc, "process")
    base = _obj(cfg.get("process"), "process")
    if proc.get("capabilities") is None:
        # runc: a process without capabilities gets the container's own sets
        # (those its config gave the init: none when that is absent too)
        proc = dict(proc, capabilities=base.get("capabilities"))
    if proc.get("selinuxLabel") is None and base.get("selinuxLabel") is not None:
        # runc: and the container's SELinux label, never an unconfined process
        proc = dict(proc, selinuxLabel=base.get("selinuxLabel"))
    _process(plan, proc, (), False)
    _memory_policy(plan, _obj(cfg.get("linux"), "linux"))  # the container's policy, for its every process
    aff = _obj(proc.get("execCPUAffinity"), "process.execCPUAffinity")
    for key, rec in (("initial", P.R_CPU_INITIAL), ("final", P.R_CPU_FINAL)):
        v = _str(aff.get(key), f"process.execCPUAffinity.{key}")
        if v:
            w.rec(rec, cpu_mask(v, f"process.execCPUAffinity.{key}"))
    if preserve_fds:
        w.rec(P.R_PRESERVE, P.REC_U32.pack(preserve_fds))
    sc = (cfg.get("linux") or {}).get("seccomp")
    if sc is not None:
        from ocirun.seccomp import compile_profile

        # with SCMP_ACT_NOTIFY the exec'd process gets its own filter and
        # listener, sent to listenerPath as runc 1.1 does for exec
        plan.seccomp = compile_profile(sc)
        w.rec(P.R_SECCOMP, P.REC_SECCOMP.pack(plan.seccomp.flags, 0) + plan.seccomp.bpf)
    _finish(plan, join_cgroup)
    return plan
