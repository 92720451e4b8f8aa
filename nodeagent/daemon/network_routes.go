package daemon

import "net/http"

// networkRoutes registers the network endpoints (see the network files of this package).
func (d *Daemon) networkRoutes(m *http.ServeMux) {}
