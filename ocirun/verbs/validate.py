"""`validate`: check a bundle without creating anything and report every
problem, each with the JSON pointer of its field.

Three kinds of findings:
- error: what `create` would refuse.  The same code decides: create's own
  `prepare()` (cgroups.resolve, plan.build, the rootless rules) and the
  cgroup library's check of linux.resources (normalize + compile, as
  apply() does) run on a copy of the config; at each error the offending
  field is set aside (its array entry dropped, its key removed, a required
  value replaced by a neutral one) and the checks run again, until they
  pass.  So every error is one create would print, in create's words, and
  the first is the one create prints.
- unknown: a key the runtime-spec schema does not know (runc and ocirun
  ignore it), with the nearest known key.
- warning: what the runtime-spec 1.3 schema refuses but create accepts, and
  what this host cannot honour or what would fail once the init runs: a
  capability the runtime lacks or nobody knows (left out), an rlimit it
  cannot raise, a filesystem type, option or source the kernel refuses
  (offered to it with fsopen/fsconfig, nothing created), args[0] not found
  in the rootfs, a cwd that is a file.

--plan describes the plan create would hand the init, read back from its
records (describe(), plan_text()).

jsonschema is imported here only: never on create/run's path.
"""

import copy
import difflib
import os

from ocirun.errors import OcirunError

SCHEMA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "spec", "config-schema.json")
MAX_ROUNDS = 500
ID = "ocirun-validate"  # the container id the checks assume (the default cgroup is named after it)
CAP_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")  # plan._caps's


class Finding:
    def __init__(self, kind, pointer, reason, hint=None):
        from ocirun.log import fit  # one line, long echoed values cut in the middle (as create's errors)

        def line(s):  # a lone surrogate (from a \ud800 key) cannot be printed: escaped
            return None if s is None else fit(s).encode("utf-8", "backslashreplace").decode("utf-8")

        self.kind, self.pointer, self.reason, self.hint = kind, line(pointer), line(reason), line(hint)

    def text(self):
        return f"{self.kind} {self.pointer or '/'}: {self.reason}" + (f" (hint: {self.hint})" if self.hint else "")

    def as_dict(self):
        return {"kind": self.kind, "pointer": self.pointer, "reason": self.reason, "hint": self.hint}

    def __repr__(self):
        return f"Finding({self.text()!r})"


class Report:
    def __init__(self):
        self.findings = []
        self.plan = None  # the plan of the config as given, when it has no error
        self.cgroup = None
        self.cgroup_writes = []
        self.cfg = None
        self.work = None  # the config the checks passed on (collect_errors)

    def mount_index(self, i):
        """mounts[i] of the config the plan was built from -> its index in the
        config as given."""
        mounts = self.work.doc.get("mounts") if self.work else None
        orig = self.work.orig.get(id(mounts)) if isinstance(mounts, list) else None
        return orig[i] if orig and i < len(orig) else i

    @property
    def errors(self):
        return [f for f in self.findings if f.kind == "error"]

    def status(self, strict=False):
        """0 valid, 1 invalid, 2 warnings or unknown keys only (1 with strict)."""
        if self.errors:
            return 1
        if self.findings:
            return 1 if strict else 2
        return 0


# --- JSON pointers -------------------------------------------------------------

def pointer(parts):
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _field_steps(work, field):
    """create's field name ("mounts[3].options[0]", "linux.sysctl.net.ipv4.x")
    -> [(container in work, key or index)], matching dotted keys against the
    keys that exist; None when `field` is no field name."""
    if not field or " " in field or field[0] in "-[." or "'" in field:
        return None
    steps, node, s = [], work, field
    while s:
        if s[0] == "[":
            end = s.find("]")
            if end < 0 or not s[1:end].isdigit():
                return None
            idx = int(s[1:end])
            s = s[end + 1:].removeprefix(".")
            steps.append((node if isinstance(node, list) else None, idx))
            node = node[idx] if isinstance(node, list) and idx < len(node) else None
            continue
        key = None
        if isinstance(node, dict):
            for k in sorted(node, key=len, reverse=True):
                if isinstance(k, str) and k and (s == k or s.startswith(k + ".") or s.startswith(k + "[")):
                    key = k
                    break
        if key is None:
            cut = [i for i in (s.find("."), s.find("[")) if i >= 0]
            key = s[:min(cut)] if cut else s
        s = s[len(key):].removeprefix(".")
        steps.append((node if isinstance(node, dict) else None, key))
        node = node.get(key) if isinstance(node, dict) else None
    return steps


class _Work:
    """A deep copy of the config that errors are set aside in, remembering
    each array entry's original index (pointers name the config as given)."""

    def __init__(self, cfg):
        self.orig = {}
        self.doc = self._copy(cfg)

    def _copy(self, node):
        """A copy of the JSON tree, without recursion (a config may nest as
        deep as the parser allows), indexing every array."""
        top = [node]
        todo = [(top, 0)]
        while todo:
            holder, key = todo.pop()
            v = holder[key]
            if isinstance(v, dict):
                holder[key] = dict(v)
                todo.extend((holder[key], k) for k in v)
            elif isinstance(v, list):
                holder[key] = list(v)
                self.orig[id(holder[key])] = list(range(len(v)))
                todo.extend((holder[key], i) for i in range(len(v)))
        return top[0]

    def pointer(self, steps):
        parts = []
        for cont, key in steps:
            if isinstance(cont, list) and id(cont) in self.orig and key < len(self.orig[id(cont)]):
                key = self.orig[id(cont)][key]
            parts.append(key)
        return pointer(parts)

    def remove(self, steps, placeholders):
        """Set the field aside: a neutral value where the field is required,
        else the array entry or the key goes.  False when nothing changed."""
        cont, key = steps[-1]
        shape = tuple("*" if isinstance(c, list) else k for c, k in steps)
        if shape in placeholders:
            if cont is None:
                return False
            if cont.get(key) == placeholders[shape]:
                return False
            cont[key] = copy.deepcopy(placeholders[shape])
            return True
        if isinstance(cont, list) and key < len(cont):
            del cont[key]
            if id(cont) in self.orig:
                del self.orig[id(cont)][key]
            return True
        if isinstance(cont, dict) and key in cont:
            del cont[key]
            return True
        return False


def _placeholders():
    # required values: replaced by a neutral one, never removed (removing
    # them would only make create say "is required" instead)
    return {
        ("ociVersion",): "1.0.0",
        ("root",): {"path": "."},
        ("root", "path"): ".",
        ("process",): {"cwd": "/", "args": ["true"]},
        ("process", "cwd"): "/",
        ("process", "args"): ["true"],
        ("process", "user"): {},
        ("process", "user", "uid"): 0,
        ("process", "user", "gid"): 0,
        ("linux",): {},
    }


def collect_errors(cfg, check, report):
    """Runs check(config) until it passes, setting aside each field it
    refuses; every refusal becomes an error finding.  Returns check's result
    for the config that passed (the config as given when there was no error)."""
    work = report.work = _Work(cfg)
    held = _placeholders()
    seen = set()  # pointers already reported or set aside
    for _ in range(MAX_ROUNDS):
        try:
            return check(work.doc)
        except OcirunError as e:
            msg = str(e)
        field, sep, reason = msg.partition(": ")
        steps = _field_steps(work.doc, field) if sep else None
        if steps is None:
            report.findings.append(Finding("error", "", msg))
            return None
        ptr = work.pointer(steps)
        if ptr not in seen:
            report.findings.append(Finding("error", ptr, reason, _hint(field, reason)))
            seen.add(ptr)
        # set it aside; when that changes nothing or it comes back (a
        # required field), the level above goes
        while steps:
            at = work.pointer(steps)  # before the removal shifts the entries after it
            if work.remove(steps, held):
                seen.add(at)
                break
            steps = steps[:-1]
        else:
            return None
    report.findings.append(Finding("warning", "", f"stopped after {MAX_ROUNDS} errors: there may be more"))
    return None


def _choices(reason):
    """The names create knows for a value it calls unknown."""
    from ocirun import tables as T

    for words, names in (("unknown rlimit", T.RLIMITS), ("unknown namespace type", T.NAMESPACES),
                         ("unknown propagation", T.PROPAGATION), ("unknown domain", T.PERSONALITY),
                         ("unknown seccomp action", T.SECCOMP_ACTIONS), ("unknown seccomp flag", T.SECCOMP_FLAGS),
                         ("unknown architecture", T.SECCOMP_ARCHS), ("unknown operator", T.SECCOMP_OPERATORS),
                         ("unknown policy", T.SCHED_POLICIES), ("unknown class", T.IOPRIO_CLASSES),
                         ("unknown mode", T.MPOL_MODES), ("unknown device type", ("c", "b", "u", "p"))):
        if reason.startswith(words + " '"):
            return list(names)
    return None


def _hint(field, reason):
    from ocirun import tables as T

    names = _choices(reason)
    if names:
        value = reason.split("'", 2)[1]
        near = difflib.get_close_matches(value, names, n=1, cutoff=0.5)
        return f"did you mean {near[0]}?" if near else "one of " + ", ".join(names)
    if reason.startswith("unknown hook phase"):
        near = difflib.get_close_matches(field.rpartition(".")[2], T.HOOK_PHASES, n=1)
        return f"did you mean {near[0]}?" if near else "one of " + ", ".join(T.HOOK_PHASES)
    if reason.startswith("unknown capability set"):
        near = difflib.get_close_matches(field.rpartition(".")[2], CAP_SETS, n=1)
        return f"did you mean {near[0]}?" if near else "one of " + ", ".join(CAP_SETS)
    if "is not a SemVer" in reason:
        return 'e.g. "1.3.0"'
    if "without a private UTS namespace" in reason:
        return 'add {"type": "uts"} to linux.namespaces'
    if reason.startswith("must be an absolute path"):
        return "start it with /"
    if "cannot be mounted under /proc" in reason:
        return "mount it elsewhere"
    return None


# --- the schema: structure and unknown keys ----------------------------------

def _load_schema():
    import json

    with open(SCHEMA) as f:
        return json.load(f)


def _jsonschema():
    """jsonschema, also when the CLI runs with -I -S (the installed ocirun-py):
    then only the site-packages of the interpreter's own prefix are added (no
    user site, no .pth code), and only for this command."""
    try:
        import jsonschema
    except ImportError:
        import site
        import sys

        for d in site.getsitepackages():
            if d not in sys.path and os.path.isdir(d):
                sys.path.append(d)
        try:
            import jsonschema
        except ImportError:
            raise OcirunError("the jsonschema Python package is missing") from None
    return jsonschema


def schema_findings(cfg, schema):
    jsonschema = _jsonschema()
    v = jsonschema.Draft4Validator(schema)
    out = []
    try:
        errors = list(v.iter_errors(cfg))
    except RecursionError:
        return [("", "runtime-spec 1.3 schema: not checked, the document nests too deeply")]
    for e in sorted(errors, key=lambda e: list(map(str, e.absolute_path))):
        msg = e.message
        if len(msg) > 200:
            msg = msg[:197] + "..."
        out.append((pointer(e.absolute_path), f"runtime-spec 1.3 schema: {msg}"))
    return out


def _resolve(schema, node):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        node = schema
        for p in ref.lstrip("#").split("/"):
            if p:
                node = node[p]
    return node


def _shapes(schema, node):
    """The alternatives a value may take: every schema reachable through
    $ref, allOf, anyOf and oneOf."""
    node = _resolve(schema, node)
    if not isinstance(node, dict):
        return []
    out = [node]
    for k in ("allOf", "anyOf", "oneOf"):
        for sub in node.get(k, []):
            out += _shapes(schema, sub)
    return out


def unknown_keys(cfg, schema):
    """[(pointer, key, nearest known key or None)] for keys of objects whose
    schema lists its properties and takes no others."""
    out = []

    def walk(value, node, path):
        shapes = _shapes(schema, node)
        if isinstance(value, dict):
            props = {}
            open_ = not any("properties" in x for x in shapes)
            for s in shapes:
                props.update(s.get("properties", {}))
                if s.get("patternProperties") or s.get("additionalProperties") not in (None, False):
                    open_ = True
            for k, v in value.items():
                if k in props:
                    walk(v, props[k], path + [k])
                elif not open_:
                    near = difflib.get_close_matches(k, list(props), n=1, cutoff=0.6)
                    out.append((pointer(path + [k]), k, near[0] if near else None))
                else:
                    for s in shapes:
                        ap = s.get("additionalProperties")
                        if isinstance(ap, dict):
                            walk(v, ap, path + [k])
                            break
        elif isinstance(value, list):
            for s in shapes:
                if isinstance(s.get("items"), dict):
                    for i, v in enumerate(value):
                        walk(v, s["items"], path + [i])
                    break

    walk(cfg, schema, [])
    return out


# --- what this host cannot honour --------------------------------------------

def host_warnings(plan, report):
    """[(pointer, reason, hint)]: what create accepts but this host (or this
    runtime's own privileges) cannot give the container.  Read from the
    config the checks passed on (its types are create's), pointers into the
    config as given."""
    from ocirun import host

    out = []
    work = report.work
    doc = work.doc

    def at(*path):
        steps, node = [], doc
        for k in path:
            steps.append((node, k))
            node = node[k] if isinstance(node, (dict, list)) and (isinstance(node, list) or k in node) else None
        return work.pointer(steps)

    proc = doc.get("process") if isinstance(doc.get("process"), dict) else {}
    for w in plan.warnings:
        if w.startswith("ignoring unknown or unavailable capabilities"):
            continue  # one finding per name below, with its pointer
        field, _, reason = w.partition(": ")
        steps = _field_steps(doc, field)
        out.append((work.pointer(steps) if steps else "", reason if steps else w, None))
    # rlimits: raising a hard limit above the runtime's own needs
    # CAP_SYS_RESOURCE (setrlimit EPERM at the init's rlimit step), and
    # RLIMIT_NOFILE never goes above fs.nr_open
    import resource

    from ocirun import tables as T

    have_res = _own_effective_caps() >> T.CAP_NUMBER["CAP_SYS_RESOURCE"] & 1
    nr_open = host.read("/proc/sys/fs/nr_open")
    for i, rl in enumerate(proc.get("rlimits") or []):
        t, hard = rl.get("type"), rl.get("hard")  # create checked them
        num = getattr(resource, t, None) if isinstance(t, str) and t.startswith("RLIMIT_") else None
        if num is None or not isinstance(hard, int):
            continue
        cur = resource.getrlimit(num)[1]
        cur = (1 << 64) - 1 if cur == resource.RLIM_INFINITY else cur
        if t == "RLIMIT_NOFILE" and nr_open and nr_open.strip().isdigit() and hard > int(nr_open):
            out.append((at("process", "rlimits", i, "hard"), f"{t} hard limit {hard} is above this kernel's fs.nr_open "
                        f"({nr_open.strip()}): create will fail", f"at most {nr_open.strip()}"))
        elif hard > cur and not have_res:
            out.append((at("process", "rlimits", i, "hard"), f"raising {t}'s hard limit above the runtime's own ({cur}) "
                        "needs CAP_SYS_RESOURCE, which this runtime lacks: create will fail",
                        f"at most {cur}"))
    # filesystem types the kernel does not know (a module may still load on demand)
    fss = set()
    for line in (host.read("/proc/filesystems") or "").splitlines():
        fss.add(line.split()[-1] if line.split() else "")
    for i, m in enumerate(doc.get("mounts") or []):
        t = m.get("type")
        opts = m.get("options") if isinstance(m.get("options"), list) else []
        if isinstance(t, str) and t and t not in ("bind", "none", "cgroup") and "bind" not in opts and \
                "rbind" not in opts and fss and t not in fss:
            out.append((at("mounts", i, "type"), f"filesystem type {t!r} is not in this kernel's /proc/filesystems",
                        "load its module, or mount another type"))
    out += _kernel_mount_options(plan, fss, report.mount_index)
    if not any(f.pointer.startswith(("/process/args", "/process/cwd", "/root")) or f.pointer in ("", "/process")
               for f in report.errors):  # else a neutral value stands in for them
        out += _exec_lookup(doc, plan)
    # capabilities neither this runtime nor this kernel knows (create leaves them out)
    caps = proc.get("capabilities") if isinstance(proc.get("capabilities"), dict) else {}
    last = host.cap_last_cap(len(T.CAPABILITIES))
    for key, names in caps.items():
        for j, name in enumerate(names if isinstance(names, list) else []):
            if not isinstance(name, str):
                continue
            n = T.CAP_NUMBER.get(name.upper() if name.upper().startswith("CAP_") else "CAP_" + name.upper())
            if n is None or n > last:
                near = difflib.get_close_matches(name.upper(), T.CAPABILITIES[:last + 1], n=1)
                out.append((at("process", "capabilities", key, j), f"unknown or unavailable capability {name!r}, "
                            "left out", f"did you mean {near[0]}?" if near else None))
    return out


def _kernel_mount_options(plan, known_types, mount_index):
    """Each filesystem mount's type and options offered to this kernel as the
    init will (fsopen, fsconfig source and every option), without creating
    anything: what the kernel refuses, create will fail on.  Only as root
    and without a new user namespace (then the init's permissions are the
    caller's); not the cgroup mounts the runtime makes itself."""
    import ctypes

    from ocirun import proto as P
    from ocirun.errors import strerror

    if os.geteuid() != 0 or "user" in plan.ns_new or "user" in plan.ns_paths:
        return []
    libc = ctypes.CDLL(None, use_errno=True)
    sys_fsopen, sys_fsconfig = 430, 431  # the same number on every architecture
    out = []
    for t, b in _records(plan.blob()):
        if t != P.R_MOUNT:
            continue
        kind, idx, _f, _p, _s, _c = P.REC_MOUNT.unpack_from(b)
        src, _dst, fstype, data = _cstrs(b[P.REC_MOUNT.size:])
        idx = mount_index(idx) if idx != 0xFFFF else idx
        if kind != P.MK_FS or fstype in ("cgroup", "cgroup2") or idx == 0xFFFF or \
                (known_types and fstype not in known_types):  # said above; fsopen would load a module
            continue
        fd = libc.syscall(sys_fsopen, fstype.encode(), 1)  # FSOPEN_CLOEXEC
        if fd < 0:
            continue
        try:
            steps = ([(1, "source", src)] if src else []) + [
                (1, o.split("=", 1)[0], o.split("=", 1)[1]) if "=" in o else (0, o, None)
                for o in data.split(",") if o]
            for cmd, key, val in steps:
                r = libc.syscall(sys_fsconfig, fd, cmd, key.encode(), None if val is None else val.encode(), 0)
                if r < 0:
                    e = ctypes.get_errno()
                    try:
                        msg = os.read(fd, 512).decode(errors="replace").strip()
                    except OSError:
                        msg = ""
                    msg = msg[2:] if msg[1:2] == " " else msg
                    what = "source" if key == "source" else f"option {key if val is None else key + '=' + val}"
                    out.append((f"/mounts/{idx}/" + ("source" if key == "source" else "options"),
                                f"the kernel refuses {what}: {msg or strerror(e)}: create will fail", None))
                    break
        finally:
            os.close(fd)
    return out


class _Unknown(Exception):
    """The answer depends on something validate cannot see (a mount over
    the path, a directory it may not read)."""


def _in_root(rootfs, path, covered):
    """stat() of a container path as the init would find it: symlinks
    followed inside the rootfs (never out of it), lstat only, nothing
    opened.  None when it does not exist; _Unknown when a mount of the
    config covers it."""
    import stat as S

    parts, done, links = [p for p in path.split("/") if p not in ("", ".")], [], 0
    while parts:
        comp = parts.pop(0)
        if comp == "..":
            if done:
                done.pop()
            continue
        cpath = "/" + "/".join(done + [comp])
        if any(cpath == d or cpath.startswith(d + "/") for d in covered):
            raise _Unknown(cpath)
        try:
            st = os.lstat(os.path.join(rootfs, *done, comp))
        except FileNotFoundError:
            return None
        except OSError:
            raise _Unknown(cpath) from None
        if S.S_ISLNK(st.st_mode):
            links += 1
            if links > 40:
                return None  # ELOOP
            target = os.readlink(os.path.join(rootfs, *done, comp))
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        done.append(comp)
        if parts and not S.S_ISDIR(st.st_mode):
            return None  # ENOTDIR
    return os.stat(os.path.join(rootfs, *done)) if done else os.stat(rootfs)


def _exec_lookup(cfg, plan):
    """process.cwd must not be a file (a missing one is made); args[0]
    looked up as the init will (csrc/init/process.c lookup_exec:
    a path, else each directory of the process's PATH, relative ones from
    the cwd; an executable regular file), in the rootfs; skipped where a
    mount of the config decides."""
    import stat as S

    proc = cfg.get("process") if isinstance(cfg.get("process"), dict) else {}
    args, cwd = proc.get("args"), proc.get("cwd")
    if plan.hooks.get("prestart") or plan.hooks.get("createRuntime") or plan.hooks.get("createContainer"):
        return []  # they may put things into the rootfs first (nvidia's hook adds binaries)
    if not (isinstance(args, list) and args and isinstance(args[0], str) and args[0] and isinstance(cwd, str)):
        return []
    covered = set()
    for m in cfg.get("mounts") or []:
        d = m.get("destination") if isinstance(m, dict) else None
        if isinstance(d, str) and d.strip("/"):
            covered.add("/" + "/".join(p for p in d.split("/") if p not in ("", ".")))
    try:
        st = _in_root(plan.rootfs, cwd, covered)
        if st is not None and not S.S_ISDIR(st.st_mode):
            return [("/process/cwd", f"{cwd} is not a directory in the rootfs: create will fail", None)]
    except _Unknown:
        pass
    name = args[0]
    env = dict(e.split("=", 1) for e in plan.env if "=" in e)
    if "/" in name:
        candidates = [name if name.startswith("/") else cwd.rstrip("/") + "/" + name]
    elif "PATH" not in env:
        return [("/process/args/0", f"{name!r} cannot be found: process.env has no PATH: create will fail",
                 "give an absolute path, or PATH in process.env")]
    else:
        candidates = [(d if d.startswith("/") else cwd.rstrip("/") + "/" + d).rstrip("/") + "/" + name if d
                      else cwd.rstrip("/") + "/" + name for d in env["PATH"].split(":")]
    try:
        for c in candidates:
            st = _in_root(plan.rootfs, c, covered)
            if st is not None and not S.S_ISDIR(st.st_mode) and st.st_mode & 0o111:
                return []
    except _Unknown:
        return []
    where = "in the rootfs" if "/" in name else f"on the container's PATH ({env['PATH']})"
    return [("/process/args/0", f"no executable file {name!r} {where}: create will fail", None)]


def _own_effective_caps():
    for line in (open("/proc/self/status").read()).splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


# --- the whole check ----------------------------------------------------------

class _Opts:
    """create's options as validate sees them: no CLI flags of create."""

    def __init__(self, bundle, rootless, systemd_cgroup):
        self.bundle, self.rootless, self.systemd_cgroup = bundle, rootless, systemd_cgroup
        self.no_pivot = self.no_new_keyring = False
        self.console_socket = None
        self.preserve_fds = 0


def validate(bundle, *, rootless=False, systemd_cgroup=False, cid=None):
    """Check bundle/config.json; returns a Report (plan set when there is no
    error).  Raises OcirunError only when config.json cannot be read at all."""
    from ocirun.spec.load import load_config
    from ocirun.verbs.create import prepare

    cid = cid or ID
    bundle = os.path.abspath(bundle)
    report = Report()
    try:
        cfg = load_config(bundle)
    except OcirunError as e:
        report.findings.append(Finding("error", "", str(e)))
        return report
    report.cfg = cfg
    opts = _Opts(bundle, rootless, systemd_cgroup)

    def check(c):
        from ocirun import cgroups

        cg, plan = prepare(c, bundle, cid, opts)
        linux = c.get("linux") if isinstance(c.get("linux"), dict) else {}
        devs = linux.get("devices") if isinstance(linux.get("devices"), list) else []
        writes, warns = cgroups.check(cg, linux.get("resources"), [d.get("path") for d in devs if isinstance(d, dict)])
        return cg, plan, writes, warns

    result = collect_errors(cfg, check, report)
    error_ptrs = {f.pointer for f in report.findings}
    schema = _load_schema()
    def refused(ptr):  # create refuses this value, or a part of it, or what holds it
        return any(p == ptr or p.startswith(ptr + "/") or ptr.startswith(p + "/") for p in error_ptrs if p)

    try:
        structural = schema_findings(cfg, schema)
    except OcirunError:  # no jsonschema: everything else still holds (unknown keys need only the schema file)
        structural = []
        report.findings.append(Finding("warning", "", "runtime-spec 1.3 schema: not checked, the jsonschema Python "
                                       "package is missing", "pip install jsonschema, or apt install python3-jsonschema"))
    for ptr, msg in structural:
        if not refused(ptr):
            report.findings.append(Finding("warning", ptr, msg + " (ocirun accepts it; other runtimes may not)"))
    for ptr, key, near in unknown_keys(cfg, schema):
        if ptr in error_ptrs:
            continue  # create refuses it: the error says so
        report.findings.append(Finding("unknown", ptr, "unknown key, ignored",
                                       f"did you mean {near}?" if near else None))
    if result is not None:
        cg, plan, writes, warns = result
        for w in warns:
            if not w.endswith("unknown field, ignored"):  # the schema's unknown keys say these
                field, _, reason = w.partition(": ")
                steps = _field_steps(cfg, field)
                report.findings.append(Finding("warning", pointer(k for _c, k in steps) if steps else "",
                                               reason if steps else w))
        for ptr, reason, hint in host_warnings(plan, report):
            report.findings.append(Finding("warning", ptr, reason, hint))
        if not report.errors:
            report.plan, report.cgroup, report.cgroup_writes = plan, cg, writes
    return report


# --- --plan: the plan the init would receive, in words ----------------------

def _records(blob):
    from ocirun import proto as P

    off = P.PLAN_HEADER.size
    while off < len(blob):
        t, _z, ln = P.REC_HEADER.unpack_from(blob, off)
        yield t, blob[off + P.REC_HEADER.size: off + P.REC_HEADER.size + ln]
        off += P.REC_HEADER.size + ((ln + 7) & ~7)


def _cstrs(b):
    return [s.decode("utf-8", "surrogateescape") for s in b.split(b"\0")[:-1]] if b else []


def _mount_flags(flags):
    from ocirun import tables as T

    names = [o for o, (clear, bit) in T.MOUNT_FLAGS.items()
             if not clear and bit and flags & bit == bit and o not in ("bind", "rbind", "remount", "defaults")]
    return [n for n in names if n != "silent"]


def _attrs(aset, aclr):
    from ocirun import tables as T

    out = [o for o, (clear, a) in T.RECURSIVE_ATTRS.items() if not clear and a and aset & a == a]
    if aclr & T.MOUNT_ATTR__ATIME and not aset & T.MOUNT_ATTR__ATIME:
        out.append("rrelatime")
    return out


def describe(report):
    """The plan (report.plan) as a dict of sections in the init's order; every
    value is read back from the plan's records, not from the config."""
    from ocirun import proto as P
    from ocirun import tables as T

    plan = report.plan
    ns_names = {v: k for k, v in T.NAMESPACES.items()}
    rl_names = {v: k for k, v in T.RLIMITS.items()}
    d = {"namespaces": [], "rootfs": {}, "mounts": [], "devices": [], "dev_symlinks": False, "masked_paths": [],
         "readonly_paths": [], "sysctl": {}, "hostname": None, "domainname": None,
         "process": {"rlimits": [], "capabilities": {}, "no_new_privileges": False, "args": [], "env": [],
                     "lsm": [], "seccomp": None},
         "cgroup": None}
    proc = d["process"]
    for t, b in _records(plan.blob()):
        if t == P.R_NS_NEW:
            flags = P.REC_U64.unpack(b)[0]
            d["namespaces"] += [{"type": n, "new": True} for f, n in sorted(ns_names.items(), key=lambda x: x[1])
                                if flags & f]
        elif t == P.R_NS_JOIN:
            nst, _i = P.REC_NS_JOIN.unpack_from(b)
            d["namespaces"].append({"type": ns_names.get(nst, hex(nst)), "new": False,
                                    "path": _cstrs(b[P.REC_NS_JOIN.size:])[0]})
        elif t == P.R_ROOTFS:
            d["rootfs"]["path"] = _cstrs(b)[0]
        elif t == P.R_ROOT_RO:
            d["rootfs"]["readonly"] = True
        elif t == P.R_ROOTPROP:
            v = P.REC_U64.unpack(b)[0]
            d["rootfs"]["propagation"] = next((k for k, f in T.PROPAGATION.items() if f == v), hex(v))
        elif t == P.R_MOUNT:
            kind, idx, flags, prop, aset, aclr = P.REC_MOUNT.unpack_from(b)
            src, dst, fstype, data = _cstrs(b[P.REC_MOUNT.size:])
            m = {"field": "runtime" if idx == 0xFFFF else f"mounts[{idx}]", "destination": dst}
            if kind == P.MK_BIND:
                m.update(kind="rbind" if flags & P.MNT_REC_BIND else "bind", source=src)
            elif kind == P.MK_FS:
                m.update(kind="mount", type=fstype, source=src, data=data)
            elif kind == P.MK_SYMLINK:
                m.update(kind="symlink", target=src)
            else:
                m.update(kind="setattr")
            m["flags"] = _mount_flags(flags & ((1 << 32) - 1))
            if aset or aclr:
                m["recursive"] = _attrs(aset, aclr)
            if prop:
                prop |= T.MS_REC if flags & P.MNT_REC_PROP else 0
                m["propagation"] = next((k for k, f in T.PROPAGATION.items() if f == prop), hex(prop))
            if flags & P.MNT_IDMAP:
                m["idmapped"] = True
            d["mounts"].append(m)
        elif t == P.R_DEVICE:
            typ, ma, mi, mode, uid, gid, bind, _i = P.REC_DEVICE.unpack_from(b)
            d["devices"].append({"path": _cstrs(b[P.REC_DEVICE.size:])[0], "type": chr(typ), "major": ma,
                                 "minor": mi, "mode": f"{mode:04o}", "uid": uid, "gid": gid,
                                 "how": "bind from the host" if bind else "mknod"})
        elif t == P.R_DEV_SYMLINKS:
            d["dev_symlinks"] = True
        elif t == P.R_MASK:
            d["masked_paths"].append(_cstrs(b)[0])
        elif t == P.R_RO_PATH:
            d["readonly_paths"].append(_cstrs(b)[0])
        elif t == P.R_SYSCTL:
            k, v = _cstrs(b[P.REC_SYSCTL.size:])
            d["sysctl"][k.replace("/", ".")] = v
        elif t in (P.R_HOSTNAME, P.R_DOMAINNAME):
            d["hostname" if t == P.R_HOSTNAME else "domainname"] = _cstrs(b)[0]
        elif t == P.R_RLIMIT:
            res, _i, soft, hard = P.REC_RLIMIT.unpack_from(b)
            proc["rlimits"].append({"type": rl_names.get(res, str(res)), "soft": soft, "hard": hard})
        elif t == P.R_USER:
            uid, gid, umask, n = P.REC_USER.unpack_from(b)
            gids = list(P.struct.unpack_from(f"={n}I", b, P.REC_USER.size)) if n else []
            proc.update(uid=uid, gid=gid, additional_gids=gids, umask=None if umask < 0 else f"{umask:04o}")
        elif t == P.R_CAPS:
            for key, mask in zip(CAP_SETS, P.REC_CAPS.unpack(b)):
                proc["capabilities"][key] = [c for n, c in enumerate(T.CAPABILITIES) if mask >> n & 1]
        elif t == P.R_NNP:
            proc["no_new_privileges"] = True
        elif t == P.R_CWD:
            proc["cwd"] = _cstrs(b)[0]
        elif t == P.R_ARG:
            proc["args"].append(_cstrs(b)[0])
        elif t == P.R_ENV:
            proc["env"].append(_cstrs(b)[0])
        elif t == P.R_OOM:
            proc["oom_score_adj"] = P.REC_S32.unpack(b)[0]
        elif t == P.R_LSM:
            kind, _z = P.REC_LSM.unpack_from(b)
            proc["lsm"].append({"apparmor" if kind == P.LSM_APPARMOR else "selinux": _cstrs(b[P.REC_LSM.size:])[0]})
        elif t == P.R_TERMINAL:
            proc["terminal"] = True
        elif t == P.R_SECCOMP:
            proc["seccomp"] = _seccomp_summary(report.cfg, len(b) - P.REC_SECCOMP.size)
        elif t == P.R_PERSONALITY:
            v = P.REC_U32.unpack(b)[0]
            proc["personality"] = next((k for k, f in T.PERSONALITY.items() if f == v), hex(v))
    for n in d["namespaces"]:
        if n["type"] == "user" and n["new"]:
            # written by the runtime into the new namespace (not a plan record)
            n["uid_map"] = [list(map(int, x.split())) for x in (plan.uid_map or "").splitlines()]
            n["gid_map"] = [list(map(int, x.split())) for x in (plan.gid_map or "").splitlines()]
    cg = report.cgroup
    if cg:
        linux = report.cfg.get("linux") if isinstance(report.cfg.get("linux"), dict) else {}
        d["cgroup"] = {"version": cg["version"], "paths": sorted(set(cg["paths"].values())),
                       "named_after_id": not linux.get("cgroupsPath"),
                       "writes": [{"file": p, "value": v, "field": f} for p, v, f in report.cgroup_writes]}
    return d


def _seccomp_summary(cfg, nbytes):
    """linux.seccomp as compiled into the plan's filter: its default action
    and the syscalls per action."""
    sc = (cfg.get("linux") or {}).get("seccomp") or {}
    per = {}
    for r in sc.get("syscalls") or []:
        act = r.get("action")
        if r.get("errnoRet") is not None:
            act += f"({r['errnoRet']})"
        per.setdefault(act, []).extend(r.get("names") or [])
    default = sc.get("defaultAction")
    if sc.get("defaultErrnoRet") is not None:
        default += f"({sc['defaultErrnoRet']})"
    return {"default_action": default, "architectures": sc.get("architectures") or [], "flags": sc.get("flags") or [],
            "syscalls": per, "instructions": nbytes // 8}


def plan_text(d):
    """describe()'s dict as lines, in the order the init acts."""
    L = []
    ns = d["namespaces"]
    L.append("namespaces: " + (", ".join(
        n["type"] + (" (new)" if n["new"] else f" (join {n['path']})") for n in ns) or "none: the runtime's own"))
    for n in ns:
        for key in ("uid_map", "gid_map"):
            for c, h, size in n.get(key, []):
                L.append(f"user namespace {key.replace('_', ' ')}: {c}-{c + size - 1} in the container = "
                         f"{h}-{h + size - 1} on the host")
    r = d["rootfs"]
    L.append(f"rootfs: {r.get('path')}" + (" read-only" if r.get("readonly") else "")
             + (f", propagation {r['propagation']}" if r.get("propagation") else ""))
    for m in d["mounts"]:
        if m["kind"] == "symlink":
            L.append(f"mount {m['field']}: symlink {m['destination']} -> {m['target']}")
            continue
        what = f"{m['kind']} {m['source']}" if m["kind"] in ("bind", "rbind") else \
            ("remount" if m["kind"] == "setattr" else f"{m['type']} ({m['source'] or '-'})")
        opts = m["flags"] + m.get("recursive", []) + ([m["data"]] if m.get("data") else [])
        L.append(f"mount {m['field']}: {what} on {m['destination']}" + (f" [{','.join(opts)}]" if opts else "")
                 + (f" propagation {m['propagation']}" if m.get("propagation") else "")
                 + (" idmapped" if m.get("idmapped") else ""))
    for dv in d["devices"]:
        L.append(f"device {dv['path']}: {dv['type']} {dv['major']}:{dv['minor']} mode {dv['mode']} "
                 f"uid {dv['uid']} gid {dv['gid']} ({dv['how']})")
    if d["dev_symlinks"]:
        L.append("/dev symlinks: fd, stdin, stdout, stderr, ptmx (/dev/pts/ptmx), core (when /proc/kcore exists)")
    for p in d["masked_paths"]:
        L.append(f"masked: {p}")
    for p in d["readonly_paths"]:
        L.append(f"read-only: {p}")
    for k, v in d["sysctl"].items():
        L.append(f"sysctl {k} = {v}")
    for k in ("hostname", "domainname"):
        if d[k] is not None:
            L.append(f"{k}: {d[k]}")
    p = d["process"]
    for rl in p["rlimits"]:
        L.append(f"rlimit {rl['type']}: soft {rl['soft']} hard {rl['hard']}")
    L.append(f"user: uid {p.get('uid')} gid {p.get('gid')} groups [{' '.join(map(str, p.get('additional_gids', [])))}]"
             + f" umask {p.get('umask') or 'inherited'}")
    for k, caps in p["capabilities"].items():
        L.append(f"capabilities {k}: {' '.join(caps) or 'none'}")
    L.append(f"no_new_privileges: {'yes' if p['no_new_privileges'] else 'no'}")
    for lsm in p["lsm"]:
        for k, v in lsm.items():
            L.append(f"{k} label: {v}")
    sc = p["seccomp"]
    if sc:
        L.append(f"seccomp: default {sc['default_action']}, {sc['instructions']} BPF instructions"
                 + (f", flags {' '.join(sc['flags'])}" if sc["flags"] else ""))
        for act, names in sc["syscalls"].items():
            L.append(f"seccomp {act}: {len(names)} syscalls: {' '.join(names)}")
    else:
        L.append("seccomp: none")
    if "oom_score_adj" in p:
        L.append(f"oom_score_adj: {p['oom_score_adj']}")
    L.append(f"cwd: {p.get('cwd')}")
    L.append("args: " + " ".join(repr(a) if (" " in a or not a) else a for a in p["args"]))
    for e in p["env"]:
        L.append(f"env: {e}")
    cg = d["cgroup"]
    if cg:
        L.append(f"cgroup v{cg['version']}: " + " ".join(cg["paths"]))
        if cg["named_after_id"]:
            L.append(f"cgroup: no linux.cgroupsPath, so the group is named after the container's id ({ID} here)")
        for w in cg["writes"]:
            L.append(f"cgroup write {w['file']} = {w['value']!r} ({w['field']})")
    else:
        L.append("cgroup: none")
    return L
