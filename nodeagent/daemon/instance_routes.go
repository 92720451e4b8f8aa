package daemon

import "net/http"

// instanceRoutes registers the instance endpoints (see the instance files of this package).
func (d *Daemon) instanceRoutes(m *http.ServeMux) {}
