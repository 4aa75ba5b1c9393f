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


def _musl_dir():
    """Debian's musl-tools: /usr/lib/<arch>-linux-musl with its specs and the
    static-pie start file, or None."""
    try:
        triplet = subprocess.run([os.environ.get("CC", "cc"), "-dumpmachine"], capture_output=True, text=True,
                                 check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    d = "/usr/lib/" + triplet.replace("-gnu", "-musl")
    ok = all(os.path.exists(os.path.join(d, f)) for f in ("musl-gcc.specs", "rcrt1.o", "crti.o", "crtn.o", "libc.a"))
    return d if ok else None


def build_front(out):
    """Static-pie, so no dynamic loader runs on every state/start/kill/delete.
    Linked with musl when musl-tools is installed (starts in 0.2 ms against
    0.4 ms for static glibc, hyperfine on this VM), else with glibc.  Debian's
    musl-gcc cannot link static-pie, hence the explicit start files."""
    import tempfile

    os.makedirs(os.path.dirname(out), exist_ok=True)
    cc = os.environ.get("CC", "cc")
    musl = None if os.environ.get("OCIRUN_FRONT_LIBC") == "glibc" else _musl_dir()
    relro = ["-s", "-Wl,-z,relro,-z,now"]
    if not musl:
        subprocess.check_call([cc, *CFLAGS, "-o", out, *FRONT_SOURCES, "-static-pie", *relro], cwd=HERE)
        return

    def gccfile(name):
        return subprocess.run([cc, f"-print-file-name={name}"], capture_output=True, text=True,
                              check=True).stdout.strip()

    with tempfile.TemporaryDirectory() as tmp:
        objs = []
        for src in FRONT_SOURCES:
            obj = os.path.join(tmp, os.path.basename(src)[:-2] + ".o")
            subprocess.check_call([cc, "-specs", os.path.join(musl, "musl-gcc.specs"), *CFLAGS, "-c", src, "-o", obj],
                                  cwd=HERE)
            objs.append(obj)
        libgcc = subprocess.run([cc, "-print-libgcc-file-name"], capture_output=True, text=True,
                                check=True).stdout.strip()
        subprocess.check_call([cc, "-static-pie", "-nostdlib", "-nostartfiles", "-o", out,
                               os.path.join(musl, "rcrt1.o"), os.path.join(musl, "crti.o"), gccfile("crtbeginS.o"),
                               *objs, "-L" + musl, "-lc", libgcc, gccfile("crtendS.o"), os.path.join(musl, "crtn.o"),
                               *relro], cwd=HERE)


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
