# Shared by install.sh and test.sh (sourced).

# apt_need PKG...: install the packages that are not installed yet
apt_need() {
  need=""
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
  done
  if [ -n "$need" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
  fi
}

# pip flags for $PY: Debian marks its own interpreter externally managed
# (PEP 668); ocirun is a system tool
pip_flags() {
  if $PY -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["stdlib"], "EXTERNALLY-MANAGED")))'; then
    echo "--break-system-packages"
  fi
}
