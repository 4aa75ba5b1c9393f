#!/bin/sh
# Runs the whole test suite as root: installs ocirun and the test
# dependencies first, so a fresh machine needs nothing else.
set -eu
cd "$(dirname "$0")/.."
scripts/install.sh
# engines for tests/engines (each engine's tests skip when it is missing);
# idempotent: apt is only called when a package is not installed yet
need=""
for p in containerd podman conmon docker.io; do
  dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "$need" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi
PY=${PYTHON:-python3}
PIPFLAGS=""
if $PY -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["stdlib"], "EXTERNALLY-MANAGED")))'; then
  PIPFLAGS="--break-system-packages"
fi
$PY -m pip install -q $PIPFLAGS "pytest>=7" "pytest-benchmark>=4" "jsonschema>=4" >/dev/null
exec $PY -m pytest -q -p no:cacheprovider "$@" tests
