"""cffi (API mode) build of the parent-side helpers in csrc/core."""

import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
CORE = os.path.join(os.path.dirname(HERE), "csrc", "core")

ffibuilder = FFI()
with open(os.path.join(CORE, "native.h")) as f:
    ffibuilder.cdef("".join(line for line in f if not line.startswith("/*")))
ffibuilder.set_source(
    "ocirun._native_c",
    '#include "native.h"',
    sources=[os.path.relpath(os.path.join(CORE, f)) for f in ("native.c", "bpfdev.c", "idmap.c")],
    include_dirs=[os.path.relpath(CORE)],
    extra_compile_args=["-O2", "-Wall"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
