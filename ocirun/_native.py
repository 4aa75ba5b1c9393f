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
