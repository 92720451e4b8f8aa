package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon"
)

// ErrNoDaemon means no daemon listens on the agent directory's socket.
var ErrNoDaemon = errors.New("no daemon listens there")

// ErrNotThisMember means a command asked for another member (--target) than the one whose
// socket the agent CLI talks to.
var ErrNotThisMember = errors.New("the agent CLI reaches only its own member")

// socket is how the agent CLI reaches a member: its own daemon's unix socket (--dir).
type socket struct{ g *Globals }

// Reach returns a client of the socket (errors need not name the member: it is this
// one); a target must be this member.
func (s socket) Reach(ctx context.Context, target string) (*api.Client, string, func(), error) {
	if _, err := os.Stat(daemon.SocketPath(s.g.Dir)); errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil, fmt.Errorf("%s: %w (start one with `nodeagent daemon --dir %s`, or pick the agent with --dir or $NODEAGENT_DIR)",
			daemon.SocketPath(s.g.Dir), ErrNoDaemon, s.g.Dir)
	}
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
