package controller

import (
	"maps"

	"orch/modules/clustermodules"
	"orch/playbooks"
	"orch/playbooks/hostmods"
)

// withEntities adds to r the modules that declare cluster objects through the API
// (package clustermodules: storage_pool, storage_volume, network, profile, image). They
// reach the cluster as the instance module does (apiClient: the via host's client address,
// orch's certificate, the pinned fingerprint); a name r already has keeps r's module.
func (d Deps) withEntities(r playbooks.Registry) playbooks.Registry {
	out := clustermodules.Registry(d.apiClient)
	maps.Copy(out, hostmods.Registry()) // Ansible's host modules (apt, service, user, lineinfile...)
	maps.Copy(out, r)
	return out
}
