#!/bin/sh
# recap-compare.sh: a quick local check (`make recap-compare` is the real comparison, on
# fresh Debian lab hosts: integration/playrecap). Runs the corpus playbooks listed in
# playbooks/testdata/corpus/RECAP with both `orch play --check` and
# `ansible-playbook --check` against this machine (an inventory of
# localhost with ansible_connection=local; check mode, so nothing is
# changed) and compares the per-host recaps (ok/changed/unreachable/failed/
# skipped). Prints one line per playbook and the number equal.
#
# Usage: scripts/playbook-corpus/recap-compare.sh [ORCH_BINARY]
# Needs ansible-playbook (Debian: apt-get install ansible) and an orch binary
# (default: go build ./orchestrator/cmd/orch into a temporary directory).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
corpus=$root/playbooks/testdata/corpus
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
orch=${1:-}
if [ -z "$orch" ]; then
	orch=$work/orch
	(cd "$root" && go build -o "$orch" ./orchestrator/cmd/orch)
fi
printf '[all]\nlocalhost ansible_connection=local\n[webservers]\nlocalhost\n' > "$work/inventory"
recap() { grep -E '^localhost +:' | sed 's/ *rescued.*//; s/  */ /g'; }
equal=0
total=0
while read -r pb; do
	case $pb in '#'*|'') continue ;; esac
	dir=$(dirname "$corpus/$pb")
	a=$(cd "$dir" && timeout 300 "$orch" play -i "$work/inventory" --state-dir "$work/state" --check "$corpus/$pb" 2>&1 | recap || true)
	b=$(cd "$dir" && ANSIBLE_NOCOLOR=1 timeout 300 ansible-playbook -i "$work/inventory" --check "$corpus/$pb" 2>&1 | recap || true)
	total=$((total + 1))
	if [ -n "$a" ] && [ "$a" = "$b" ]; then
		equal=$((equal + 1))
		echo "same  $pb: $a"
	else
		echo "DIFF  $pb: orch [$a] ansible [$b]"
	fi
done < "$corpus/RECAP"
echo "$equal of $total recaps equal"
