#!/bin/sh
# Installs what ocirun needs on Debian 12 (as root): build tools, libseccomp,
# busybox-static for example/test rootfs; then ocirun itself with pip, and
# builds the example bundle's rootfs.  Idempotent.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
apt_need gcc libc6-dev musl-tools libseccomp-dev busybox-static file python3-dev iproute2 procps
# `ocirun validate`'s schema checks on the runtime's own interpreter (never
# imported by create/run)
apt_need python3-jsonschema
# The interpreter the runtime runs on: the system's own by default (Debian's
# python3.11 links libpython statically and has _socket, _struct, select and
# fcntl built in: about 1 ms less per command than a shared-libpython build,
# measured in docs/performance.md); PYTHON=... picks another.
if [ -z "${PYTHON:-}" ] && [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=${PYTHON:-python3}; fi
# Debian's own interpreter comes without pip
$PY -m pip --version >/dev/null 2>&1 || apt_need python3-pip
PIPFLAGS=$(pip_flags)
$PY -m pip install -q $PIPFLAGS --upgrade "cffi>=1.15" "setuptools>=61" wheel >/dev/null 2>&1
$PY -m pip install -q $PIPFLAGS --no-build-isolation . >/dev/null 2>&1 || $PY -m pip install $PIPFLAGS --no-build-isolation .
# What engines call, /usr/local/bin/ocirun, is the C front-end (csrc/front):
# it answers state/start/kill/delete itself and hands everything else to the
# Python CLI, /usr/local/libexec/ocirun/ocirun-py: the interpreter in isolated
# mode without `site` (no PYTHON* variables, no .pth or sitecustomize code;
# site alone costs 30-50 ms here), with the one directory ocirun lives in.
# PREFIX=DIR installs the pair under DIR instead of /usr/local (a private
# copy, e.g. for a work tree's own tests: OCIRUN=DIR/bin/ocirun).
export OCIRUN_INSTALL_PREFIX="${PREFIX:-/usr/local}"
(cd / && $PY - <<'PYEOF'
import os, shutil, sys, ocirun
prefix = os.environ["OCIRUN_INSTALL_PREFIX"]
pkg = os.path.dirname(os.path.abspath(ocirun.__file__))
site_dir = os.path.dirname(pkg)
import _cffi_backend
cffi_dir = os.path.dirname(os.path.abspath(_cffi_backend.__file__))
paths = [site_dir] + ([cffi_dir] if cffi_dir != site_dir else [])
text = (f"#!{os.path.realpath(sys.executable)} -IS\n"
        "# ocirun's Python CLI, written by scripts/install.sh\n"
        "import sys\n"
        f"sys.path[:0] = {paths!r}\n"
        "from ocirun.cli import run_main\n"
        "run_main()\n")


def install(path, data=None, src=None):
    os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    if src:
        shutil.copyfile(src, tmp)
    else:
        with open(tmp, "w") as f:
            f.write(data)
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)


install(f"{prefix}/libexec/ocirun/ocirun-py", data=text)
install(f"{prefix}/bin/ocirun", src=os.path.join(pkg, "libexec", "ocirun-front"))
PYEOF
)
bundles/busybox/build-rootfs.sh >/dev/null
echo "ocirun installed: $("$OCIRUN_INSTALL_PREFIX/bin/ocirun" --version | head -1)"
