package entity

import "orch/nodeagent/daemon/rest"

// Routes registers the storage and network endpoints. Pool and network creates and deletes
// are coordinated by the leader, which asks each member to make or remove its part; volume
// requests are handled by the member receiving them, which asks the volume's member to do
// the work.
func (s *Service) Routes(m Router) {
	m.Handle("GET /1.0/storage-pools", rest.Trusted, s.getStoragePools)
	m.Handle("POST /1.0/storage-pools", rest.Trusted, m.OnLeader(s.postStoragePool))
	m.Handle("GET /1.0/storage-pools/{name}", rest.Trusted, s.getStoragePool)
	m.Handle("GET /1.0/storage-pools/{name}/resources", rest.Trusted, s.getPoolResources)
	m.Handle("PUT /1.0/storage-pools/{name}", rest.Trusted, s.putEntity(poolKind))
	m.Handle("PATCH /1.0/storage-pools/{name}", rest.Trusted, s.putEntity(poolKind))
	m.Handle("DELETE /1.0/storage-pools/{name}", rest.Trusted, m.OnLeader(s.deleteStoragePool))
	m.Handle("GET /1.0/storage-pools/{name}/volumes", rest.Trusted, s.getVolumes)
	m.Handle("GET /1.0/storage-pools/{name}/volumes/{type}", rest.Trusted, s.getVolumes)
	m.Handle("POST /1.0/storage-pools/{name}/volumes", rest.Trusted, s.postVolume)
	m.Handle("POST /1.0/storage-pools/{name}/volumes/custom", rest.Trusted, s.postVolume)
	m.Handle("GET /1.0/storage-pools/{name}/volumes/custom/{vol}", rest.Trusted, s.getVolume)
	m.Handle("PUT /1.0/storage-pools/{name}/volumes/custom/{vol}", rest.Trusted, s.putVolume)
	m.Handle("PATCH /1.0/storage-pools/{name}/volumes/custom/{vol}", rest.Trusted, s.putVolume)
	m.Handle("DELETE /1.0/storage-pools/{name}/volumes/custom/{vol}", rest.Trusted, s.deleteVolume)
	m.Handle("POST /internal/storage/pools/create", rest.Member, s.postInternalEntity(poolKind, true))
	m.Handle("POST /internal/storage/pools/delete", rest.Member, s.postInternalEntity(poolKind, false))
	m.Handle("POST /internal/storage/pools/resources", rest.Member, s.postInternalPoolResources)
	m.Handle("POST /internal/storage/volumes/create", rest.Member, s.postInternalVolume(true))
	m.Handle("POST /internal/storage/volumes/delete", rest.Member, s.postInternalVolume(false))

	m.Handle("GET /1.0/networks", rest.Trusted, s.getNetworks)
	m.Handle("POST /1.0/networks", rest.Trusted, m.OnLeader(s.postNetwork))
	m.Handle("GET /1.0/networks/{name}", rest.Trusted, s.getNetwork)
	m.Handle("GET /1.0/networks/{name}/state", rest.Trusted, s.getNetworkState)
	m.Handle("PUT /1.0/networks/{name}", rest.Trusted, s.putEntity(networkKind))
	m.Handle("PATCH /1.0/networks/{name}", rest.Trusted, s.putEntity(networkKind))
	m.Handle("DELETE /1.0/networks/{name}", rest.Trusted, m.OnLeader(s.deleteNetwork))
	m.Handle("POST /internal/networks/create", rest.Member, s.postInternalEntity(networkKind, true))
	m.Handle("POST /internal/networks/delete", rest.Member, s.postInternalEntity(networkKind, false))
	m.Handle("POST /internal/networks/state", rest.Member, s.postInternalNetworkState)
}
