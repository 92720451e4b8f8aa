#!/bin/bash
# mkimage.sh OUT — build a tiny busybox container image from the host's busybox-static.
#
# The output is a rootfs tarball (xz when xz exists, else gzip) laid out as LXC's `local`
# template expects its fstree: /bin/busybox with its applets linked, /sbin/init, a minimal
# /etc (passwd, group, inittab, rcS that brings eth0 up and asks DHCP when a server answers).
# Usage: scripts/mkimage.sh [bin/busybox-image.tar.xz]
set -euo pipefail

BUSYBOX=${BUSYBOX:-/bin/busybox}
[ -x "$BUSYBOX" ] || BUSYBOX=$(command -v busybox || true)
if [ -z "$BUSYBOX" ] || [ ! -x "$BUSYBOX" ]; then
	echo "mkimage: busybox not found; install busybox-static (apt-get install busybox-static)" >&2
	exit 1
fi
if file -L "$BUSYBOX" 2>/dev/null | grep -q 'dynamically linked'; then
	echo "mkimage: $BUSYBOX is dynamically linked; install busybox-static" >&2
	exit 1
fi

out=${1:-}
if [ -z "$out" ]; then
	if command -v xz >/dev/null; then out=bin/busybox-image.tar.xz; else out=bin/busybox-image.tar.gz; fi
fi
mkdir -p "$(dirname "$out")"

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

for d in bin sbin usr/bin usr/sbin etc/init.d dev dev/pts proc sys tmp root home mnt var/log var/run run lib; do
	mkdir -p "$root/$d"
	chmod 755 "$root/$d"
done
chmod 1777 "$root/tmp"
cp "$BUSYBOX" "$root/bin/busybox"
chmod 755 "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
	[ "$applet" = busybox ] && continue
	[ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
ln -f "$root/bin/busybox" "$root/sbin/init"

echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:root' >"$root/etc/group"
: >"$root/etc/fstab"
: >"$root/etc/shadow"
echo 'busybox' >"$root/etc/hostname"
cat >"$root/etc/inittab" <<'INITTAB'
::sysinit:/etc/init.d/rcS
::respawn:/bin/sleep 1000000000
::ctrlaltdel:/bin/poweroff
INITTAB
cat >"$root/etc/init.d/rcS" <<'RCS'
#!/bin/sh
/bin/mount -a 2>/dev/null
/bin/ip link set lo up
/bin/ip link set eth0 up 2>/dev/null
RCS
chmod 755 "$root/etc/init.d/rcS"

if [[ "$out" == *.xz ]]; then
	tar --numeric-owner --owner=0 --group=0 -C "$root" -cf - . | xz -T1 -6 >"$out.tmp"
else
	tar --numeric-owner --owner=0 --group=0 -C "$root" -czf "$out.tmp" .
fi
mv "$out.tmp" "$out"
echo "$out"
