// Package orch_test holds the import rules of the whole module: which part may import
// which (the layout in README.md, "Layout"). A rule broken fails `make test`, naming the
// importer and the import. Tests count too: a test reaching into another part's internals
// breaks the same rule.
package orch_test

import (
	"os/exec"
	"slices"
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
	{why: "the daemon side imports nothing of orch, playbooks or the inventory",
		from: []string{"nodeagent"},
		to:   []string{"orchestrator", "playbooks", "inventory"}},
	{why: "orch imports nothing of the agent but its API (nodeagent/api and below)",
		from:  []string{"orchestrator"},
		to:    []string{"nodeagent"},
		allow: []string{"nodeagent/api"}},
	{why: "orch drives nodes through the agent, not through the node drivers",
		from: []string{"orchestrator"},
		to:   []string{"modules"}},
	{why: "node drivers import nothing of orch or the playbook engine",
		from: []string{"modules"},
		to:   []string{"orchestrator", "playbooks", "inventory"}},
	{why: "a domain of the daemon imports neither the daemon nor another domain, only the leaves rest and db (nodeagent/daemon/DESIGN.md)",
		from:  daemonDomains,
		to:    []string{"nodeagent/daemon"},
		allow: daemonLeaves},
	{why: "the daemon's leaves import nothing of the daemon",
		from: daemonLeaves,
		to:   []string{"nodeagent/daemon"}},
	{why: "the playbook engine imports neither the inventory, nor orch, nor the node drivers",
		from: []string{"playbooks"},
		to:   []string{"inventory", "orchestrator", "modules"}},
}

// daemonDomains are the packages the daemon was split into, one per domain (serve is the
// serving layer: it too imports no domain, only through the interfaces it declares); daemonLeaves
// are what they share.
var (
	daemonDomains = []string{"nodeagent/daemon/images", "nodeagent/daemon/trust", "nodeagent/daemon/entity", "nodeagent/daemon/instances", "nodeagent/daemon/serverconfig", "nodeagent/daemon/upgrade", "nodeagent/daemon/roles", "nodeagent/daemon/epoch", "nodeagent/daemon/memberinfo", "nodeagent/daemon/tokens", "nodeagent/daemon/metrics", "nodeagent/daemon/serve", "nodeagent/daemon/operations", "nodeagent/daemon/events"}
	daemonLeaves  = []string{"nodeagent/daemon/rest", "nodeagent/daemon/db"}
)

// knownViolations are imports that break a rule and are being removed; the list may only
// shrink (it is empty: keep it so).
var knownViolations = map[string]bool{}

// under reports whether pkg is one of prefixes or below one of them.
func under(pkg string, prefixes []string) bool {
	for _, p := range prefixes {
		if pkg == p || strings.HasPrefix(pkg, p+"/") {
			return true
		}
	}
	return false
}

// violations lists, as "pkg -> import: why", the imports of graph (package -> its
// imports, module-relative) that break a rule.
func violations(graph map[string][]string) []string {
	var out []string
	for pkg, imps := range graph {
		for _, imp := range imps {
			for _, r := range rules {
				if under(pkg, r.from) && under(imp, r.to) && !under(imp, r.allow) {
					out = append(out, pkg+" -> "+imp+": "+r.why)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// importGraph is the module's import graph, test imports included, module-relative.
func importGraph(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f",
		`{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{range .TestImports}} {{.}}{{end}}{{range .XTestImports}} {{.}}{{end}}`,
		"./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	graph := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], module)
		for _, imp := range f[1:] {
			if rel, ok := strings.CutPrefix(imp, module); ok && rel != pkg {
				graph[pkg] = append(graph[pkg], rel)
			}
		}
	}
	return graph
}

func TestImportRules(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range violations(importGraph(t)) {
		key, _, _ := strings.Cut(v, ": ")
		seen[key] = true
		if !knownViolations[key] {
			t.Error(v)
		}
	}
	for v := range knownViolations {
		if !seen[v] {
			t.Errorf("known violation %q is gone: remove it from knownViolations", v)
		}
	}
}

// TestImportRulesCatchViolations: every rule fails on an import that breaks it, and lets
// the allowed ones through, so TestImportRules can fail.
func TestImportRulesCatchViolations(t *testing.T) {
	bad := map[string][]string{
		"nodeagent/daemon":     {"orchestrator/transport", "playbooks", "inventory"},
		"orchestrator/modules": {"nodeagent/daemon", "modules/lxc"},
		"modules/storage":      {"orchestrator/agentctl", "playbooks/template", "inventory"},
		"playbooks":            {"inventory", "orchestrator", "modules/bridge"},
	}
	got := violations(bad)
	want := 0
	for _, imps := range bad {
		want += len(imps)
	}
	if len(got) != want {
		t.Errorf("%d violations found, want %d:\n%s", len(got), want, strings.Join(got, "\n"))
	}
	good := map[string][]string{
		"nodeagent/daemon":     {"nodeagent/store", "modules/lxc", "internal/wait", "output"},
		"orchestrator/modules": {"nodeagent/api", "nodeagent/api/pki", "playbooks", "inventory", "orchestrator/agentctl"},
		"orchestrator/cli":     {"nodeagent/api/verbs"},
		"modules/bridge":       {"internal/wait"},
		"playbooks/builtin":    {"playbooks"},
		"nodeagentx":           {"orchestrator"}, // not under nodeagent/
	}
	if v := violations(good); len(v) > 0 {
		t.Errorf("allowed imports reported:\n%s", strings.Join(v, "\n"))
	}
}
