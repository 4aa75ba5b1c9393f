"""Builds ocirun: the cffi extension (ocirun._native_c), the C init
executable (csrc/init -> ocirun/libexec/ocirun-init) and the front-end
(csrc/front -> ocirun/libexec/ocirun-front, installed as the `ocirun` command
by scripts/install.sh)."""

import os
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def sources(part):
    return sorted(os.path.join("csrc", part, f) for f in os.listdir(os.path.join(HERE, "csrc", part))
                  if f.endswith(".c"))


INIT_SOURCES = sources("init")
FRONT_SOURCES = sources("front")
CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-D_FORTIFY_SOURCE=2", "-fstack-protector-strong", "-fPIE"]
LDFLAGS = ["-pie", "-Wl,-z,relro,-z,now"]


def build_init(out):
    os.makedirs(os.path.dirname(out), exist_ok=True)
    cc = os.environ.get("CC", "cc")
    subprocess.check_call([cc, *CFLAGS, "-o", out, *INIT_SOURCES, *LDFLAGS], cwd=HERE)


def build_front(out):
    """Static: no dynamic loader work on every state/start/kill/delete."""
    os.makedirs(os.path.dirname(out), exist_ok=True)
    cc = os.environ.get("CC", "cc")
    subprocess.check_call([cc, *CFLAGS, "-o", out, *FRONT_SOURCES, "-static-pie", "-s", "-Wl,-z,relro,-z,now"], cwd=HERE)


class BuildPy(build_py):
    def run(self):
        super().run()
        build_init(os.path.join(self.build_lib, "ocirun", "libexec", "ocirun-init"))
        build_front(os.path.join(self.build_lib, "ocirun", "libexec", "ocirun-front"))


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["build_init"]:
        build_init(os.path.join(HERE, "ocirun", "libexec", "ocirun-init"))
        build_front(os.path.join(HERE, "ocirun", "libexec", "ocirun-front"))
        sys.exit(0)
    setup(cmdclass={"build_py": BuildPy}, cffi_modules=["ocirun/_native_build.py:ffibuilder", "ocirun/_seccomp_build.py:ffibuilder"])
