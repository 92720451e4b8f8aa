package daemon

import "net/http"

// instanceRoutes registers the instance and profile endpoints (instance_*.go) and the
// images domain's (daemon/images). Requests about one instance run on the member owning it (onOwner).
func (d *Daemon) instanceRoutes(m *http.ServeMux) {
	d.handle(m, "GET /1.0/instances", trusted, d.getInstances)
	d.handle(m, "POST /1.0/instances", trusted, d.postInstance)
	d.handle(m, "GET /1.0/instances/{name}", trusted, d.getInstance)
	d.handle(m, "DELETE /1.0/instances/{name}", trusted, d.onOwner(d.deleteInstance))
	d.handle(m, "PUT /1.0/instances/{name}/state", trusted, d.onOwner(d.putInstanceState))
	d.handle(m, "POST /1.0/instances/{name}/exec", trusted, d.onOwner(d.postInstanceExec))
	d.handle(m, "GET /1.0/instances/{name}/files", trusted, d.onOwner(d.getFile))
	d.handle(m, "POST /1.0/instances/{name}/files", trusted, d.onOwner(d.postFile))
	d.handle(m, "GET /internal/instances", member, d.getInternalInstances)
	d.handle(m, "POST /internal/instances", member, d.postInternalInstance)

	d.handle(m, "GET /1.0/profiles", trusted, d.getProfiles)
	d.handle(m, "POST /1.0/profiles", trusted, d.postProfile)
	d.handle(m, "GET /1.0/profiles/{name}", trusted, d.getProfile)
	d.handle(m, "PUT /1.0/profiles/{name}", trusted, d.putProfile)
	d.handle(m, "DELETE /1.0/profiles/{name}", trusted, d.deleteProfile)

	d.imgs.Routes(router{d: d, mux: m})
}
