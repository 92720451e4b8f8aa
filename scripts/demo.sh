#!/usr/bin/env bash
# make demo: a local lab of 3 fresh Debian 12 hosts (system containers booted by systemd,
# with none of LXC, dnsmasq or nftables installed), then `orch up` with the example
# inventory (which installs what the cluster needs), `orch cluster list`, a busybox
# container launched through orch (eth0 on the managed bridge orchbr0) shown by `orch list`,
# and a clean reboot of its host, after which it runs again.
#   usage: scripts/demo.sh LAB_DIR   (LAB_OS=namespace for the fast namespace hosts)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin
lab=${1:-/tmp/orch-lab}
# wait_for DESCRIPTION TRIES CMD...: runs CMD until it succeeds, at most TRIES times 0.2s apart.
wait_for() {
  local what=$1 tries=$2
  shift 2
  for _ in $(seq "$tries"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "demo: gave up waiting for $what" >&2
  "$@" || true
  return 1
}

network_created_on() { bin/orch network show orchbr0 --target "$1" --format json | grep -q '"status": *"Created"'; }
has_ipv4() { bin/orch list --format json | grep -q '"ipv4": *\['; }

# launch_demo_container imports the busybox image (built with `make image` if missing or stale)
# through orch, launches c1 and shows `orch list` once c1's own udhcpc (started by the
# image's init) has its lease from dnsmasq on c1's member.
launch_demo_container() {
  local img=bin/busybox-image.tar.xz
  [ -f "$img" ] || img=bin/busybox-image.tar.gz
  if [ ! -f "$img" ] || [ scripts/mkimage.sh -nt "$img" ]; then
    echo "== make image (no busybox image in bin/, or one older than scripts/mkimage.sh)"
    rm -f bin/busybox-image.tar.xz bin/busybox-image.tar.gz
    make --no-print-directory image
    img=bin/busybox-image.tar.xz
    [ -f "$img" ] || img=bin/busybox-image.tar.gz
  fi
  echo "== orch image import $img --alias busybox"
  bin/orch image import "$img" --alias busybox
  for h in host1 host2 host3; do
    wait_for "network orchbr0 on $h" 150 network_created_on "$h"
  done
  echo
  echo "== orch launch busybox c1"
  bin/orch launch busybox c1
  wait_for "c1's DHCP lease (IPv4 in orch list)" 100 has_ipv4
  echo
  echo "== orch list"
  bin/orch list
}

if [ "$(id -u)" != 0 ]; then
  echo "demo: needs root (test hosts are network namespaces)" >&2
  exit 1
fi
export GOFLAGS="${GOFLAGS:--tags=osusergo,netgo,sqlite_omit_load_extension}"
go build -o bin/orchlab ./integration/cmd/orchlab
if [ -f "$lab/lab.json" ]; then
  echo "== Removing the previous demo lab in $lab"
  bin/orchlab down --dir "$lab"
fi
os=${LAB_OS:-debian}
if [ "$os" = debian ] && [ ! -e /var/cache/orch-lab/debian-bookworm/rootfs/.orch-lab-ready ]; then
  echo "== Building the Debian 12 base of the test hosts once (debootstrap, about a minute)"
fi
echo "== Creating 3 $os test hosts in $lab"
bin/orchlab up --dir "$lab" -n 3 --os "$os"
cp -r examples/demo/group_vars "$lab/"
export ORCH_CONFIG=$lab/orch-state ORCH_INVENTORY=$lab/inventory.ini
echo
echo "== orch up -i $lab/inventory.ini"
bin/orch up --known-hosts "$lab/known_hosts"
echo
echo "== orch up again (converged: nothing changes)"
bin/orch up --known-hosts "$lab/known_hosts" | tail -n 1
echo
echo "== orch cluster list"
bin/orch cluster list
echo
launch_demo_container
if [ "$os" = debian ]; then
  node=$(bin/orch list --format json | sed -n 's/.*"location": *"\([^"]*\)".*/\1/p' | head -n 1)
  echo
  echo "== orchlab reboot $node (systemd reboots the host; the agent and c1 come back)"
  bin/orchlab reboot --dir "$lab" "$node"
  wait_for "c1 running again with a lease" 300 has_ipv4
  bin/orch cluster list
  bin/orch list
fi
echo
echo "The lab stays up. Try:"
echo "  ORCH_CONFIG=$lab/orch-state bin/orch -i $lab/inventory.ini --known-hosts $lab/known_hosts node host2 -- cluster list-database"
echo "Tear it down with: bin/orchlab down --dir $lab"
