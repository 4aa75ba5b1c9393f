"""The only importer of the compiled cffi extension."""

import os

from ocirun._native_c import lib


def _check(r, what):
    if r < 0:
        raise OSError(-r, f"{what}: {os.strerror(-r)}")


def set_child_subreaper():
    _check(lib.ocirun_set_child_subreaper(), "PR_SET_CHILD_SUBREAPER")


def cloexec_from(first):
    _check(lib.ocirun_cloexec_from(first), "close_range")


def cgroup_device_attach(prog, cgroup_fd):
    """Load the eBPF device filter `prog` (bytes of struct bpf_insn) and
    attach it to the cgroup v2 directory fd."""
    from ocirun._native_c import ffi

    log = ffi.new("char[]", 65536)
    r = lib.ocirun_cgroup_device_attach(prog, len(prog) // 8, cgroup_fd, log, 65536)
    if r < 0:
        msg = ffi.string(log).decode(errors="replace").strip().splitlines()
        raise OSError(-r, os.strerror(-r), msg[-1] if msg else None)
