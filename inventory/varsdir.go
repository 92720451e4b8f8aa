package inventory

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// varsExts are the extensions tried after the bare name, in Ansible's order
// (DataLoader.find_vars_files with C.YAML_FILENAME_EXTENSIONS).
var varsExts = []string{"", ".yml", ".yaml", ".json"}

// loadVarsDirs loads group_vars/ and host_vars/ under base into the groups
// and hosts they name (Ansible's host_group_vars vars plugin).
func loadVarsDirs(inv *Inventory, base string) error {
	gdir, hdir := filepath.Join(base, "group_vars"), filepath.Join(base, "host_vars")
	gnames, hnames := listVarsDir(inv, gdir), listVarsDir(inv, hdir)
	for _, g := range inv.groups {
		if err := loadEntityVars(gdir, gnames, g.Name, &g.fileVars); err != nil {
			return err
		}
	}
	for _, h := range inv.hosts {
		if err := loadEntityVars(hdir, hnames, h.Name, &h.fileVars); err != nil {
			return err
		}
	}
	warnUnused(inv, gdir, gnames, func(n string) bool { return inv.groupByName[n] != nil })
	warnUnused(inv, hdir, hnames, func(n string) bool { return inv.hostByName[n] != nil })
	return nil
}

// listVarsDir returns the entry names of a vars directory (nil when it does
// not exist), so that looking up thousands of hosts costs no stat calls.
func listVarsDir(inv *Inventory, dir string) map[string]bool {
	st, err := os.Stat(dir)
	if err != nil {
		return nil
	}
	if !st.IsDir() {
		inv.warn("%s: skipped, it is not a directory", dir)
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		inv.warn("%s: skipped: %v", dir, err)
		return nil
	}
	names := map[string]bool{}
	for _, e := range entries {
		names[e.Name()] = true
	}
	return names
}

// loadEntityVars merges the vars files for one group or host into vs.
func loadEntityVars(dir string, names map[string]bool, name string, vs *varSet) error {
	if len(names) == 0 || !safeEntityName(name) {
		return nil
	}
	files, err := findVarsFiles(dir, names, name)
	if err != nil {
		return err
	}
	for _, f := range files {
		fv, err := loadVarsFile(f)
		if err != nil {
			return err
		}
		vs.merge(fv)
	}
	return nil
}

// safeEntityName rejects names that would leave the vars directory.
func safeEntityName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\\\x00")
}

// findVarsFiles returns the files holding vars for name: the first of
// NAME, NAME.yml, NAME.yaml, NAME.json that exists, or, when that is a
// directory, its files (recursively, in name order).
func findVarsFiles(dir string, names map[string]bool, name string) ([]string, error) {
	for _, ext := range varsExts {
		if !names[name+ext] {
			continue
		}
		p := filepath.Join(dir, name+ext)
		st, err := os.Stat(p)
		if err != nil {
			return nil, errAt(Pos{File: p}, "", ErrBadVarsFile, ": %v", err)
		}
		if st.IsDir() {
			return dirVarsFiles(p)
		}
		return []string{p}, nil
	}
	return nil, nil
}

func dirVarsFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, errAt(Pos{File: dir}, "", ErrBadVarsFile, ": %v", err)
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") || strings.HasSuffix(n, "~") {
			continue
		}
		p, ext := filepath.Join(dir, n), filepath.Ext(n)
		switch {
		case e.IsDir() && ext == "":
			sub, err := dirVarsFiles(p)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
		case !e.IsDir() && (ext == "" || ext == ".yml" || ext == ".yaml" || ext == ".json"):
			out = append(out, p)
		}
	}
	return out, nil
}

// loadVarsFile reads one YAML/JSON vars file; it must hold a mapping (an
// empty file holds nothing).
func loadVarsFile(path string) (varSet, error) {
	var vs varSet
	data, err := os.ReadFile(path)
	if err != nil {
		return vs, errAt(Pos{File: path}, "", ErrBadVarsFile, ": %v", err)
	}
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("$ANSIBLE_VAULT")) {
		return vs, errAt(Pos{File: path, Line: 1, Col: 1}, "", ErrBadVarsFile, ": Ansible Vault files are not supported")
	}
	root, err := parseYAMLDoc(path, data)
	if err != nil || root == nil {
		return vs, err
	}
	if root.Kind != yaml.MappingNode {
		return vs, errAt(Pos{path, root.Line, root.Column}, "", ErrBadVarsFile, ": variables must be a mapping, got %s", kindName(root))
	}
	pairs, err := mappingPairs(path, root)
	if err != nil {
		return vs, err
	}
	for _, kv := range pairs {
		v, err := nodeValue(path, kv.val)
		if err != nil {
			return vs, err
		}
		vs.set(kv.key.Value, v, Pos{path, kv.key.Line, kv.key.Column})
	}
	return vs, nil
}

// warnUnused warns about entries of a vars directory that name no known
// group or host (usually a typo).
func warnUnused(inv *Inventory, dir string, names map[string]bool, known func(string) bool) {
	for _, n := range slices.Sorted(maps.Keys(names)) {
		if strings.HasPrefix(n, ".") || strings.HasSuffix(n, "~") {
			continue
		}
		if known(n) || known(strings.TrimSuffix(n, filepath.Ext(n))) {
			continue
		}
		inv.warn("%s: matches no %s in the inventory", filepath.Join(dir, n), entityKind(dir))
	}
}

func entityKind(dir string) string {
	if filepath.Base(dir) == "host_vars" {
		return "host"
	}
	return "group"
}
