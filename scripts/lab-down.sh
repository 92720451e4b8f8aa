#!/usr/bin/env bash
# Removes test-host labs (package integration/lab): the lab in DIR, or with --all (the
# default) every lab under /tmp/orch-lab* plus any lab network namespace, link or cgroup
# that a crashed run left without a state file. Needs root, like the labs themselves.
#   usage: scripts/lab-down.sh [DIR | --all]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin
if [ "$(id -u)" != 0 ]; then
  echo "lab-down: needs root (labs are made of namespaces and links only root can remove)" >&2
  exit 1
fi
target=${1:---all}
if [ "$target" = --all ]; then args=(down --all); else args=(down --dir "$target"); fi

if command -v go >/dev/null; then
  export GOFLAGS="${GOFLAGS:--tags=osusergo,netgo,sqlite_omit_load_extension}"
  exec go run ./integration/cmd/orchlab "${args[@]}"
fi

# No Go toolchain: sweep by name with iproute2 (lab names start with "orl" + lab id).
prefix=orl
if [ "$target" != --all ]; then
  [ -f "$target/lab.json" ] || exit 0
  id=$(sed -n 's/.*"id": *"\([0-9a-f]*\)".*/\1/p' "$target/lab.json" | head -n1)
  prefix=orl$id
fi
echo "lab-down: go not found; sweeping namespaces and links named $prefix* with iproute2" >&2
for ns in $(ip netns list | awk '{print $1}' | grep "^$prefix" || true); do
  for pid in $(ip netns pids "$ns"); do kill -9 "$pid" 2>/dev/null || true; done
  ip netns delete "$ns" || true
done
for link in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^$prefix" || true); do
  ip link delete "$link" 2>/dev/null || true
done
for cg in /sys/fs/cgroup/orch-lab /sys/fs/cgroup/unified/orch-lab; do
  for d in "$cg/${prefix#orl}"*; do
    [ -d "$d" ] || continue
    find "$d" -depth -type d -name 'host*' -exec sh -c 'echo 1 > "$1/cgroup.kill"' _ {} \; 2>/dev/null || true
    for _ in $(seq 50); do  # killed processes leave their cgroup within moments
      find "$d" -depth -type d -exec rmdir {} + 2>/dev/null && break
      sleep 0.1
    done
  done
done
if [ "$target" != --all ]; then rm -f "$target/lab.json"; fi
