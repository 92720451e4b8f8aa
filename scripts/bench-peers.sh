#!/usr/bin/env bash
# Installs the tools `make bench` compares orch with: Debian's ansible-core and lxd. Never
# fails: a peer that cannot be installed is reported as such in the bench's table.
set -uo pipefail
need=()
command -v ansible-playbook >/dev/null 2>&1 || need+=(ansible-core)
command -v lxd >/dev/null 2>&1 || need+=(lxd)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "bench-peers: not root; not installing ${need[*]} (the bench reports them as not measured)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
for p in "${need[@]}"; do
  if ! apt-get install -y -qq --no-install-recommends "$p" >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1
    apt-get install -y -qq --no-install-recommends "$p" >/dev/null 2>&1 ||
      echo "bench-peers: could not install $p; the bench goes on without it" >&2
  fi
done
exit 0
