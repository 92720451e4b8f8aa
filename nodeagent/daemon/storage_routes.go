package daemon

import "net/http"

// storageRoutes registers the storage endpoints (see the storage files of this package).
func (d *Daemon) storageRoutes(m *http.ServeMux) {}
