#!/bin/sh
# Runs the whole test suite as root: installs ocirun and the test
# dependencies first, so a fresh machine needs nothing else.
set -eu
cd "$(dirname "$0")/.."
scripts/install.sh
# engines for tests/engines (each engine's tests skip when it is missing), and strace
# for the test that watches the bootstrap's prctl calls;
# idempotent: apt is only called when a package is not installed yet
. scripts/lib.sh
apt_need containerd podman conmon docker.io strace
# the systemd driver's tests boot a private systemd (tests/systemd_ns.py) and
# compare with runc there; setpriv/unshare/nsenter come with util-linux
apt_need systemd dbus-daemon dbus runc util-linux
PY=${PYTHON:-python3}
PIPFLAGS=$(pip_flags)
$PY -m pip install -q $PIPFLAGS "pytest>=7" "pytest-benchmark>=4" "jsonschema>=4" "hypothesis>=6" >/dev/null
# the tests also import ocirun in-process: install it for their interpreter
# too (install.sh installed it for the runtime's, which may be another one)
$PY -m pip install -q $PIPFLAGS --upgrade "cffi>=1.15" "setuptools>=61" wheel >/dev/null 2>&1
$PY -m pip install -q $PIPFLAGS --no-build-isolation . >/dev/null
# twice: cold (every command starts the interpreter), then warm (README,
# "Warm start": create/run/exec served by the pre-imported server) for the
# suites that run containers and engines
status=0
OCIRUN_WARM=0 $PY -m pytest -q -p no:cacheprovider "$@" tests || status=1
echo "== again with the warm path (OCIRUN_WARM=1) =="
OCIRUN_WARM=1 OCIRUN_WARM_IDLE=5 $PY -m pytest -q -p no:cacheprovider "$@" tests/integration tests/engines || status=1
exit $status
