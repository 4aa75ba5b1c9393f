"""The systemd cgroup driver (--systemd-cgroup), runc's semantics
(libcontainer/cgroups/systemd, 1.1): a container's cgroup is a transient
scope unit that systemd creates with the init's pid in it and delegates
(Delegate=yes); the limits systemd owns go in as unit properties, and every
limit is also written to the scope's own files by the cgroupfs code (as runc
does: systemd rounds some values, and a controller systemd cannot enable
must not leave a limit silently unenforced).

linux.cgroupsPath is "slice:prefix:name": the unit is "prefix-name.scope"
("name.scope" when prefix is empty, "name" itself when it ends in .scope)
in the slice (system.slice when empty; nested slices are expanded the way
systemd does: a-b.slice lives in a.slice).  With no cgroupsPath the unit is
"ocirun-<id>.scope" in system.slice (runc: "runc-<id>.scope").

The description kept in the container's state carries
    "systemd": {"unit": ..., "slice": ..., "props": [annotation props],
                "started": bool, "pending": [linux.devices paths] | absent}
next to the cgroupfs fields, so later commands need no --systemd-cgroup.
This module is imported only for such containers (and jeepney, by sdbus,
only when a call is made).
"""

import os
import re

from ocirun.errors import CgroupError

U64 = 2**64 - 1
DEFAULT_SLICE = "system.slice"
DEFAULT_PREFIX = "ocirun"
ANNOTATION = "org.systemd.property."
_UNIT_CHARS = re.compile(r"^[A-Za-z0-9:_.\\-]+$")


# --- names ---------------------------------------------------------------------

def expand_slice(slice_):
    """systemd's slice path: "a-b.slice" -> "/a.slice/a-b.slice", "-.slice"
    -> "/" (runc's ExpandSlice, with its checks)."""
    suffix = ".slice"
    if len(slice_) <= len(suffix) - 1 or not slice_.endswith(suffix) or "/" in slice_:
        raise CgroupError(f'linux.cgroupsPath: invalid slice name "{slice_}"')
    name = slice_[:-len(suffix)]
    if name == "-":
        return "/"
    if not name or not _UNIT_CHARS.match(slice_):
        raise CgroupError(f'linux.cgroupsPath: invalid slice name "{slice_}"')
    path, prefix = "", ""
    for comp in name.split("-"):
        if not comp:
            raise CgroupError(f'linux.cgroupsPath: invalid slice name "{slice_}"')
        path += "/" + prefix + comp + suffix
        prefix += comp + "-"
    return path


def parse_path(cgroups_path, cid):
    """linux.cgroupsPath -> (slice, unit name)."""
    if cgroups_path is not None and not isinstance(cgroups_path, str):
        raise CgroupError("linux.cgroupsPath: must be a string")
    if not cgroups_path:
        slice_, prefix, name = "", DEFAULT_PREFIX, cid
    else:
        parts = cgroups_path.split(":")
        if len(parts) != 3:
            raise CgroupError(f'linux.cgroupsPath: expected cgroupsPath to be of format "slice:prefix:name" for '
                              f'systemd cgroups, got "{cgroups_path}" instead')
        slice_, prefix, name = parts
    slice_ = slice_ or DEFAULT_SLICE
    expand_slice(slice_)
    if name.endswith(".slice"):
        raise CgroupError(f'linux.cgroupsPath: "{name}" names a slice, which cannot hold the container\'s '
                          "processes; name a scope")
    if not name:
        raise CgroupError(f'linux.cgroupsPath: "{cgroups_path}": the name part is empty')
    if name.endswith(".scope") and not prefix:
        unit = name
    else:
        unit = f"{prefix}-{name}.scope" if prefix else f"{name}.scope"
    if len(unit) > 255 or not _UNIT_CHARS.match(unit) or unit.startswith("-") or ".." in unit:
        raise CgroupError(f'linux.cgroupsPath: "{unit}" is not a valid systemd unit name')
    return slice_, unit


def init_paths():
    """{controllers: path} of PID 1's groups, as runc's getSubsystemPath
    reads them (systemd >= 226 sits in init.scope, not the root)."""
    res = {}
    try:
        with open("/proc/1/cgroup") as f:
            for line in f.read().splitlines():
                _hid, ctrls, path = line.split(":", 2)
                p = os.path.normpath(path)
                if p.endswith("/init.scope") or p == "/init.scope":
                    p = os.path.dirname(p)
                res[ctrls] = p
    except OSError:
        pass
    return res


# --- linux.resources -> unit properties (runc 1.1's conversions) ---------------------

def range_to_bits(text, field):
    """"0-2,5" -> systemd's AllowedCPUs bytes (byte i holds bits 8i..8i+7;
    runc 1.1.6's RangeToBits)."""
    bits = 0
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise CgroupError(f"{field}: {text!r} conversion error: bad number in {part!r}") from None
        if a < 0 or b < a or b >= 2**32:
            raise CgroupError(f"{field}: {text!r} conversion error: invalid range {part!r}")
        for i in range(a, b + 1):
            bits |= 1 << i
    if not bits:
        raise CgroupError(f"{field}: {text!r} conversion error: empty value")
    return bits.to_bytes((bits.bit_length() + 7) // 8, "little")


def _cpu_quota(props, quota, period, version):
    if period:
        if version >= 242:
            props.append(("CPUQuotaPeriodUSec", ("t", period)))
    if quota or period:
        per_sec = U64
        if quota > 0:
            per_sec = quota * 1000000 // (period or 100000)
            if per_sec % 10000:
                per_sec = (per_sec // 10000 + 1) * 10000
        props.append(("CPUQuotaPerSecUSec", ("t", per_sec)))


def _cpuset(props, cpus, mems, version, f="linux.resources.cpu"):
    if cpus:
        bits = range_to_bits(cpus, f + ".cpus")
        if version >= 244:
            props.append(("AllowedCPUs", ("ay", bits)))
    if mems:
        bits = range_to_bits(mems, f + ".mems")
        if version >= 244:
            props.append(("AllowedMemoryNodes", ("ay", bits)))


def _u64(v):
    return v & U64  # Go's uint64(int64): -1 is systemd's infinity


def _unified_props(props, unified, version):
    """runc's unifiedResToSystemdProps: the keys systemd knows; the rest is
    only written to the files."""
    names = {"memory.high": "MemoryHigh", "memory.low": "MemoryLow", "memory.min": "MemoryMin",
             "memory.max": "MemoryMax", "memory.swap.max": "MemorySwapMax"}
    for k, v in unified.items():
        f = f"linux.resources.unified.{k}"
        v = v.strip()
        try:
            if k == "cpu.max":
                sv = v.split()
                if not 1 <= len(sv) <= 2:
                    raise CgroupError(f"{f}: value invalid: {v!r}")
                quota = 0 if sv[0] == "max" else int(sv[0])
                period = int(sv[1]) if len(sv) == 2 else 100000
                if period < 0:
                    raise ValueError
                _cpu_quota(props, quota, period, version)
            elif k == "cpu.weight":
                n = int(v)
                if n < 0:
                    raise ValueError
                props.append(("CPUWeight", ("t", n)))
            elif k in ("cpuset.cpus", "cpuset.mems"):
                bits = range_to_bits(v, f)
                if version >= 244:
                    props.append(("AllowedCPUs" if k == "cpuset.cpus" else "AllowedMemoryNodes", ("ay", bits)))
            elif k in names or k == "pids.max":
                n = U64 if v == "max" else int(v)
                if not 0 <= n <= U64:
                    raise ValueError
                props.append((names.get(k, "TasksMax"), ("t", n)))
        except ValueError:
            raise CgroupError(f"{f}: value conversion error: {v!r}") from None


def _proc_devices():
    groups = {"b": {}, "c": {}}
    cur = None
    try:
        with open("/proc/devices") as fh:
            for line in fh:
                line = line.strip()
                if line == "Block devices:":
                    cur = "b"
                elif line == "Character devices:":
                    cur = "c"
                elif line and cur:
                    num, _, name = line.partition(" ")
                    if num.isdigit():
                        groups[cur].setdefault(int(num), name.strip())
    except OSError:
        pass
    return groups


def device_props(rules, warn=None):
    """runc's generateDeviceProperties: the effective rules (deny-all first,
    the config's, runc's defaults) simplified by its emulator, as
    DevicePolicy=strict + DeviceAllow entries.  systemd has no deny lists: a
    rule set that ends in allow-all-but is given as strict with no entries
    (the cgroup's own device program, which the cgroupfs code loads as for
    any container, holds the real rules)."""
    warn = warn or (lambda m: None)
    allow_all = False
    allowed = {}  # (type, major, minor) -> perms (whitelist mode)
    denied = {}   # blacklist mode
    for r in rules:
        t, ma, mi = r["type"], r.get("major", -1), r.get("minor", -1)
        acc = set(r["access"])
        if t == "a":
            # a wildcard type rule switches the default and drops the rest
            allow_all = r["allow"]
            allowed, denied = {}, {}
            continue
        key = (t, ma, mi)
        if not allow_all:
            if r["allow"]:
                allowed[key] = allowed.get(key, set()) | acc
            elif key in allowed:
                allowed[key] -= acc
                if not allowed[key]:
                    del allowed[key]
        else:
            if r["allow"]:
                if key in denied:
                    denied[key] -= acc
                    if not denied[key]:
                        del denied[key]
            else:
                denied[key] = denied.get(key, set()) | acc
    if allow_all:
        if not denied:
            return [("DevicePolicy", ("s", "auto")), ("DeviceAllow", ("a(ss)", []))]
        warn("systemd doesn't support blacklist device rules -- applying temporary deny-all rule")
        return [("DevicePolicy", ("s", "strict")), ("DeviceAllow", ("a(ss)", []))]
    groups = None
    entries = []
    for (t, ma, mi), acc in allowed.items():
        perms = "".join(c for c in "rwm" if c in acc)
        prefix = "block-" if t == "b" else "char-"
        if ma == -1:
            if mi != -1:
                warn(f"systemd doesn't support '*:n' device rules -- temporarily ignoring rule {t} *:{mi} {perms}")
                continue
            path = prefix + "*"
        elif mi == -1:
            if groups is None:
                groups = _proc_devices()
            name = groups[t].get(ma)
            if not name:
                warn(f"could not find device group for '{t}/{ma}' in /proc/devices -- temporarily ignoring rule")
                continue
            path = prefix + name
        else:
            path = f"/dev/{'block' if t == 'b' else 'char'}/{ma}:{mi}"
            if not os.path.exists(path) and not os.path.exists("/sys" + path):
                continue
        entries.append((path, perms))
    return [("DevicePolicy", ("s", "strict")), ("DeviceAllow", ("a(ss)", entries))]


def resource_props(res, cg_version, sd_version, *, devices=None, warn=None):
    """A normalised linux.resources -> [(name, (signature, value))], runc
    1.1's genV2ResourcesProperties / genV1ResourcesProperties.  `devices`:
    the effective device rules (None: leave them alone, as update does)."""
    from ocirun.cgroups.resources import shares_to_weight, swap_to_v2

    props = []
    if devices is not None:
        props += device_props(devices, warn)
    mem = res.get("memory", {})
    cpu = res.get("cpu", {})
    limit = mem.get("limit", 0)
    if cg_version == 2:
        if limit:
            props.append(("MemoryMax", ("t", _u64(limit))))
        if mem.get("reservation"):
            props.append(("MemoryLow", ("t", _u64(mem["reservation"]))))
        swap = swap_to_v2(mem.get("swap", 0), limit)
        if swap:
            props.append(("MemorySwapMax", ("t", _u64(swap))))
        if cpu.get("shares"):
            props.append(("CPUWeight", ("t", shares_to_weight(cpu["shares"]))))
    else:
        if limit:
            props.append(("MemoryLimit", ("t", _u64(limit))))
        if cpu.get("shares"):
            props.append(("CPUShares", ("t", cpu["shares"])))
    _cpu_quota(props, cpu.get("quota", 0), cpu.get("period", 0), sd_version)
    if cg_version == 1 and res.get("blockIO", {}).get("weight"):
        props.append(("BlockIOWeight", ("t", res["blockIO"]["weight"])))
    pl = res.get("pids", {}).get("limit")
    if pl is not None and (pl > 0 or pl == -1):
        props.append(("TasksMax", ("t", _u64(pl))))
    _cpuset(props, cpu.get("cpus"), cpu.get("mems"), sd_version)
    if cg_version == 2 and res.get("unified"):
        _unified_props(props, res["unified"], sd_version)
    elif cg_version == 1 and res.get("unified"):
        raise CgroupError("linux.resources.unified: invalid configuration: cannot use unified on cgroup v1")
    return props


# --- org.systemd.property.* annotations ------------------------------------------

_INT_RANGES = {"y": (0, 255), "n": (-2**15, 2**15 - 1), "q": (0, 2**16 - 1), "i": (-2**31, 2**31 - 1),
               "u": (0, 2**32 - 1), "x": (-2**63, 2**63 - 1), "t": (0, U64)}
_KEYWORDS = {"boolean": "b", "byte": "y", "int16": "n", "uint16": "q", "int32": "i", "uint32": "u",
             "int64": "x", "uint64": "t", "double": "d", "string": "s"}
_BASIC = set("bynqiuxtds")


class _Unsupported(Exception):
    pass


class _VariantParser:
    """The subset of GVariant's text format that systemd properties take
    (what runc's godbus ParseVariant accepts for them): booleans, numbers
    (an untyped integer is int32, with a '.' or exponent a double), typed
    numbers ("uint64 5", "@t 5"), single- or double-quoted strings, and
    arrays of those ("['a', 'b']", "@as []").  Anything else (tuples,
    dictionaries, variants, object paths, byte strings) is refused."""

    def __init__(self, text):
        self.s = text
        self.i = 0

    def parse(self):
        v = self.value(None)
        self.ws()
        if self.i != len(self.s):
            raise ValueError(f"unexpected {self.s[self.i:self.i + 10]!r}")
        return v

    def ws(self):
        while self.i < len(self.s) and self.s[self.i] in " \t\n":
            self.i += 1

    def value(self, want):
        self.ws()
        s = self.s
        if self.i >= len(s):
            raise ValueError("missing value")
        c = s[self.i]
        if c == "@":
            j = self.i + 1
            while j < len(s) and s[j] not in " \t[":
                j += 1
            sig = s[self.i + 1:j]
            if not (sig in _BASIC or (len(sig) == 2 and sig[0] == "a" and sig[1] in _BASIC)):
                raise _Unsupported(f"type @{sig}")
            if want is not None and sig != want:
                raise ValueError(f"type @{sig} where {want} is expected")
            self.i = j
            return self.value(sig)
        m = re.match(r"[a-z][a-z0-9]*", s[self.i:])
        if m and m.group(0) in _KEYWORDS:
            sig = _KEYWORDS[m.group(0)]
            if want is not None and sig != want:
                raise ValueError(f"{m.group(0)} where {want} is expected")
            self.i += m.end()
            return self.value(sig)
        if m and m.group(0) in ("true", "false"):
            if want not in (None, "b"):
                raise ValueError(f"boolean where {want} is expected")
            self.i += m.end()
            return ("b", m.group(0) == "true")
        if m:
            raise _Unsupported(f"{m.group(0)!r}")
        if c in "'\"":
            if want not in (None, "s"):
                raise ValueError(f"string where {want} is expected")
            return ("s", self.string(c))
        if c == "[":
            return self.array(want)
        if c in "-+0123456789.":
            return self.number(want)
        raise _Unsupported(f"{c!r}")

    def string(self, q):
        s, out = self.s, []
        self.i += 1
        esc = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b", "f": "\f",
               "v": "\v"}
        while True:
            if self.i >= len(s):
                raise ValueError("unterminated string")
            c = s[self.i]
            self.i += 1
            if c == q:
                return "".join(out)
            if c == "\\":
                if self.i >= len(s):
                    raise ValueError("unterminated string")
                e = s[self.i]
                self.i += 1
                if e in esc:
                    out.append(esc[e])
                elif e in "uU":
                    n = 4 if e == "u" else 8
                    h = s[self.i:self.i + n]
                    if len(h) != n or any(ch not in "0123456789abcdefABCDEF" for ch in h):
                        raise ValueError("bad \\u escape")
                    out.append(chr(int(h, 16)))
                    self.i += n
                else:
                    raise ValueError(f"unknown escape \\{e}")
            else:
                out.append(c)

    def number(self, want):
        m = re.match(r"[-+]?[0-9.]+([eE][-+]?[0-9]+)?", self.s[self.i:])
        if not m:
            raise ValueError("bad number")
        text = m.group(0)
        self.i += m.end()
        is_float = any(ch in text for ch in ".eE")
        sig = want or ("d" if is_float else "i")
        if sig == "d":
            return ("d", float(text))
        if sig not in _INT_RANGES or is_float:
            raise ValueError(f"{text} is not a {sig}")
        n = int(text)
        lo, hi = _INT_RANGES[sig]
        if not lo <= n <= hi:
            raise ValueError(f"{text} is out of range for type {sig}")
        return (sig, n)

    def array(self, want):
        if want is not None and not want.startswith("a"):
            raise ValueError(f"array where {want} is expected")
        elem = want[1:] if want else None
        self.i += 1
        items = []
        self.ws()
        if self.i < len(self.s) and self.s[self.i] == "]":
            self.i += 1
            if elem is None:
                raise ValueError("an empty array needs a type: @as []")
            return ("a" + elem, [])
        while True:
            sig, v = self.value(elem)
            if sig.startswith("a"):
                raise _Unsupported("nested arrays")
            elem = sig
            items.append(v)
            self.ws()
            if self.i < len(self.s) and self.s[self.i] == ",":
                self.i += 1
                continue
            if self.i < len(self.s) and self.s[self.i] == "]":
                self.i += 1
                return ("a" + elem, items)
            raise ValueError("expected ',' or ']' in array")


def parse_variant(text):
    return _VariantParser(text).parse()


def annotation_props(annotations):
    """org.systemd.property.<Name> annotations -> unit properties, in the
    order the config gives them; runc's initSystemdProps (name of 3+ ASCII
    letters, value a GVariant text, xxxSec given in seconds becomes
    xxxUSec)."""
    props = []
    for k, v in (annotations or {}).items():
        if not isinstance(k, str) or not k.startswith(ANNOTATION):
            continue
        name = k[len(ANNOTATION):]
        if len(name) < 3 or not name.isascii() or not name.isalpha():
            raise CgroupError(f"annotations.{k}: name incorrect: a systemd property name is 3 or more letters")
        if not isinstance(v, str):
            raise CgroupError(f"annotations.{k}: value must be a string")
        try:
            sig, val = parse_variant(v)
        except _Unsupported as e:
            raise CgroupError(f"annotations.{k}: value {v!r}: {e} not supported (booleans, numbers, strings "
                              "and arrays of them are)") from None
        except (ValueError, OverflowError) as e:
            raise CgroupError(f"annotations.{k}: value {v!r} parse error: {e}") from None
        if name.endswith("Sec") and len(name) > 3 and "a" <= name[-4] <= "z":
            if sig not in _INT_RANGES and sig != "d":
                raise CgroupError(f"annotations.{k}: value {v!r} parse error: not a number")
            if val < 0:
                raise CgroupError(f"annotations.{k}: value {v!r}: must not be negative")
            name = name[:-3] + "USec"
            sig, val = "t", min(int(val * 1000000), U64)
        props.append([name, [sig, val]])
    return props


# --- talking to systemd ------------------------------------------------------------

def manager(unit):
    from ocirun.cgroups import sdbus

    return sdbus.Manager(f"unit {unit}")


def version(mgr):
    """systemd's version number (0 when it does not say)."""
    try:
        v = mgr.manager_property("Version")
    except CgroupError:
        return 0
    m = re.search(r"v?([0-9]+)", v if isinstance(v, str) else "")
    return int(m.group(1)) if m else 0


def start_unit(desc, pid, rules, warn=None, debug=None):
    """Start the container's unit with `pid` in it (runc's Apply: scope in
    its slice, Delegate=yes, accounting on, no default dependencies), with
    the limits systemd owns and the annotations' properties last; on v2 the
    group's path is taken from the unit's ControlGroup."""
    sd = desc["systemd"]
    unit = sd["unit"]
    v2 = desc["version"] == 2
    props = [("Description", ("s", f"ocirun container {unit}")),
             ("Slice", ("s", sd["slice"])), ("Delegate", ("b", True)),
             ("PIDs", ("au", [pid])),
             ("MemoryAccounting", ("b", True)), ("CPUAccounting", ("b", True)),
             ("IOAccounting" if v2 else "BlockIOAccounting", ("b", True)), ("TasksAccounting", ("b", True)),
             ("DefaultDependencies", ("b", False))]
    with manager(unit) as mgr:
        sdv = version(mgr)
        props += resource_props(desc.get("resources") or {}, desc["version"], sdv, devices=rules, warn=warn)
        props += [(n, (sig, v)) for n, (sig, v) in sd.get("props", [])]
        mgr.start_transient(unit, props)
        sd["started"] = True
        if v2:
            cgp = mgr.unit_property(unit, "org.freedesktop.systemd1.Scope", "ControlGroup")
            mp = next(iter(desc["paths"]))
            if isinstance(cgp, str) and cgp.startswith("/"):
                got = os.path.normpath(mp + cgp)
                if got != desc["paths"][mp]:
                    if debug:
                        debug(f"unit {unit}: systemd placed it at {got}, not {desc['paths'][mp]}")
                    desc["paths"][mp] = got
                    desc["made"] = [got]


def set_properties(desc, res):
    """update: the limits systemd owns, at runtime (SetUnitProperties)."""
    resource_props(res, desc["version"], 999)  # conversion errors before anything changes
    unit = desc["systemd"]["unit"]
    with manager(unit) as mgr:
        mgr.set_properties(unit, resource_props(res, desc["version"], version(mgr)))


def stop_unit(desc):
    """StopUnit and wait for it; systemd kills what is left in the scope and
    removes its cgroup."""
    unit = desc["systemd"]["unit"]
    with manager(unit) as mgr:
        mgr.stop(unit)
