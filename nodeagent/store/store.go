package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Config says where and how a Store runs.
type Config struct {
	// Dir holds the raft log (Dir/raft, raft-wal), the snapshots
	// (Dir/snapshots) and the global database (Dir/global.db).
	Dir string
	// ID is the raft server ID: the member name.
	ID string
	// Address is the advertised raft address host:port; empty means
	// Stream.Addr().
	Address string
	// Stream is the network raft uses: the daemon passes its TLS mux layer,
	// tests pass NewTCPLayer. Open takes ownership: Close closes it, and so
	// does a failing Open.
	Stream raft.StreamLayer
	// Timings are the raft timers and snapshot policy; the zero value means
	// DefaultTimings().
	Timings Timings
	// Logger receives the store's and raft's logs; nil discards them.
	Logger *slog.Logger

	// openLogStore replaces raft-wal (the bolt benchmark uses it).
	openLogStore logStoreOpener
	// maxInflight overrides defaultMaxInflight (benchmarks).
	maxInflight int
	// walSegmentSize overrides walSegmentSize (tests: a head
	// truncation only drops whole sealed segments).
	walSegmentSize int
	// leaderSyncHook runs before each round of the leader's deferred syncs (tests).
	leaderSyncHook func() error
}

// withDefaults validates cfg and fills in defaults.
func (cfg Config) withDefaults(needStream bool) (Config, error) {
	switch {
	case cfg.Dir == "":
		return cfg, fmt.Errorf("config dir: empty: %w", ErrBadArg)
	case cfg.ID == "":
		return cfg, fmt.Errorf("config id: empty: %w", ErrBadArg)
	case needStream && cfg.Stream == nil:
		return cfg, fmt.Errorf("config stream: nil: %w", ErrBadArg)
	}
	if cfg.Address == "" && cfg.Stream != nil {
		cfg.Address = cfg.Stream.Addr().String()
	}
	if cfg.Address == "" {
		return cfg, fmt.Errorf("config address: empty: %w", ErrBadArg)
	}
	if cfg.Timings == (Timings{}) {
		cfg.Timings = DefaultTimings()
	}
	if err := cfg.Timings.Validate(); err != nil {
		return cfg, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.openLogStore == nil {
		cfg.openLogStore = openWAL
	}
	if cfg.maxInflight <= 0 {
		cfg.maxInflight = defaultMaxInflight
	}
	return cfg, nil
}

// Store is one member's replica of the global database and its raft node.
type Store struct {
	cfg    Config
	log    *slog.Logger
	raft   *raft.Raft
	trans  *raft.NetworkTransport
	ballot *ballotTransport // trans as raft uses it (broken.go, progress.go)
	// visible is lastVisible's last answer (read.go).
	visible atomic.Pointer[visibleAt]
	// lexed caches the tokens of the SQL texts written (lex.go).
	lexed   lexCache
	logs    logStore
	snaps   raft.SnapshotStore
	fsm     *fsm
	reader  *sql.DB
	lead    *leadership
	batch   *batcher
	reads   *Rounds       // leadership-confirming rounds shared by concurrent ReadIndex calls
	timers  *raftTimers   // the reloadable timeouts: stretched while leading (heartbeats.go)
	rtts    heartbeatRTTs // the leader's heartbeat round trips (rtt.go)
	contact contactWatch  // notices a silent leader at the heartbeat timeout (heartbeats.go)
	gone    goneWatch     // stands at once when the leader's process is gone (leadergone.go)
	moves   leaderMoves   // LeaderMoved (leadership.go)
	broken  fault         // first local storage failure (broken.go)

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{}
}

// disk is what Open and RecoverSingleVoter open before raft starts.
type disk struct {
	logs  logStore
	snaps raft.SnapshotStore
	fsm   *fsm
}

// close releases whatever was opened.
func (d *disk) close() error {
	var errs []error
	if d.fsm != nil {
		errs = append(errs, d.fsm.close())
	}
	if d.logs != nil {
		errs = append(errs, d.logs.Close())
	}
	return errors.Join(errs...)
}

// openDisk opens the log store, snapshot store and database, and brings a
// database that is behind the newest snapshot up to it.
func openDisk(cfg Config, hlog hclog.Logger) (*disk, error) {
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", cfg.Dir, err)
	}
	d := &disk{}
	var err error
	if d.logs, err = cfg.openLogStore(cfg, hlog); err != nil {
		return nil, err
	}
	if d.snaps, err = raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, hlog.Named("snapshots")); err != nil {
		d.close()
		return nil, fmt.Errorf("opening snapshots in %s: %w", cfg.Dir, err)
	}
	if d.fsm, err = newFSM(cfg.Dir, cfg.Logger); err != nil {
		d.close()
		return nil, err
	}
	if err = restoreNewestSnapshot(d.fsm, d.snaps); err == nil {
		err = checkLogCoverage(d.fsm, d.logs)
	}
	if err != nil {
		d.close()
		return nil, fmt.Errorf("%s: %w", filepath.Join(cfg.Dir, dbFile), err)
	}
	return d, nil
}

// checkLogCoverage fails when the log no longer holds the entries right after
// the database's applied index (and no snapshot covered them): replaying would
// silently skip writes.
func checkLogCoverage(f *fsm, logs raft.LogStore) error {
	first, err := logs.FirstIndex()
	if err != nil {
		return fmt.Errorf("reading first log index: %w", err)
	}
	cur, _, _ := f.state()
	if first > 0 && cur.index+1 < first {
		return fmt.Errorf("database applied index %d but the log starts at %d and no snapshot covers the gap", cur.index, first)
	}
	return nil
}

// Open opens or creates the store in cfg.Dir and starts raft. It does not
// bootstrap: a fresh node waits to be added by a leader (or Bootstrap is
// called); a node with state rejoins its existing configuration.
func Open(cfg Config) (*Store, error) {
	s, err := open(cfg)
	if err != nil && cfg.Stream != nil {
		cfg.Stream.Close()
	}
	return s, err
}

// open is Open without the stream cleanup.
func open(cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults(true)
	if err != nil {
		return nil, err
	}
	hlog := newHCLogger(cfg.Logger)
	d, err := openDisk(cfg, hlog)
	if err != nil {
		return nil, err
	}
	reader, err := openReader(filepath.Join(cfg.Dir, dbFile))
	if err != nil {
		d.close()
		return nil, err
	}
	s := &Store{cfg: cfg, log: cfg.Logger, logs: d.logs, snaps: d.snaps, fsm: d.fsm, reader: reader, closed: make(chan struct{})}
	s.broken.ended = make(chan struct{})
	s.reads = NewRounds(confirmTimeout, s.readIndexRound)
	if err := s.startRaft(hlog); err != nil {
		reader.Close()
		d.close()
		return nil, err
	}
	return s, nil
}

// startRaft creates the transport and the raft node, then the leadership
// tracker and the write batcher.
// logCacheEntries is how many of the last log entries raft keeps in memory
// (raft.LogCache): the leader reads every entry it just wrote back from the log
// store to replicate it, a read and a decode of a raft-wal frame per entry and
// follower. Entries are small (a batch of requests, at most maxEntryBytes).
const logCacheEntries = 32

func (s *Store) startRaft(hlog hclog.Logger) error {
	layer := watchedLayer{StreamLayer: advertisedLayer{StreamLayer: s.cfg.Stream, addr: advertisedAddr(s.cfg.Address)}, ended: s.connectionEnded}
	s.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: layer, MaxPool: 3, Timeout: 10 * time.Second, Logger: hlog.Named("transport"),
	})
	notify := make(chan bool, 1)
	rc := s.cfg.Timings.raftConfig(s.cfg.ID)
	rc.Logger = hlog.Named("raft")
	rc.NotifyCh = notify
	s.fsm.onBreak = s.breakWith
	trans := newBallotTransport(s.trans, s.Broken, s.mayCampaign, s.closed)
	s.ballot = trans
	s.timers = newRaftTimers(nil, s.cfg.Timings)
	trans.onConfiguration = func() { s.timers.refreshVoter(raft.ServerID(s.cfg.ID)) }
	trans.onHeartbeat = s.heartbeatAnswered
	s.startContactWatch()
	var syncs *deferredSyncs // raft-wal's: the leader's appends synced beside replication
	if d, ok := s.logs.(interface{ deferred() *deferredSyncs }); ok {
		syncs = d.deferred()
		s.fsm.durable = syncs.waitDurable
		trans.commitLimit = syncs.durable.Load
	}
	logs, err := raft.NewLogCache(logCacheEntries, faultLog{logStore: s.logs, onFail: s.breakWith})
	if err != nil {
		s.contact.timer.Stop()
		s.trans.Close()
		return err
	}
	r, err := raft.NewRaft(rc, s.fsm, logs, s.logs, s.snaps, trans)
	if err != nil {
		s.contact.timer.Stop()
		s.trans.Close()
		return fmt.Errorf("starting raft for %s: %w", s.cfg.ID, err)
	}
	s.raft = r
	if syncs != nil {
		syncs.setLeading(func() bool { return r.State() == raft.Leader })
	}
	s.timers.attach(r)
	s.timers.refreshVoter(raft.ServerID(s.cfg.ID))
	s.lead = newLeadership(r, notify, s.onLeadership)
	s.watchLeaderMoves()
	s.batch = newBatcher(r, s.cfg.maxInflight, s.mapRaftErr, s.SpreadCommit)
	return nil
}

// onLeadership runs on every leadership change: it switches raft's heartbeat timeout
// between the leader's stretched one and the configured one (heartbeats.go), and a broken
// member that won an election (as a last resort) hands leadership over at once.
func (s *Store) onLeadership(leader bool) {
	s.timers.lead(leader)
	s.timers.refreshVoter(raft.ServerID(s.cfg.ID))
	if leader && s.Broken() != nil {
		go s.stepAside()
	}
}

// Close shuts raft down (without transferring leadership), fails queued
// writes with ErrClosed and closes the databases and the log.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.contact.timer.Stop()
		var errs []error
		errs = append(errs, s.raft.Shutdown().Error())
		s.batch.close()
		s.lead.close()
		errs = append(errs, s.trans.Close(), s.reader.Close(), s.fsm.close(), s.logs.Close())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// HasState reports whether this node has raft state (log, term or snapshot):
// it was bootstrapped or has joined a cluster.
func (s *Store) HasState() (bool, error) {
	return raft.HasExistingState(s.logs, s.logs, s.snaps)
}

// Bootstrap makes this node the single voter of a new cluster and returns
// once it is leader. It fails with ErrHasState if the node already has state.
func (s *Store) Bootstrap(ctx context.Context) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if has, err := s.HasState(); err != nil {
		return err
	} else if has {
		return fmt.Errorf("bootstrapping %s: %w", s.cfg.ID, ErrHasState)
	}
	conf := raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter, ID: raft.ServerID(s.cfg.ID), Address: raft.ServerAddress(s.cfg.Address),
	}}}
	if err := s.raft.BootstrapCluster(conf).Error(); err != nil {
		if errors.Is(err, raft.ErrCantBootstrap) {
			return fmt.Errorf("bootstrapping %s: %w", s.cfg.ID, ErrHasState)
		}
		return fmt.Errorf("bootstrapping %s: %w", s.cfg.ID, err)
	}
	s.timers.refreshVoter(raft.ServerID(s.cfg.ID))
	s.electNow()
	return s.lead.waitLeader(ctx, s.closed)
}

// electNow makes a follower that is the single voter of its configuration stand for
// election at once instead of after its heartbeat timeout (0.4-0.8 s with the default
// timings): raftTimers.checkNow. Without room under the heartbeat timeout (LeaderLease ==
// Heartbeat) the election just comes at the usual time.
func (s *Store) electNow() {
	s.timers.checkNow()
}

// checkOpen returns ErrClosed after Close.
func (s *Store) checkOpen() error {
	select {
	case <-s.closed:
		return ErrClosed
	default:
		return nil
	}
}

// mapRaftErr turns raft's errors into the store's sentinels.
func (s *Store) mapRaftErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrNotVoter),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return s.notLeader()
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%w: %w", ErrLeadershipLost, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrClosed
	}
	return err
}

// notLeader builds the NotLeaderError naming the current leader if known.
func (s *Store) notLeader() error {
	id, addr := s.Leader()
	return &NotLeaderError{LeaderID: id, LeaderAddr: addr}
}

// waitFuture waits for a raft future or the context, whichever ends first.
func waitFuture(ctx context.Context, f raft.Future) error {
	ch := make(chan error, 1)
	go func() { ch <- f.Error() }()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
