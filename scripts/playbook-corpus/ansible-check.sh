#!/bin/sh
# ansible-check.sh: runs `ansible-playbook --syntax-check` on every playbook
# of the corpus (playbooks/testdata/corpus/PLAYBOOKS) and writes
# playbooks/testdata/corpus/ANSIBLE: "path<TAB>accepted|rejected<TAB>reason".
# orch's acceptance test (playbooks/corpus_test.go) is measured on the
# playbooks ansible-playbook accepts. Each runs from the directory of the
# nearest ansible.cfg above it (as a user of that repository would), else
# from its own directory.
#
# Needs ansible-playbook (Debian: apt-get install ansible).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
corpus=$root/playbooks/testdata/corpus
out=$corpus/ANSIBLE
ansible-playbook --version | head -1 | sed 's/^/# /' > "$out"
while read -r pb; do
	case $pb in '#'*|'') continue ;; esac
	dir=$(dirname "$corpus/$pb")
	run=$dir
	d=$dir
	while [ "$d" != "$corpus" ] && [ "$d" != / ]; do
		if [ -f "$d/ansible.cfg" ]; then run=$d; break; fi
		d=$(dirname "$d")
	done
	if msg=$(cd "$run" && ANSIBLE_NOCOLOR=1 ansible-playbook -i localhost, --syntax-check "$corpus/$pb" 2>&1); then
		printf '%s\taccepted\t\n' "$pb" >> "$out"
	else
		reason=$(printf '%s\n' "$msg" | grep -m1 -E 'ERROR!' | cut -c1-200)
		printf '%s\trejected\t%s\n' "$pb" "$reason" >> "$out"
	fi
done < "$corpus/PLAYBOOKS"
grep -c '	accepted' "$out" | sed 's/$/ accepted/'
