// Package orch_test holds the import rules of the whole module: which part may import
// which (shared/DESIGN.md). A rule broken fails `make test`, naming the importer and the
// import.
package orch_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "orch/"

// rule forbids packages under from to import packages under any of to, except those
// under allow.
type rule struct {
	why   string
	from  []string
	to    []string
	allow []string
}

var rules = []rule{
	{why: "the agent side imports nothing of orch, playbooks or the inventory",
		from: []string{"nodeagent/", "modules/lxc", "modules/storage", "modules/bridge", "modules/image"},
		to:   []string{"orchestrator", "playbooks", "inventory", "modules/controller", "modules/clustermodules"}},
	{why: "orch imports nothing of the agent but its API package",
		from:  []string{"orchestrator", "modules/controller", "modules/clustermodules"},
		to:    []string{"nodeagent/"},
		allow: []string{"nodeagent/api"}},
	{why: "node drivers import nothing of orch",
		from: []string{"modules/lxc", "modules/storage", "modules/bridge", "modules/image"},
		to:   []string{"orchestrator", "playbooks", "modules/controller", "modules/clustermodules"}},
	{why: "a domain of the daemon imports neither the daemon nor another domain, only the leaves rest and db (nodeagent/daemon/DESIGN.md)",
		from:  daemonDomains,
		to:    []string{"nodeagent/daemon"},
		allow: daemonLeaves},
	{why: "the daemon's leaves import nothing of the daemon",
		from: daemonLeaves,
		to:   []string{"nodeagent/daemon"}},
	{why: "the playbook engine imports neither the inventory nor orch",
		from: []string{"playbooks"},
		to:   []string{"inventory", "orchestrator", "modules/"}},
}

// daemonDomains are the packages the daemon was split into, one per domain; daemonLeaves
// are what they share.
var (
	daemonDomains = []string{"nodeagent/daemon/images", "nodeagent/daemon/trust", "nodeagent/daemon/entity", "nodeagent/daemon/instances", "nodeagent/daemon/serverconfig", "nodeagent/daemon/upgrade", "nodeagent/daemon/roles", "nodeagent/daemon/epoch", "nodeagent/daemon/memberinfo", "nodeagent/daemon/tokens"}
	daemonLeaves  = []string{"nodeagent/daemon/rest", "nodeagent/daemon/db"}
)

// knownViolations are imports that break a rule and are being removed; the list may only
// shrink (it is empty: keep it so).
var knownViolations = map[string]bool{}

func under(pkg string, prefixes []string) bool {
	for _, p := range prefixes {
		if pkg == strings.TrimSuffix(p, "/") || strings.HasPrefix(pkg, strings.TrimSuffix(p, "/")+"/") {
			return true
		}
	}
	return false
}

func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], module)
		for _, imp := range f[1:] {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			imp = strings.TrimPrefix(imp, module)
			for _, r := range rules {
				if !under(pkg, r.from) || !under(imp, r.to) || under(imp, r.allow) {
					continue
				}
				key := pkg + " -> " + imp
				seen[key] = true
				if !knownViolations[key] {
					t.Errorf("%s imports %s: %s", pkg, imp, r.why)
				}
			}
		}
	}
	for v := range knownViolations {
		if !seen[v] {
			t.Errorf("known violation %q is gone: remove it from knownViolations", v)
		}
	}
}
