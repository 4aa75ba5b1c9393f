#!/bin/sh
# Runs the whole test suite as root: installs ocirun and the test
# dependencies first, so a fresh machine needs nothing else.
set -eu
cd "$(dirname "$0")/.."
scripts/install.sh
PY=${PYTHON:-python3}
$PY -m pip install -q "pytest>=7" "pytest-benchmark>=4" "jsonschema>=4" >/dev/null
exec $PY -m pytest -q -p no:cacheprovider "$@" tests
