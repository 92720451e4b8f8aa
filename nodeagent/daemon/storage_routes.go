package daemon

import "net/http"

// storageRoutes registers the storage endpoints (see the storage files of this package).
// Pool creates and deletes are coordinated by the leader; volume requests are handled by
// the member receiving them, which asks the volume's member to do the work.
func (d *Daemon) storageRoutes(m *http.ServeMux) {
	d.handle(m, "GET /1.0/storage-pools", trusted, d.getStoragePools)
	d.handle(m, "POST /1.0/storage-pools", trusted, d.onLeader(d.postStoragePool))
	d.handle(m, "GET /1.0/storage-pools/{name}", trusted, d.getStoragePool)
	d.handle(m, "DELETE /1.0/storage-pools/{name}", trusted, d.onLeader(d.deleteStoragePool))
	d.handle(m, "GET /1.0/storage-pools/{name}/volumes", trusted, d.getVolumes)
	d.handle(m, "GET /1.0/storage-pools/{name}/volumes/custom", trusted, d.getVolumes)
	d.handle(m, "POST /1.0/storage-pools/{name}/volumes", trusted, d.postVolume)
	d.handle(m, "POST /1.0/storage-pools/{name}/volumes/custom", trusted, d.postVolume)
	d.handle(m, "GET /1.0/storage-pools/{name}/volumes/custom/{vol}", trusted, d.getVolume)
	d.handle(m, "DELETE /1.0/storage-pools/{name}/volumes/custom/{vol}", trusted, d.deleteVolume)
	d.handle(m, "POST /internal/storage/pools/create", member, d.postInternalEntity(poolKind, true))
	d.handle(m, "POST /internal/storage/pools/delete", member, d.postInternalEntity(poolKind, false))
	d.handle(m, "POST /internal/storage/volumes/create", member, d.postInternalVolume(true))
	d.handle(m, "POST /internal/storage/volumes/delete", member, d.postInternalVolume(false))
}
