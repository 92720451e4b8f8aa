package modules

import "testing"

// TestRegistryHasEntityModules: the cluster entity modules are registered next to the
// controller's own, which keep their names.
func TestRegistryHasEntityModules(t *testing.T) {
	r := Registry(Deps{})
	for _, name := range []string{"storage_pool", "storage_volume", "network", "profile", "image", "instance", "agent_install"} {
		if r[name] == nil {
			t.Errorf("module %s is not registered", name)
		}
	}
}
