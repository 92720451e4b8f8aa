#!/usr/bin/env bash
# Installs the system tools that orch's integration tests drive. Runs only as root; when not
# root it says what is missing and the tests that need it skip.
set -euo pipefail
pkgs=(openssh-server openssh-client lxc busybox-static btrfs-progs lvm2 dnsmasq-base nftables iproute2 sudo debootstrap dnf rpm ansible-core ansible cron rsync mariadb-server mariadb-client firewalld pacman-package-manager libarchive-tools postgresql zypper gnupg curl haproxy socat lxd-client python3-pylxd zstd)
need=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: not root; missing packages (tests that need them will skip): ${need[*]}" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# The packages' own services (mariadb, firewalld, lxd's) must not start on the test machine:
# firewalld would load its rules into this host's nftables. The tests start what they need.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null
