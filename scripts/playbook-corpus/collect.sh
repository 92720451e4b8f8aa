#!/bin/sh
# collect.sh: copies the third-party playbooks and roles of orch's playbook
# corpus out of git mirrors (made by the session's fetch tool, or by
# `git clone --mirror`) into playbooks/testdata/corpus/OWNER+REPO/, and
# writes playbooks/testdata/corpus/SOURCES: one line per file,
# "owner/repo commit source-path stored-path".
#
# Usage: scripts/playbook-corpus/collect.sh [MIRRORS_DIR]   (default /work/.mirror)
# MIRRORS_DIR/OWNER+REPO/repo is a bare git repository.
set -eu
mirrors=${1:-/work/.mirror}
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/playbooks/testdata/corpus
mkdir -p "$out"
rm -rf "$out"/*+* # the copies; PLAYBOOKS and ANSIBLE (ansible-check.sh's results) stay
: > "$out/SOURCES"

# copy REPO SRC DST: one file from the mirror's HEAD.
copy() {
	git_dir=$mirrors/$(echo "$1" | tr / +)/repo
	commit=$(git --git-dir="$git_dir" rev-parse HEAD)
	dst=$out/$(echo "$1" | tr / +)/$3
	mkdir -p "$(dirname "$dst")"
	git --git-dir="$git_dir" show "$commit:$2" > "$dst"
	echo "$1 $commit $2 $(echo "$1" | tr / +)/$3" >> "$out/SOURCES"
}

# files REPO REGEX: the mirror's files whose path matches REGEX.
files() {
	git --git-dir="$mirrors/$(echo "$1" | tr / +)/repo" ls-tree -r --name-only HEAD | grep -E "$2" || true
}

# Ansible's own examples: every playbook, role file, vars file, template and
# role file (files/, templates/; not the binary .war files).
for f in $(files ansible/ansible-examples '\.(yml|yaml|j2|cfg)$|/(group|host)_vars/|/hosts$|/(files|templates)/[^/]+$' | grep -v '^\.github/\|\.war$\|/secret$'); do
	copy ansible/ansible-examples "$f" "$f"
done

# geerlingguy's roles: the role as roles/geerlingguy.NAME/ and its molecule
# converge playbook as converge.yml, laid out as molecule runs it.
for name in apache docker firewall git java mysql nginx nodejs ntp php pip postgresql redis security swap; do
	repo=geerlingguy/ansible-role-$name
	for f in $(files "$repo" '^(defaults|handlers|meta|tasks|vars|templates|files)/'); do
		copy "$repo" "$f" "roles/geerlingguy.$name/$f"
	done
	copy "$repo" molecule/default/converge.yml converge.yml
done

# incus-deploy: its ansible/ directory (playbooks, config, books).
for f in $(files lxc/incus-deploy '^ansible/.*\.(yml|yaml|cfg)$|^ansible/hosts\.yaml\.example$'); do
	copy lxc/incus-deploy "$f" "$f"
done

# kubespray: its playbooks, the top-level wrappers, ansible.cfg and the
# roles' YAML (templates are not read by --syntax-check).
for f in $(files kubernetes-sigs/kubespray '^(playbooks/.*\.yml|[a-z_-]+\.yml|ansible\.cfg|roles/.*/(tasks|handlers|defaults|vars|meta)/.*\.ya?ml|library/[^/]+\.py)$' | grep -v '^\.'); do
	copy kubernetes-sigs/kubespray "$f" "$f"
done
echo "$(wc -l < "$out/SOURCES") files in $out"
