"""Device access rules: devices.allow/deny on v1, a BPF_PROG_TYPE_CGROUP_DEVICE
program on v2 (generated here the way runc's devicefilter does, loaded and
attached by csrc/core/bpfdev.c).

Every container with a cgroup starts from deny-all (runc's devices emulator
starts empty), whether or not linux.resources.devices is given; the config's
rules come next and runc's default allow list after them, so a config's
"deny all" is followed by the devices every container needs."""

import os
import struct

from ocirun.errors import CgroupError

P = "linux.resources.devices"

# runc's specconv.AllowedDevices (1.1): appended after the config's own
# rules; one with a path is dropped when linux.devices names that path (runc's
# createDevices: the config's node replaces the default one, and config nodes
# get no cgroup rule of their own).
DEFAULT_DEVICE_RULES = [
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm", "path": "/dev/null"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm", "path": "/dev/random"},
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm", "path": "/dev/full"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm", "path": "/dev/tty"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm", "path": "/dev/zero"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm", "path": "/dev/urandom"},
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
]


def effective_rules(rules, device_paths=()):
    """The config's rules, then the default ones it does not replace."""
    drop = set(device_paths)
    return list(rules) + [r for r in DEFAULT_DEVICE_RULES if r.get("path") not in drop or "path" not in r]


def v1_line(r):
    if r["type"] == "a" and "major" not in r and "minor" not in r:
        return "a"
    return f"{r['type']} {r.get('major', '*')}:{r.get('minor', '*')} {r['access']}"


def v1_writes(w, rules, device_paths=()):
    # a new v1 group inherits its parent's list (a *:* rwm under the root):
    # start from nothing
    w.add("devices", "devices.deny", "a", f"{P} (deny all first)")
    for i, r in enumerate(effective_rules(rules, device_paths)):
        field = f"{P}[{i}]" if i < len(rules) else f"{P} (default rule {v1_line(r)})"
        w.add("devices", "devices.allow" if r["allow"] else "devices.deny", v1_line(r), field)


# --- v2: eBPF ---------------------------------------------------------------------

_TYPE = {"b": 1, "c": 2}           # BPF_DEVCG_DEV_BLOCK / _CHAR
_ACC = {"m": 1, "r": 2, "w": 4}    # BPF_DEVCG_ACC_MKNOD / _READ / _WRITE


def _insn(code, dst=0, src=0, off=0, imm=0):
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


LDXW, AND32K, RSH32K, MOV32X, JNEK, MOV64K, EXIT = 0x61, 0x54, 0x74, 0xBC, 0x55, 0xB7, 0x95


def program(rules):
    """Compile rules (last match wins, as in the kernel's v1 list) into eBPF:
    the rules are emitted last-to-first, each returning its verdict on a
    match; an "a" wildcard rule ends the walk and becomes the default."""
    out = [
        _insn(LDXW, 2, 1, 0),      # r2 = ctx->access_type
        _insn(AND32K, 2, imm=0xFFFF),  # r2 = device type
        _insn(LDXW, 3, 1, 0),
        _insn(RSH32K, 3, imm=16),  # r3 = requested access
        _insn(LDXW, 4, 1, 4),      # r4 = major
        _insn(LDXW, 5, 1, 8),      # r5 = minor
    ]
    default = 0
    for r in reversed(rules):
        if r["type"] == "a" and "major" not in r and "minor" not in r and set(r["access"]) == set("rwm"):
            default = 1 if r["allow"] else 0
            break
        conds = []
        if r["type"] != "a":
            conds.append((JNEK, 2, _TYPE[r["type"]]))
        acc = 0
        for c in r["access"]:
            acc |= _ACC[c]
        if acc != 7:
            conds.append(None)  # mov r1 = r3; and r1 &= ~acc; jne r1 0
        for reg, key in ((4, "major"), (5, "minor")):
            if key in r:
                if r[key] > 0x7FFFFFFF:
                    raise CgroupError(f"{P}: {key} {r[key]} is too large")
                conds.append((JNEK, reg, r[key]))
        block_len = sum(3 if c is None else 1 for c in conds) + 2
        pos = 0
        for c in conds:
            if c is None:
                out.append(_insn(MOV32X, 1, 3))
                out.append(_insn(AND32K, 1, imm=(~acc) & 7))
                pos += 2
                out.append(_insn(JNEK, 1, off=block_len - pos - 1, imm=0))
            else:
                out.append(_insn(c[0], c[1], off=block_len - pos - 1, imm=c[2]))
            pos += 1
        out.append(_insn(MOV64K, 0, imm=1 if r["allow"] else 0))
        out.append(_insn(EXIT))
    out.append(_insn(MOV64K, 0, imm=default))
    out.append(_insn(EXIT))
    return b"".join(out)


def v2_prepare(w, rules, device_paths=()):
    prog = program(effective_rules(rules, device_paths))
    path = w.dir("cgroup", P)

    def attach():
        from ocirun import _native

        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            _native.cgroup_device_attach(prog, fd)
        except OSError as e:
            from ocirun.errors import strerror

            raise CgroupError(f"{P}: loading the device filter into {path}: {strerror(e.errno)}"
                              + (f": {e.filename}" if e.filename else "")) from None
        finally:
            os.close(fd)

    if not hasattr(w, "after"):
        w.after = []
    w.after.append(attach)
