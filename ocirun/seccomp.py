"""linux.seccomp -> a BPF program, compiled in the parent with libseccomp.

The C init only loads the bytes (SECCOMP_SET_MODE_FILTER).  Semantics follow
runc: unknown syscall names are skipped, rules whose action equals the
default action are skipped, ERRNO/TRACE default to EPERM, conditions that
repeat an argument index become separate rules, and libseccomp never sets
no_new_privs on its own (ocirun does that from process.noNewPrivileges).

Like runc (libcontainer/seccomp/patchbpf), a stub in front of libseccomp's
program makes a syscall numbered above every one the profile names for that
architecture fail with ENOSYS instead of the default action: libcs probe new
syscalls (clone3, faccessat2, openat2) and fall back only on ENOSYS.
libseccomp 2.5 cannot express "number > N" (rules match single numbers and
compare arguments only), so the stub is a few hand-assembled BPF
instructions prepended to the exported program (see _enosys_stub).
"""

import os
import struct

from ocirun.config import array as _list, obj as _obj, string as _str
from ocirun.errors import ConfigError, strerror
from ocirun.tables import (  # the names this module uses for them
    SECCOMP_ACT_ALLOW as ACT_ALLOW, SECCOMP_ACT_ERRNO as ACT_ERRNO, SECCOMP_ACT_KILL_PROCESS as ACT_KILL_PROCESS,
    SECCOMP_ACT_KILL_THREAD as ACT_KILL_THREAD, SECCOMP_ACT_LOG as ACT_LOG, SECCOMP_ACT_NOTIFY as ACT_NOTIFY,
    SECCOMP_ACT_TRACE as ACT_TRACE, SECCOMP_ACT_TRAP as ACT_TRAP, SECCOMP_ACTIONS as ACTIONS,
    SECCOMP_ARCHS as ARCHS, SECCOMP_FLAG_NEW_LISTENER as FLAG_NEW_LISTENER, SECCOMP_FLAGS as FLAGS,
    SECCOMP_OPERATORS as OPERATORS)

EPERM = 1
ENOSYS = 38

# classic BPF opcodes (linux/filter.h) and the offsets of struct seccomp_data
BPF_LD_W_ABS, BPF_JA, BPF_JEQ_K, BPF_JGT_K, BPF_JSET_K, BPF_RET_K = 0x20, 0x05, 0x15, 0x25, 0x45, 0x06
SECCOMP_DATA_NR, SECCOMP_DATA_ARCH = 0, 4
AUDIT_ARCH_X86_64 = 0xC000003E
SCMP_ARCH_X32 = 0x4000003E  # libseccomp's token; the kernel reports x32 as x86_64 with bit 30 in nr
X32_SYSCALL_BIT = 0x40000000
AUDIT_ARCH_S390, AUDIT_ARCH_S390X = 0x16, 0x80000016


class Compiled:
    def __init__(self, bpf, flags, notify, listener_path, metadata):
        self.bpf = bpf
        self.flags = flags
        self.notify = notify
        self.listener_path = listener_path
        self.metadata = metadata


def _action(name, errno_ret, field):
    if not isinstance(name, str) or name not in ACTIONS:
        raise ConfigError(f"{field}: unknown seccomp action {name!r}")
    a = ACTIONS[name]
    if a in (ACT_ERRNO, ACT_TRACE):
        ret = EPERM if errno_ret is None else errno_ret
        if isinstance(ret, bool) or not isinstance(ret, int) or not 0 <= ret <= 0xFFFF:
            raise ConfigError(f"{field}: errnoRet must be an integer in 0..65535")
        a |= ret
    elif errno_ret is not None:
        raise ConfigError(f"{field}: errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE")
    return a


def supported_flags():
    """Filter flags this kernel accepts (probed once per call, cheap)."""
    import ctypes

    ok = []
    libc = ctypes.CDLL(None, use_errno=True)
    for name, bit in FLAGS.items():
        # seccomp(SECCOMP_GET_ACTION_AVAIL) cannot probe flags; SET_MODE_FILTER
        # with a NULL program fails EFAULT for a known flag and EINVAL otherwise
        probe = bit | (FLAG_NEW_LISTENER if bit == FLAGS["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"] else 0)
        r = libc.syscall(317, 1, probe, None)
        if r < 0 and ctypes.get_errno() == 14:
            ok.append(name)
    return ok


def compile_profile(sc, field="linux.seccomp"):
    sc = _obj(sc, field)
    from ocirun._seccomp_c import ffi, lib

    default = _action(sc.get("defaultAction"), sc.get("defaultErrnoRet"), f"{field}.defaultAction")
    flags = 0
    for i, f in enumerate(_list(sc.get("flags"), f"{field}.flags")):
        if not isinstance(f, str) or f not in FLAGS:
            raise ConfigError(f"{field}.flags[{i}]: unknown seccomp flag {f!r}")
        flags |= FLAGS[f]
    listener = sc.get("listenerPath")
    if listener is not None and (not isinstance(listener, str) or not listener.startswith("/")):
        raise ConfigError(f"{field}.listenerPath: must be an absolute path")
    ctx = lib.seccomp_init(default)
    if ctx == ffi.NULL:
        raise ConfigError(f"{field}.defaultAction: libseccomp rejected it")
    notify = default & 0xFFFF0000 == ACT_NOTIFY
    tokens = [lib.seccomp_arch_native()]
    stub_names = []
    try:
        lib.seccomp_attr_set(ctx, lib.SCMP_FLTATR_CTL_NNP, 0)
        for i, arch in enumerate(_list(sc.get("architectures"), f"{field}.architectures")):
            if not isinstance(arch, str) or arch not in ARCHS:
                raise ConfigError(f"{field}.architectures[{i}]: unknown architecture {arch!r}")
            token = lib.seccomp_arch_resolve_name(arch[len("SCMP_ARCH_"):].lower().encode())
            if token == 0:
                raise ConfigError(f"{field}.architectures[{i}]: libseccomp does not know {arch}")
            tokens.append(token)
            r = lib.seccomp_arch_add(ctx, token)
            if r < 0 and r != -17:  # EEXIST: the native one
                raise ConfigError(f"{field}.architectures[{i}]: {strerror(-r)}")
        for i, rule in enumerate(_list(sc.get("syscalls"), f"{field}.syscalls")):
            rf = f"{field}.syscalls[{i}]"
            rule = _obj(rule, rf)
            act = _action(rule.get("action"), rule.get("errnoRet"), rf + ".action")
            if act & 0xFFFF0000 == ACT_NOTIFY:
                notify = True
            conds = []
            for j, a in enumerate(_list(rule.get("args"), f"{rf}.args")):
                af = f"{rf}.args[{j}]"
                a = _obj(a, af)
                idx = a.get("index")
                if isinstance(idx, bool) or not isinstance(idx, int) or not 0 <= idx <= 5:
                    raise ConfigError(f"{af}.index: must be 0..5")
                op = a.get("op")
                if not isinstance(op, str) or op not in OPERATORS:
                    raise ConfigError(f"{af}.op: unknown operator {op!r}")
                v1, v2 = a.get("value", 0), a.get("valueTwo", 0)
                for k, v in (("value", v1), ("valueTwo", v2)):
                    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 1 << 64:
                        raise ConfigError(f"{af}.{k}: must be an unsigned 64-bit integer")
                conds.append((idx, OPERATORS[op], v1, v2))
            names = rule.get("names") or []
            if isinstance(names, list):
                stub_names.extend(n for n in names if isinstance(n, str))
            if act == default:
                continue
            if not isinstance(names, list) or not names:
                raise ConfigError(f"{rf}.names: must be a non-empty array")
            indexes = [c[0] for c in conds]
            groups = [[c] for c in conds] if len(set(indexes)) != len(indexes) else [conds]
            for name in names:
                if not isinstance(name, str):
                    raise ConfigError(f"{rf}.names: must be strings")
                nr = lib.seccomp_syscall_resolve_name(name.encode())
                if nr == -1:  # __NR_SCMP_ERROR: unknown here, skipped as runc does
                    continue
                for g in groups:
                    arr = ffi.new("struct scmp_arg_cmp[]", max(1, len(g)))
                    for k, (idx, op, v1, v2) in enumerate(g):
                        arr[k].arg, arr[k].op, arr[k].datum_a, arr[k].datum_b = idx, op, v1, v2
                    r = lib.seccomp_rule_add_array(ctx, act, nr, len(g), arr)
                    if r < 0:
                        raise ConfigError(f"{rf}: adding rule for {name}: {strerror(-r)}")
        if notify:
            if not listener:
                raise ConfigError(f"{field}.listenerPath: SCMP_ACT_NOTIFY needs a listener path")
            flags |= FLAG_NEW_LISTENER
        fd = os.memfd_create("ocirun-seccomp", os.MFD_CLOEXEC)
        try:
            r = lib.seccomp_export_bpf(ctx, fd)
            if r < 0:
                raise ConfigError(f"{field}: exporting the filter: {strerror(-r)}")
            size = os.fstat(fd).st_size
            bpf = os.pread(fd, size, 0)
        finally:
            os.close(fd)
        bpf = _enosys_stub(default, _last_syscalls(lib, tokens, stub_names)) + bpf
    finally:
        lib.seccomp_release(ctx)
    meta = _str(sc.get("listenerMetadata"), f"{field}.listenerMetadata") or ""
    return Compiled(bpf, flags, notify, listener, meta)


def _last_syscalls(lib, tokens, names):
    """{audit arch: {libseccomp arch token: the highest syscall number the
    profile names for it}} -- runc's findLastSyscalls: the native
    architecture always counts, names unknown for an architecture and
    multiplexed pseudo-syscalls (negative numbers, e.g. socket on x86) are
    ignored, and x32 (bit 30 set) is kept apart from x86_64."""
    out = {}
    encoded = [n.encode() for n in dict.fromkeys(names)]
    for token in dict.fromkeys(tokens):
        top = 0
        for n in encoded:
            nr = lib.seccomp_syscall_resolve_name_arch(token, n)
            if nr > top:
                top = nr
        if top:
            audit = AUDIT_ARCH_X86_64 if token == SCMP_ARCH_X32 else token
            out.setdefault(audit, {})[token] = top
    return out


def _enosys_stub(default, last):
    """BPF instructions that return ENOSYS for a syscall numbered above the
    profile's highest for the calling architecture and fall through to the
    libseccomp program otherwise.  None when the default action already lets
    unknown syscalls through (ALLOW, LOG, TRACE: runc's isAllowAction) or is
    ENOSYS itself."""
    if not last or (default & 0xFFFF0000) in (ACT_ALLOW, ACT_LOG, ACT_TRACE) or default == ACT_ERRNO | ENOSYS:
        return b""
    # (code, jt, jf, k) with jt/jf either 0 or a label; labels resolve to
    # instruction indexes; FILTER is the first instruction after the stub
    prog, labels = [], {}

    def emit(code, k, jt=0, jf=0):
        prog.append((code, jt, jf, k))

    emit(BPF_LD_W_ABS, SECCOMP_DATA_ARCH)
    for audit in last:
        emit(BPF_JEQ_K, audit, jt=("arch", audit))
    emit(BPF_JA, "FILTER")
    for audit, tops in last.items():
        labels[("arch", audit)] = len(prog)
        emit(BPF_LD_W_ABS, SECCOMP_DATA_NR)
        if audit == AUDIT_ARCH_X86_64:
            native, x32 = tops.get(AUDIT_ARCH_X86_64), tops.get(SCMP_ARCH_X32)
            if native and x32:
                emit(BPF_JSET_K, X32_SYSCALL_BIT, jt=("x32", audit))
                emit(BPF_JGT_K, native, jt="ENOSYS", jf="FILTER")
                labels[("x32", audit)] = len(prog)
                emit(BPF_JGT_K, x32, jt="ENOSYS", jf="FILTER")
            elif native:  # an x32 call is left to the filter (bad arch)
                emit(BPF_JSET_K, X32_SYSCALL_BIT, jt="FILTER")
                emit(BPF_JGT_K, native, jt="ENOSYS", jf="FILTER")
            else:
                emit(BPF_JSET_K, X32_SYSCALL_BIT, jf="FILTER")
                emit(BPF_JGT_K, x32, jt="ENOSYS", jf="FILTER")
            continue
        (top,) = tops.values()
        if audit in (AUDIT_ARCH_S390, AUDIT_ARCH_S390X):
            # a number the kernel does not know reaches the filter as 0
            # (setup, the multiplexer for large numbers): ENOSYS, as runc
            emit(BPF_JEQ_K, 0, jt="ENOSYS")
        emit(BPF_JGT_K, top, jt="ENOSYS", jf="FILTER")
    labels["ENOSYS"] = len(prog)
    emit(BPF_RET_K, ACT_ERRNO | ENOSYS)
    labels["FILTER"] = len(prog)
    out = []
    for i, (code, jt, jf, k) in enumerate(prog):
        if code == BPF_JA:
            k, jt, jf = labels[k] - i - 1, 0, 0
        else:
            jt = labels[jt] - i - 1 if jt else 0
            jf = labels[jf] - i - 1 if jf else 0
        if not (0 <= jt <= 255 and 0 <= jf <= 255):  # cannot happen: the stub is < 200 instructions
            raise ConfigError("linux.seccomp: the ENOSYS stub does not fit in short jumps")
        out.append(struct.pack("=HBBI", code, jt, jf, k))
    return b"".join(out)


def libseccomp_version():
    from ocirun._seccomp_c import lib

    v = lib.seccomp_version()
    return f"{v.major}.{v.minor}.{v.micro}"
