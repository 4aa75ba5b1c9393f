"""The only importer of the compiled cffi extension."""

import os

from ocirun._native_c import lib


def _check(r, what):
    if r < 0:
        raise OSError(-r, f"{what}: {os.strerror(-r)}")


def set_child_subreaper(on=True):
    _check(lib.ocirun_set_child_subreaper(1 if on else 0), "PR_SET_CHILD_SUBREAPER")


def set_pdeathsig(sig):
    _check(lib.ocirun_set_pdeathsig(sig), "PR_SET_PDEATHSIG")


def cgroup_device_attach(prog, cgroup_fd):
    """Load the eBPF device filter `prog` (bytes of struct bpf_insn) and
    attach it to the cgroup v2 directory fd."""
    from ocirun._native_c import ffi

    log = ffi.new("char[]", 65536)
    r = lib.ocirun_cgroup_device_attach(prog, len(prog) // 8, cgroup_fd, log, 65536)
    if r < 0:
        msg = ffi.string(log).decode(errors="replace").strip().splitlines()
        raise OSError(-r, os.strerror(-r), msg[-1] if msg else None)


def idmapped_tree(source, recursive, userns_fd):
    """A detached clone of `source` idmapped through the user namespace
    `userns_fd` (recursive: 1 = rbind, 2 = ridmap); returns its fd."""
    r = lib.ocirun_idmapped_tree(source.encode(), recursive, userns_fd)
    _check(r, f"idmapped mount of {source}")
    return r


def userns_fd(uid_map, gid_map):
    r = lib.ocirun_userns_fd(uid_map.encode(), gid_map.encode())
    _check(r, "creating a user namespace for the mount's mappings")
    return r
