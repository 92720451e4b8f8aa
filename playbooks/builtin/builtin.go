// Package builtin holds the playbooks that ship inside orch (bootstrap,
// join, upgrade, recover), embedded so that `orch up` and friends need no
// files on disk, and so that users can print and copy them.
package builtin

import (
	"embed"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.yml
var files embed.FS

// FS returns the embedded playbooks, one NAME.yml file per playbook.
func FS() fs.FS { return files }

// Names returns the names of the built-in playbooks, without ".yml", sorted.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".yml"))
	}
	sort.Strings(out)
	return out
}

// Read returns the source of the built-in playbook name.
func Read(name string) ([]byte, error) { return fs.ReadFile(files, name+".yml") }
