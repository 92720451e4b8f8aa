package daemon

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"orch/nodeagent/api"
)

// TestBetweenLeaders: a join is completed again only on answers that mean the leader
// changed under the request (503), never on a refusal.
func TestBetweenLeaders(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("completing: %w", &api.Error{Code: http.StatusServiceUnavailable, Message: "making node3 a voter: not the raft leader"}), true},
		{&api.Error{Code: http.StatusNotFound, Message: `member "node3" is not being joined`}, false},
		{&api.Error{Code: http.StatusForbidden, Message: "refused"}, false},
		{errors.New("some other failure"), false},
	} {
		if got := betweenLeaders(c.err); got != c.want {
			t.Errorf("betweenLeaders(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
