package cli

import (
	"context"
	"errors"
	"fmt"

	"orch/nodeagent/api"
)

// ErrNotThisMember means a command asked for another member (--target) than the one whose
// socket the agent CLI talks to.
var ErrNotThisMember = errors.New("the agent CLI reaches only its own member")

// socket is how the agent CLI reaches a member: its own daemon's unix socket (--dir).
type socket struct{ g *Globals }

// Reach returns a client of the socket (errors need not name the member: it is this
// one); a target must be this member.
func (s socket) Reach(ctx context.Context, target string) (*api.Client, string, func(), error) {
	cl := s.g.client()
	if target == "" {
		return cl, "", func() { cl.Close() }, nil
	}
	srv, _, err := cl.Server(ctx)
	if err != nil {
		cl.Close()
		return nil, "", nil, err
	}
	if me := srv.Environment.ServerName; me != target {
		cl.Close()
		return nil, "", nil, fmt.Errorf("--target %s: %w (%s): run it on %s, or through orch", target, ErrNotThisMember, me, target)
	}
	return cl, "", func() { cl.Close() }, nil
}
