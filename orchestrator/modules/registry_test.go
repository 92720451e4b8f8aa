package modules

import (
	"testing"

	"orch/playbooks"
	"orch/playbooks/hostmods"
)

// TestRegistryComposesEverything: the one registry holds the engine's generic modules, the
// host modules and every orch module, and no set replaces another's module.
func TestRegistryComposesEverything(t *testing.T) {
	d := Deps{}
	r := Registry(d)
	sets := map[string]playbooks.Registry{"builtins": playbooks.Builtins(), "hostmods": hostmods.Registry(), "orch": d.own()}
	owner := map[string]string{}
	for set, reg := range sets {
		for name := range reg {
			if other, ok := owner[name]; ok {
				t.Errorf("module %s is in both %s and %s", name, other, set)
			}
			owner[name] = set
			if r[name] == nil {
				t.Errorf("module %s (%s) is not registered", name, set)
			}
		}
	}
	for _, name := range []string{"command", "copy", "apt", "ansible.builtin.service", "lineinfile", "setup", "agent_install", "cluster_join", "reset_plan",
		"instance", "storage_pool", "storage_volume", "network", "profile", "image"} {
		if r[name] == nil {
			t.Errorf("module %s is not registered", name)
		}
	}
	if len(r) != len(owner) {
		t.Errorf("registry has %d modules, the sets %d", len(r), len(owner))
	}
}
