#!/bin/bash
# mkimage.sh OUT — build a tiny busybox container image from the host's busybox-static.
#
# The output is a rootfs tarball (xz when xz exists, else gzip) laid out as LXC's `local`
# template expects its fstree: /bin/busybox with its applets linked, /sbin/init, a minimal
# /etc (passwd, group, inittab, rcS). rcS brings eth0 up (when the container has one) and,
# unless LXC gave eth0 a static address, leaves busybox udhcpc running in the background with /usr/share/udhcpc/default.script,
# which applies each lease (address, prefix, default route, resolv.conf), so a container on
# a managed bridge gets its IPv4 address without anyone exec'ing into it.
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
chmod 755 "$root" # the container's /: mktemp's 0700 kept every user but root out of it

for d in bin sbin usr/bin usr/sbin usr/share/udhcpc etc/init.d etc/udhcpc dev dev/pts proc sys tmp root home mnt var/log var/run run lib; do
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
if /bin/ip link show eth0 >/dev/null 2>&1; then
	/bin/ip link set eth0 up
	# A static address (lxc.net.0.ipv4.address, set by LXC before init runs) is kept:
	# udhcpc's deconfig would flush it and no lease may ever come. Otherwise foreground
	# mode, backgrounded here: rcS returns at once and udhcpc keeps renewing, retrying
	# every few seconds while no server answers.
	if ! /bin/ip -4 addr show dev eth0 | /bin/grep -q 'inet '; then
		/bin/udhcpc -f -i eth0 -s /usr/share/udhcpc/default.script -t 5 -T 1 -A 3 \
			-x hostname:"$(/bin/hostname)" </dev/null >/dev/null 2>&1 &
	fi
fi
RCS
chmod 755 "$root/etc/init.d/rcS"
cat >"$root/usr/share/udhcpc/default.script" <<'DHCP'
#!/bin/sh
# busybox udhcpc event script: $1 is the event, the lease is in the environment
# ($interface, $ip, $mask as a prefix length, $broadcast, $router, $dns, $domain).
log() { echo "$(date '+%F %T') udhcpc $*" >>/var/log/udhcpc.log; }
case "$1" in
deconfig)
	ip -4 addr flush dev "$interface"
	ip link set "$interface" up
	;;
bound|renew)
	if ! ip -4 addr show dev "$interface" | grep -q "inet $ip/$mask "; then
		ip -4 addr flush dev "$interface"
		ip addr add "$ip/$mask" ${broadcast:+broadcast "$broadcast"} dev "$interface"
		log "$1 $interface $ip/$mask"
	fi
	if [ -n "$router" ]; then
		ip route replace default via "${router%% *}" dev "$interface"
	fi
	if [ -n "$dns" ]; then
		{
			[ -n "$domain" ] && echo "search $domain"
			for s in $dns; do echo "nameserver $s"; done
		} >/etc/resolv.conf
	fi
	;;
leasefail | nak)
	log "$1 $interface"
	;;
esac
exit 0
DHCP
chmod 755 "$root/usr/share/udhcpc/default.script"
ln -s /usr/share/udhcpc/default.script "$root/etc/udhcpc/default.script"

if [[ "$out" == *.xz ]]; then
	tar --numeric-owner --owner=0 --group=0 -C "$root" -cf - . | xz -T1 -6 >"$out.tmp"
else
	tar --numeric-owner --owner=0 --group=0 -C "$root" -czf "$out.tmp" .
fi
mv "$out.tmp" "$out"
echo "$out"
