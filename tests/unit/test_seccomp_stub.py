"""The ENOSYS stub ocirun puts in front of libseccomp's program (runc's
patchbpf): run through a small classic-BPF interpreter for the opcodes it
uses, for each architecture case, including those this host cannot run
(x32, i386, s390x)."""

import struct

from ocirun import seccomp as S

X86_64, I386, S390X = 0xC000003E, 0x40000003, 0x80000016
FALL_THROUGH = "filter"


def run(prog, nr, arch):
    """Evaluate the stub; returns its return value, or FALL_THROUGH when it
    jumps past its own end into the libseccomp program."""
    insns = [struct.unpack("=HBBI", prog[i:i + 8]) for i in range(0, len(prog), 8)]
    data = struct.pack("=iI", nr, arch)
    pc, acc = 0, 0
    while pc < len(insns):
        code, jt, jf, k = insns[pc]
        if code == S.BPF_LD_W_ABS:
            acc = struct.unpack_from("=I", data, k)[0]
            pc += 1
        elif code == S.BPF_RET_K:
            return k
        elif code == S.BPF_JA:
            pc += 1 + k
        else:
            cond = {S.BPF_JEQ_K: acc == k, S.BPF_JGT_K: acc > k, S.BPF_JSET_K: bool(acc & k)}[code]
            pc += 1 + (jt if cond else jf)
    assert pc == len(insns), "jumped beyond the stub's end"
    return FALL_THROUGH


ENOSYS = S.ACT_ERRNO | 38
DENY = S.ACT_ERRNO | 1


def test_native_only():
    prog = S._enosys_stub(DENY, {X86_64: {X86_64: 435}})
    assert run(prog, 435, X86_64) == FALL_THROUGH
    assert run(prog, 0, X86_64) == FALL_THROUGH
    assert run(prog, 436, X86_64) == ENOSYS and run(prog, 1000, X86_64) == ENOSYS
    # an x32 call when the profile has no x32: left to the filter (bad arch)
    assert run(prog, 0x40000000 | 1000, X86_64) == FALL_THROUGH
    assert run(prog, 1000, I386) == FALL_THROUGH  # an architecture the profile lacks


def test_x86_64_x32_and_i386():
    last = {X86_64: {X86_64: 450, S.SCMP_ARCH_X32: 0x40000000 | 547}, I386: {I386: 440}}
    prog = S._enosys_stub(DENY, last)
    assert run(prog, 450, X86_64) == FALL_THROUGH and run(prog, 451, X86_64) == ENOSYS
    assert run(prog, 0x40000000 | 547, X86_64) == FALL_THROUGH
    assert run(prog, 0x40000000 | 548, X86_64) == ENOSYS
    assert run(prog, 440, I386) == FALL_THROUGH and run(prog, 441, I386) == ENOSYS


def test_x32_only():
    prog = S._enosys_stub(DENY, {X86_64: {S.SCMP_ARCH_X32: 0x40000000 | 547}})
    assert run(prog, 1000, X86_64) == FALL_THROUGH  # not x32: the filter decides
    assert run(prog, 0x40000000 | 600, X86_64) == ENOSYS


def test_s390x_multiplexer():
    prog = S._enosys_stub(DENY, {S390X: {S390X: 450}})
    assert run(prog, 0, S390X) == ENOSYS  # an unknown number reaches the filter as setup(0)
    assert run(prog, 1, S390X) == FALL_THROUGH and run(prog, 451, S390X) == ENOSYS


def test_no_stub_for_allowing_defaults_or_enosys_default():
    last = {X86_64: {X86_64: 435}}
    for default in (S.ACT_ALLOW, S.ACT_LOG, S.ACT_TRACE | 1, ENOSYS):
        assert S._enosys_stub(default, last) == b""
    assert S._enosys_stub(S.ACT_KILL_PROCESS, last) != b""
    assert S._enosys_stub(DENY, {}) == b""
