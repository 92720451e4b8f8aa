package daemon

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"orch/nodeagent/api"
)

// A member whose daemon shuts down has closed its database while its socket still answers
// for a moment: `cluster list-database` is told it is stopping, not "not initialised".
func TestStoppingMemberSaysSo(t *testing.T) {
	m := runMember(t, bootstrapped(t))
	cl := api.NewUnixClient(SocketPath(m.d.cfg.Dir))
	defer cl.Close()
	ctx := context.Background()
	if _, err := cl.Database(ctx); err != nil {
		t.Fatalf("list-database of the running member: %v", err)
	}
	// What Run does on its way out, up to closing the listeners.
	m.d.stopping.Store(true)
	m.d.stopMember()
	_, err := cl.Database(ctx)
	if !isAPIError(err, http.StatusServiceUnavailable, "stopping") {
		t.Errorf("list-database of a stopping member: %v, want 503 saying it is stopping", err)
	}
	if err != nil && strings.Contains(err.Error(), "not initialised") {
		t.Errorf("a stopping member says it is not initialised: %v", err)
	}
}
