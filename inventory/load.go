package inventory

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// ignoredExts are the file name endings Ansible skips in an inventory
// directory (INVENTORY_IGNORE_EXTS: REJECT_EXTS + .orig, .ini, .cfg, .retry).
// Note that Ansible ignores .ini files there.
var ignoredExts = []string{".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".ini", ".cfg", ".retry"}

// Load reads an inventory file, or every inventory file of a directory, and
// the group_vars/ and host_vars/ directories next to it (for a directory:
// inside it).
//
// Files ending in .yml, .yaml or .json are YAML; files without an extension
// are YAML when they hold a YAML mapping and INI otherwise; anything else is
// INI, as with Ansible's yaml and ini plugins. Directories are read like
// Ansible does: entries in name order, skipping hidden files, group_vars,
// host_vars and the extensions Ansible ignores (including .ini).
func Load(path string) (*Inventory, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("loading inventory: %w", err)
	}
	inv := newInventory()
	base := path
	if st.IsDir() {
		err = loadDir(inv, path)
	} else {
		base = filepath.Dir(path)
		err = loadFile(inv, path)
	}
	if err != nil {
		return nil, err
	}
	return finish(inv, func(inv *Inventory) error { return loadVarsDirs(inv, base) })
}

// Parse parses inventory text, YAML or INI as detected from the content (see
// Load). name is used in positions.
func Parse(name string, data []byte) (*Inventory, error) {
	inv := newInventory()
	if err := parseInto(inv, name, data, ""); err != nil {
		return nil, err
	}
	return finish(inv, nil)
}

// finish runs the post-parse steps: Ansible's reconcile, then the vars
// directories (when vars is not nil), then variable merging.
func finish(inv *Inventory, vars func(*Inventory) error) (*Inventory, error) {
	inv.reconcile()
	if vars != nil {
		if err := vars(inv); err != nil {
			return nil, err
		}
	}
	inv.publish()
	return inv, nil
}

func loadFile(inv *Inventory, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("loading inventory: %w", err)
	}
	return parseInto(inv, path, data, strings.ToLower(filepath.Ext(path)))
}

func parseInto(inv *Inventory, name string, data []byte, ext string) error {
	switch {
	case ext == ".yml" || ext == ".yaml" || ext == ".json":
		return parseYAMLInto(inv, name, data)
	case ext != "" || !looksLikeYAML(name, data):
		return parseINIInto(inv, name, data)
	}
	return parseYAMLInto(inv, name, data)
}

// yamlStart matches a first line such as "all:" or "webservers:".
var yamlStart = regexp.MustCompile(`^[\w.-]+:\s*(#.*)?$`)

// looksLikeYAML tells YAML from INI for a file without an extension: YAML
// when it parses to a mapping, or when it fails to parse but starts like
// a YAML mapping (so the YAML error is the one reported).
func looksLikeYAML(name string, data []byte) bool {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err == nil {
		return len(doc.Content) > 0 && resolveAlias(doc.Content[0]).Kind == yaml.MappingNode
	}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line == "---" {
			continue
		}
		return yamlStart.MatchString(line)
	}
	return false
}

func loadDir(inv *Inventory, dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("loading inventory: %w", err)
	}
	for _, e := range entries {
		name, path := e.Name(), filepath.Join(dir, e.Name())
		if skipInventoryEntry(name) {
			if !strings.HasPrefix(name, ".") && name != "group_vars" && name != "host_vars" && name != "vars_plugins" {
				inv.warn("%s: skipped, Ansible ignores this extension in inventory directories", path)
			}
			continue
		}
		if e.IsDir() {
			err = loadDir(inv, path)
		} else {
			err = loadFile(inv, path)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func skipInventoryEntry(name string) bool {
	if strings.HasPrefix(name, ".") || name == "group_vars" || name == "host_vars" || name == "vars_plugins" {
		return true
	}
	for _, ext := range ignoredExts {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}
