package cli

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"orch/nodeagent/daemon"
	"orch/nodeagent/store"
)

// DaemonCmd runs the daemon in the foreground; a supervisor (systemd or orch's detached
// launcher) keeps it running. It never forks or restarts itself.
type DaemonCmd struct {
	Debug bool `help:"Log debug messages."`
	// Fixed raft timings for tests; a cluster's are its cluster.raft_* keys.
	RaftHeartbeat   time.Duration `help:"Raft heartbeat timeout." hidden:""`
	RaftElection    time.Duration `help:"Raft election timeout." hidden:""`
	RaftLeaderLease time.Duration `help:"Raft leader lease timeout." hidden:""`
	// DebugClockOffset shifts the daemon's clock (fault tests: a member whose clock is wrong).
	DebugClockOffset time.Duration `name:"debug-clock-offset" help:"Test only: shift this daemon's clock by DURATION (e.g. 60s, -60s)." hidden:""`
}

// Run serves until SIGTERM or SIGINT, then shuts down cleanly.
func (c *DaemonCmd) Run(g *Globals) error {
	level := slog.LevelInfo
	if c.Debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(g.Stderr, &slog.HandlerOptions{Level: level}))
	if err := daemon.TuneRuntime(os.Getenv("GOMAXPROCS")); err != nil {
		log.Info("the runtime's monitor thread keeps its timer slack", "error", err)
	}
	// Without the test flags the timings are the cluster's (cluster.raft_* keys).
	var t store.Timings
	if c.RaftHeartbeat > 0 || c.RaftElection > 0 || c.RaftLeaderLease > 0 {
		t = store.DefaultTimings()
		if c.RaftHeartbeat > 0 {
			t.Heartbeat = c.RaftHeartbeat
		}
		if c.RaftElection > 0 {
			t.Election = c.RaftElection
		}
		if c.RaftLeaderLease > 0 {
			t.LeaderLease = c.RaftLeaderLease
		}
		if err := t.Validate(); err != nil {
			return err
		}
	}
	d, err := daemon.New(daemon.Config{Dir: g.Dir, Logger: log, Timings: t, ClockOffset: c.DebugClockOffset})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return d.Run(ctx)
}
