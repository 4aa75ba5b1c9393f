"""Builds ocirun: the cffi extension (ocirun._native_c) and the C init
executable (csrc/init -> ocirun/libexec/ocirun-init)."""

import os
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
INIT_SOURCES = sorted(os.path.join("csrc", "init", f) for f in os.listdir(os.path.join(HERE, "csrc", "init"))
                      if f.endswith(".c"))
CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-D_FORTIFY_SOURCE=2", "-fstack-protector-strong", "-fPIE"]
LDFLAGS = ["-pie", "-Wl,-z,relro,-z,now"]


def build_init(out):
    os.makedirs(os.path.dirname(out), exist_ok=True)
    cc = os.environ.get("CC", "cc")
    subprocess.check_call([cc, *CFLAGS, "-o", out, *INIT_SOURCES, *LDFLAGS], cwd=HERE)


class BuildPy(build_py):
    def run(self):
        super().run()
        build_init(os.path.join(self.build_lib, "ocirun", "libexec", "ocirun-init"))


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["build_init"]:
        build_init(os.path.join(HERE, "ocirun", "libexec", "ocirun-init"))
        sys.exit(0)
    setup(cmdclass={"build_py": BuildPy}, cffi_modules=["ocirun/_native_build.py:ffibuilder", "ocirun/_seccomp_build.py:ffibuilder"])
