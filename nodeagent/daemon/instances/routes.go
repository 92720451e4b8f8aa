package instances

import "orch/nodeagent/daemon/rest"

// Routes registers the instance and profile endpoints. Requests about one instance run on
// the member owning it (onOwner).
func (s *Service) Routes(m Router) {
	m.Handle("GET /1.0/instances", rest.Trusted, s.getInstances)
	m.Handle("POST /1.0/instances", rest.Trusted, s.postInstance)
	m.Handle("GET /1.0/instances/{name}", rest.Trusted, s.getInstance)
	m.Handle("PUT /1.0/instances/{name}", rest.Trusted, s.onOwner(s.putInstance))
	m.Handle("PATCH /1.0/instances/{name}", rest.Trusted, s.onOwner(s.putInstance))
	m.Handle("GET /1.0/instances/{name}/state", rest.Trusted, s.getInstance)
	m.Handle("GET /1.0/instances/{name}/snapshots", rest.Trusted, s.getSnapshots)
	m.Handle("POST /1.0/instances/{name}/snapshots", rest.Trusted, s.onOwner(s.postSnapshot))
	m.Handle("GET /1.0/instances/{name}/snapshots/{snap}", rest.Trusted, s.getSnapshot)
	m.Handle("DELETE /1.0/instances/{name}/snapshots/{snap}", rest.Trusted, s.onOwner(s.deleteSnapshot))
	// LXD's older URLs, which pylxd 2.2 uses: the same objects (every instance is a container).
	m.Handle("GET /1.0/containers", rest.Trusted, s.getInstances)
	m.Handle("GET /1.0/containers/{name}", rest.Trusted, s.getInstance)
	m.Handle("GET /1.0/containers/{name}/state", rest.Trusted, s.getInstance)
	m.Handle("POST /1.0/containers", rest.Trusted, s.postInstance)
	m.Handle("PUT /1.0/containers/{name}", rest.Trusted, s.onOwner(s.putInstance))
	m.Handle("PATCH /1.0/containers/{name}", rest.Trusted, s.onOwner(s.putInstance))
	m.Handle("DELETE /1.0/containers/{name}", rest.Trusted, s.onOwner(s.deleteInstance))
	m.Handle("PUT /1.0/containers/{name}/state", rest.Trusted, s.onOwner(s.putInstanceState))
	m.Handle("POST /1.0/containers/{name}/exec", rest.Trusted, s.onOwner(s.postInstanceExec))
	m.Handle("DELETE /1.0/instances/{name}", rest.Trusted, s.onOwner(s.deleteInstance))
	m.Handle("PUT /1.0/instances/{name}/state", rest.Trusted, s.onOwner(s.putInstanceState))
	m.Handle("POST /1.0/instances/{name}/exec", rest.Trusted, s.onOwner(s.postInstanceExec))
	m.Handle("GET /1.0/instances/{name}/files", rest.Trusted, s.onOwner(s.getFile))
	m.Handle("POST /1.0/instances/{name}/files", rest.Trusted, s.onOwner(s.postFile))
	m.Handle("DELETE /1.0/instances/{name}/files", rest.Trusted, s.onOwner(s.deleteFile))
	m.Handle("GET /internal/instances", rest.Member, s.getInternalInstances)
	m.Handle("POST /internal/instances", rest.Member, s.postInternalInstance)
	m.Handle("POST /internal/instances/{name}/settings", rest.Member, s.onOwner(s.postSettings))
	m.Handle("POST /1.0/cluster/members/{name}/state", rest.Trusted, s.postMemberState)
	m.Handle("POST /1.0/instances/{name}", rest.Trusted, s.postInstanceMove)
	m.Handle("POST /1.0/containers/{name}", rest.Trusted, s.postInstanceMove)
	m.Handle("POST /internal/instances/{name}/receive", rest.Member, s.postReceive)
	m.Handle("GET /internal/instances/{name}/rootfs", rest.Member, s.getRootfs)
	m.Handle("POST /internal/instances/{name}/drop", rest.Member, s.postDrop)
	m.Handle("POST /internal/instances/evacuation", rest.Member, s.postEvacuation)

	m.Handle("GET /1.0/profiles", rest.Trusted, s.getProfiles)
	m.Handle("POST /1.0/profiles", rest.Trusted, s.postProfile)
	m.Handle("GET /1.0/profiles/{name}", rest.Trusted, s.getProfile)
	m.Handle("POST /1.0/profiles/{name}", rest.Trusted, s.renameProfile)
	m.Handle("PUT /1.0/profiles/{name}", rest.Trusted, s.putProfile)
	m.Handle("PATCH /1.0/profiles/{name}", rest.Trusted, s.putProfile)
	m.Handle("DELETE /1.0/profiles/{name}", rest.Trusted, s.deleteProfile)
}
