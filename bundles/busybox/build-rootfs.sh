#!/bin/sh
# Builds bundles/busybox/rootfs from Debian's busybox-static (never committed).
# usage: build-rootfs.sh [DEST]   (default: rootfs next to this script)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-$here/rootfs}
bb=$(command -v busybox || true)
[ -n "$bb" ] || { echo "busybox not found: apt-get install busybox-static" >&2; exit 1; }
file -L "$bb" 2>/dev/null | grep -q "dynamically linked" && { echo "$bb is not static: apt-get install busybox-static" >&2; exit 1; }
rm -rf "$dest.tmp"
mkdir -p "$dest.tmp/bin" "$dest.tmp/etc" "$dest.tmp/tmp" "$dest.tmp/root" "$dest.tmp/proc" "$dest.tmp/sys" "$dest.tmp/dev"
cp "$bb" "$dest.tmp/bin/busybox"
for a in $("$bb" --list); do
  [ "$a" = busybox ] || ln -sf busybox "$dest.tmp/bin/$a"
done
chmod 1777 "$dest.tmp/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$dest.tmp/etc/passwd"
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' > "$dest.tmp/etc/group"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "rootfs ready: $dest"
