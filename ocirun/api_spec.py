"""`ocirun.Spec`: a container's config.json, from `ocirun spec`'s defaults,
with Pythonic setters (the Python API; docs/api.md).

    spec = ocirun.Spec("/srv/rootfs", args=["sh", "-c", "echo hi"])
    spec.env["LANG"] = "C.UTF-8"
    spec.memory = "64M"; spec.pids = 32; spec.cpus = 0.5
    spec.network = "none"            # or "host", or a netns path to join
    spec.bind("/srv/data", "/data", readonly=True)
    spec.write("/srv/bundle")        # config.json in that directory

Each setter checks its value with the words the runtime itself uses for a
bad config.json and raises ConfigError with .field (`process.cwd`) and
.reason; everything else — the rootfs, mounts, limits the host cannot
honour — is checked by `create`, which names the field the same way.
The document itself is `spec.config` (a dict) for anything without a
setter.  Unlike `ocirun spec`, `process.terminal` is false: the API gives
the container pipes or files, not a terminal."""

import copy
import os

from ocirun.errors import ConfigError

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
          "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}
_NS_ORDER = ("pid", "network", "ipc", "uts", "mount", "cgroup", "user", "time")


def parse_size(value, field):
    """Bytes from an int or a string such as "64M", "512k", "1G" (binary
    units, as docker's --memory)."""
    if isinstance(value, bool):
        raise ConfigError(field=field, reason="must be a size in bytes (an integer or a string such as '64M')")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str):
        t = value.strip().lower()
        num = t.rstrip("kmgib")
        unit = t[len(num):]
        try:
            n = int(num) * _UNITS[unit]
        except (ValueError, KeyError):
            raise ConfigError(field=field, reason=f"{value!r} is not a size (an integer, or a number with "
                              "K, M or G)") from None
    else:
        raise ConfigError(field=field, reason="must be a size in bytes (an integer or a string such as '64M')")
    if n <= 0:
        raise ConfigError(field=field, reason=f"must be positive, got {value!r}")
    return n


def _strings(value, field, empty_ok=True):
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ConfigError(field=field, reason="must be a list of strings")
    out = list(value)
    for i, v in enumerate(out):
        if not isinstance(v, str):
            raise ConfigError(field=f"{field}[{i}]", reason="must be a string")
        if "\0" in v:
            raise ConfigError(field=f"{field}[{i}]", reason="contains a NUL byte")
    if not out and not empty_ok:
        raise ConfigError(field=field, reason="must not be empty")
    return out


def _abs_path(value, field):
    if not isinstance(value, str) or not value.startswith("/") or "\0" in value:
        raise ConfigError(field=field, reason=f"must be an absolute path, got {value!r}")
    return value


class Env(dict):
    """process.env as a dict (insertion order kept); every change is
    written back to the spec at once."""

    def __init__(self, spec, items):
        super().__init__(items)
        self._spec = spec

    def _sync(self):
        self._spec.config["process"]["env"] = [f"{k}={v}" for k, v in self.items()]

    def __setitem__(self, key, value):
        if not isinstance(key, str) or not key or "=" in key or "\0" in key:
            raise ConfigError(field="process.env", reason=f"{key!r} is not a variable name")
        if not isinstance(value, str) or "\0" in value:
            raise ConfigError(field="process.env", reason=f"the value of {key} must be a string without NUL")
        super().__setitem__(key, value)
        self._sync()

    def __delitem__(self, key):
        super().__delitem__(key)
        self._sync()

    def update(self, *args, **kw):
        for k, v in dict(*args, **kw).items():
            self[k] = v

    def pop(self, key, *default):
        v = super().pop(key, *default)
        self._sync()
        return v

    def clear(self):
        super().clear()
        self._sync()

    def setdefault(self, key, value=None):
        if key not in self:
            self[key] = value
        return self[key]


class Spec:
    """A config.json being built.  `rootfs` is the root filesystem's
    directory (root.path, made absolute from the current directory when
    set; without one, root.path stays `ocirun spec`'s "rootfs", which is
    relative to the bundle it is written to)."""

    def __init__(self, rootfs=None, args=None, *, config=None, rootless=None):
        if config is not None:
            if not isinstance(config, dict):
                raise ConfigError(field="config.json", reason="the top level must be a JSON object")
            self.config = copy.deepcopy(config)
        else:
            from ocirun.spec.template import default_spec

            if rootless is None:
                from ocirun.cli.commands import rootless as _auto

                rootless = _auto({})
            self.config = default_spec(rootless)
            self.config["process"]["terminal"] = False
        self.config.setdefault("process", {})
        if rootfs is not None:
            self.rootfs = rootfs
        if args is not None:
            self.args = args

    @classmethod
    def load(cls, path):
        """The config.json of a bundle directory (or the file itself)."""
        from ocirun.spec.load import load_config

        if os.path.isdir(path):
            spec = cls(config=load_config(path))
            root = spec.config.get("root") or {}
            if isinstance(root.get("path"), str) and not root["path"].startswith("/"):
                root["path"] = os.path.join(os.path.abspath(path), root["path"])
            return spec
        with open(path, "rb") as f:
            from ocirun.jsonutil import loads

            return cls(config=loads(f.read()))

    def copy(self):
        return Spec(config=self.config)

    # --- the document -----------------------------------------------------
    def _process(self):
        return self.config.setdefault("process", {})

    def _linux(self):
        return self.config.setdefault("linux", {})

    def _resources(self):
        return self._linux().setdefault("resources", {})

    def to_json(self):
        from ocirun.jsonutil import dumps_indent

        return dumps_indent(self.config, 2)

    def write(self, bundle):
        """Write config.json into the directory `bundle` (made if missing);
        returns the bundle's path."""
        bundle = os.path.abspath(bundle)
        os.makedirs(bundle, exist_ok=True)
        cfg = self.config
        root = cfg.get("root")
        if not isinstance(root, dict) or not isinstance(root.get("path"), str):
            raise ConfigError(field="root.path", reason="is required (Spec(rootfs=...) or spec.rootfs = ...)")
        from ocirun.jsonutil import dumps_indent

        path = os.path.join(bundle, "config.json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(dumps_indent(cfg, 2))
        os.rename(tmp, path)
        return bundle

    # --- process ----------------------------------------------------------
    @property
    def args(self):
        return list(self._process().get("args") or [])

    @args.setter
    def args(self, value):
        self._process()["args"] = _strings(value, "process.args", empty_ok=False)

    @property
    def env(self):
        """process.env as a dict: spec.env["K"] = "v" changes the spec."""
        items = {}
        for e in self._process().get("env") or []:
            k, _, v = e.partition("=")
            items[k] = v
        return Env(self, items)

    @env.setter
    def env(self, value):
        if isinstance(value, dict):
            e = Env(self, {})
            e.update(value)
            e._sync()
            return
        self._process()["env"] = _strings(value, "process.env")

    @property
    def cwd(self):
        return self._process().get("cwd", "/")

    @cwd.setter
    def cwd(self, value):
        self._process()["cwd"] = _abs_path(value, "process.cwd")

    @property
    def user(self):
        """(uid, gid); set an int (gid the same), a (uid, gid) pair or
        "uid[:gid]"."""
        u = self._process().get("user") or {}
        return u.get("uid", 0), u.get("gid", 0)

    @user.setter
    def user(self, value):
        if isinstance(value, str):
            uid, sep, gid = value.partition(":")
            if not uid.isdigit() or (sep and not gid.isdigit()):
                raise ConfigError(field="process.user", reason=f"{value!r} must be UID[:GID], numeric")
            value = (int(uid), int(gid) if sep else int(uid))
        elif isinstance(value, int) and not isinstance(value, bool):
            value = (value, value)
        if (not isinstance(value, tuple) or len(value) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32 - 1 for v in value)):
            raise ConfigError(field="process.user", reason=f"{value!r} must be a uid, a (uid, gid) pair or "
                              "'uid:gid'")
        u = self._process().setdefault("user", {})
        u["uid"], u["gid"] = value

    @property
    def additional_gids(self):
        return list((self._process().get("user") or {}).get("additionalGids") or [])

    @additional_gids.setter
    def additional_gids(self, value):
        gids = list(value)
        for i, g in enumerate(gids):
            if not isinstance(g, int) or isinstance(g, bool) or not 0 <= g < 2**32 - 1:
                raise ConfigError(field=f"process.user.additionalGids[{i}]", reason="must be a gid")
        self._process().setdefault("user", {})["additionalGids"] = gids

    @property
    def capabilities(self):
        """The bounding set (the others follow it when set here)."""
        return list((self._process().get("capabilities") or {}).get("bounding") or [])

    @capabilities.setter
    def capabilities(self, value):
        from ocirun.tables import CAPABILITIES as CAPS

        caps = []
        for i, c in enumerate(_strings(value, "process.capabilities")):
            name = c.upper() if c.upper().startswith("CAP_") else "CAP_" + c.upper()
            if name not in CAPS:
                raise ConfigError(field=f"process.capabilities[{i}]", reason=f"unknown capability {c!r}")
            if name not in caps:
                caps.append(name)
        cur = self._process().get("capabilities") or {}
        # ambient only where `ocirun spec` puts it (not rootless: runc)
        sets = ("bounding", "effective", "permitted") + (("ambient",) if "ambient" in cur else ())
        self._process()["capabilities"] = {k: list(caps) for k in sets}

    def add_capability(self, name):
        self.capabilities = self.capabilities + [name]
        return self

    def drop_capability(self, name):
        want = name.upper() if name.upper().startswith("CAP_") else "CAP_" + name.upper()
        self.capabilities = [c for c in self.capabilities if c != want]
        return self

    @property
    def no_new_privileges(self):
        return bool(self._process().get("noNewPrivileges"))

    @no_new_privileges.setter
    def no_new_privileges(self, value):
        self._process()["noNewPrivileges"] = bool(value)

    # --- root, hostname, namespaces ----------------------------------------
    @property
    def rootfs(self):
        return (self.config.get("root") or {}).get("path")

    @rootfs.setter
    def rootfs(self, value):
        if not isinstance(value, (str, os.PathLike)) or not str(value) or "\0" in str(value):
            raise ConfigError(field="root.path", reason=f"must be a directory path, got {value!r}")
        # from the current directory, now: the bundle is written elsewhere
        self.config.setdefault("root", {})["path"] = os.path.abspath(value)

    @property
    def readonly(self):
        return bool((self.config.get("root") or {}).get("readonly"))

    @readonly.setter
    def readonly(self, value):
        self.config.setdefault("root", {})["readonly"] = bool(value)

    @property
    def hostname(self):
        return self.config.get("hostname")

    @hostname.setter
    def hostname(self, value):
        if not isinstance(value, str) or "\0" in value or len(value) > 64:
            raise ConfigError(field="hostname", reason=f"{value!r} must be a string of at most 64 bytes")
        self.config["hostname"] = value
        self._namespace("uts", True)

    def _namespace(self, kind, new, path=None):
        lst = [n for n in self._linux().get("namespaces") or [] if n.get("type") != kind]
        if new:
            lst.append({"type": kind, "path": path} if path else {"type": kind})
            lst.sort(key=lambda n: _NS_ORDER.index(n["type"]) if n.get("type") in _NS_ORDER else 99)
        self._linux()["namespaces"] = lst

    @property
    def network(self):
        """"none": a network namespace of its own, loopback only (up, as
        runc leaves it; Container.connect reaches a port there); "host":
        the host's; a path: join that namespace (/var/run/netns/NAME)."""
        for n in self._linux().get("namespaces") or []:
            if n.get("type") == "network":
                return n.get("path") or "none"
        return "host"

    @network.setter
    def network(self, value):
        if value in (None, "none", False):
            self._namespace("network", True)
        elif value == "host":
            self._namespace("network", False)
        elif isinstance(value, str) and value.startswith("/"):
            self._namespace("network", True, value)
        else:
            raise ConfigError(field="linux.namespaces", reason=f"network {value!r}: must be 'none', 'host' "
                              "or the absolute path of a network namespace")

    # --- mounts -------------------------------------------------------------
    @property
    def mounts(self):
        return self.config.setdefault("mounts", [])

    def add_mount(self, destination, type, source, options=()):
        """Any mount, as config.json writes it."""
        _abs_path(destination, f"mounts[{len(self.mounts)}].destination")
        m = {"destination": destination, "type": type, "source": os.fspath(source)}
        if options:
            m["options"] = _strings(options, f"mounts[{len(self.mounts)}].options")
        self.mounts.append(m)
        return self

    def bind(self, source, destination, readonly=False, options=()):
        """Bind-mount a host path (recursively, nosuid, nodev)."""
        source = os.path.abspath(os.fspath(source))
        opts = ["rbind", "nosuid", "nodev", "ro" if readonly else "rw"] + list(options)
        return self.add_mount(destination, "bind", source, opts)

    def tmpfs(self, destination, size=None, options=()):
        opts = ["nosuid", "nodev", "mode=1777"] + list(options)
        if size is not None:
            opts.append(f"size={parse_size(size, f'mounts[{len(self.mounts)}].options')}")
        return self.add_mount(destination, "tmpfs", "tmpfs", opts)

    # --- limits (linux.resources) -------------------------------------------
    @property
    def memory(self):
        """Memory limit in bytes (an int or "64M"); swap is held to the same
        amount (no swap beyond it) unless memory_swap says otherwise."""
        return (self._resources().get("memory") or {}).get("limit")

    @memory.setter
    def memory(self, value):
        mem = self._resources().setdefault("memory", {})
        if value is None:
            mem.pop("limit", None)
            mem.pop("swap", None)
            return
        n = parse_size(value, "linux.resources.memory.limit")
        mem["limit"] = n
        mem["swap"] = n

    @property
    def memory_swap(self):
        """memory+swap in bytes (runtime-spec's swap), -1 for unlimited,
        None for none written."""
        return (self._resources().get("memory") or {}).get("swap")

    @memory_swap.setter
    def memory_swap(self, value):
        mem = self._resources().setdefault("memory", {})
        if value is None:  # no swap limit written (a host without swap accounting takes none)
            mem.pop("swap", None)
            return
        mem["swap"] = -1 if value == -1 else parse_size(value, "linux.resources.memory.swap")

    @property
    def pids(self):
        """Most processes (and threads) at once in the container."""
        return (self._resources().get("pids") or {}).get("limit")

    @pids.setter
    def pids(self, value):
        if value is None:
            self._resources().pop("pids", None)
            return
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(field="linux.resources.pids.limit", reason=f"must be a positive integer, got "
                              f"{value!r}")
        self._resources()["pids"] = {"limit": value}

    @property
    def cpus(self):
        """CPUs' worth of time per period (0.5: half of one CPU)."""
        cpu = self._resources().get("cpu") or {}
        if cpu.get("quota") and cpu.get("period"):
            return cpu["quota"] / cpu["period"]
        return None

    @cpus.setter
    def cpus(self, value):
        if value is None:
            cpu = self._resources().get("cpu") or {}
            cpu.pop("quota", None)
            cpu.pop("period", None)
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.01 <= value <= 1024:
            raise ConfigError(field="linux.resources.cpu.quota", reason=f"cpus must be a number of CPUs in "
                              f"[0.01, 1024], got {value!r}")
        cpu = self._resources().setdefault("cpu", {})
        cpu["period"] = 100000
        cpu["quota"] = int(value * 100000)

    def limits(self, memory=None, pids=None, cpus=None):
        """Set several limits at once (None leaves one as it is)."""
        if memory is not None:
            self.memory = memory
        if pids is not None:
            self.pids = pids
        if cpus is not None:
            self.cpus = cpus
        return self

    def __repr__(self):
        return f"Spec(rootfs={self.rootfs!r}, args={self.args!r})"
