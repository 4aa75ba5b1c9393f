#!/bin/sh
# Installs what ocirun needs on Debian 12 (as root): build tools, libseccomp,
# busybox-static for example/test rootfs; then ocirun itself with pip, and
# builds the example bundle's rootfs.  Idempotent.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
apt_need gcc libc6-dev libseccomp-dev busybox-static file python3-dev iproute2 procps
PY=${PYTHON:-python3}
# Debian's own interpreter comes without pip
$PY -m pip --version >/dev/null 2>&1 || apt_need python3-pip
PIPFLAGS=$(pip_flags)
$PY -m pip install -q $PIPFLAGS --upgrade "cffi>=1.15" "setuptools>=61" wheel >/dev/null 2>&1
$PY -m pip install -q $PIPFLAGS --no-build-isolation . >/dev/null 2>&1 || $PY -m pip install $PIPFLAGS --no-build-isolation .
# The fast launcher engines are pointed at: the interpreter in isolated mode
# without `site` (no PYTHON* variables, no .pth or sitecustomize code; site
# alone costs 30-50 ms here), with the one directory ocirun lives in.
(cd / && $PY - <<'PYEOF'
import os, sys, ocirun
site_dir = os.path.dirname(os.path.dirname(os.path.abspath(ocirun.__file__)))
import _cffi_backend
cffi_dir = os.path.dirname(os.path.abspath(_cffi_backend.__file__))
paths = [site_dir] + ([cffi_dir] if cffi_dir != site_dir else [])
text = (f"#!{os.path.realpath(sys.executable)} -IS\n"
        "# ocirun launcher written by scripts/install.sh\n"
        "import sys\n"
        f"sys.path[:0] = {paths!r}\n"
        "from ocirun.cli import run_main\n"
        "run_main()\n")
tmp = "/usr/local/bin/.ocirun.tmp"
with open(tmp, "w") as f:
    f.write(text)
os.chmod(tmp, 0o755)
os.replace(tmp, "/usr/local/bin/ocirun")
PYEOF
)
bundles/busybox/build-rootfs.sh >/dev/null
echo "ocirun installed: $(/usr/local/bin/ocirun --version | head -1)"
