#!/usr/bin/env bash
# make demo: a local lab of 3 test hosts (network namespaces with their own sshd), then
# `orch up` with the example inventory, then `orch cluster list`.
#   usage: scripts/demo.sh LAB_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin
lab=${1:-/tmp/orch-lab}
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
echo "== Creating 3 test hosts in $lab"
bin/orchlab up --dir "$lab" -n 3
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
echo "The lab stays up. Try:"
echo "  ORCH_CONFIG=$lab/orch-state bin/orch -i $lab/inventory.ini --known-hosts $lab/known_hosts node host2 -- cluster list-database"
echo "Tear it down with: make lab-down"
