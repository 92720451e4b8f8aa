package daemon

import "net/http"

// networkRoutes registers the network endpoints (network_*.go). Creates and deletes are
// coordinated by the leader, which asks each member to make or remove its bridge.
func (d *Daemon) networkRoutes(m *http.ServeMux) {
	d.handle(m, "GET /1.0/networks", trusted, d.getNetworks)
	d.handle(m, "POST /1.0/networks", trusted, d.onLeader(d.postNetwork))
	d.handle(m, "GET /1.0/networks/{name}", trusted, d.getNetwork)
	d.handle(m, "DELETE /1.0/networks/{name}", trusted, d.onLeader(d.deleteNetwork))
	d.handle(m, "POST /internal/networks/create", member, d.postInternalEntity(networkKind, true))
	d.handle(m, "POST /internal/networks/delete", member, d.postInternalEntity(networkKind, false))
}
