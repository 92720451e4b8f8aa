// Package daemon is the nodeagent daemon: it owns the member's agent directory and the
// membership and health of the member: bootstrap, init, join, removal, heartbeats and
// member states, roles, epochs, the version gate, and recovery from quorum loss with the
// daemon stopped (recovery.go). Serving (the unix-socket API, the cluster API over HTTPS
// with mutual TLS and raft on the same port, access levels, forwarding to the leader or a
// member, the database access) is daemon/serve, which reads membership through the
// interfaces it declares (serving.go implements them). It is the composition root of the
// domain packages under it (serve, images, entity, instances, trust, serverconfig, ...),
// wiring each to the small interfaces it declares (wiring.go, serving.go, DESIGN.md).
//
// It must not import orchestrator, playbooks or inventory.
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"orch/nodeagent/daemon/events"
	"orch/nodeagent/daemon/operations"

	"orch/nodeagent/api"
	"orch/nodeagent/api/pki"
	"orch/nodeagent/daemon/entity"
	"orch/nodeagent/daemon/epoch"
	"orch/nodeagent/daemon/images"
	"orch/nodeagent/daemon/instances"
	"orch/nodeagent/daemon/memberinfo"
	"orch/nodeagent/daemon/metrics"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/daemon/serve"
	"orch/nodeagent/daemon/serverconfig"
	"orch/nodeagent/daemon/tokens"
	"orch/nodeagent/daemon/trust"
	"orch/nodeagent/daemon/upgrade"
	"orch/nodeagent/localdb"
	"orch/nodeagent/store"
	"orch/nodeagent/version"
)

// Sentinel errors of the daemon.
var (
	ErrNotInitialised = rest.ErrNotInitialised
	ErrInitialised    = errors.New("this member is already initialised")
	ErrHasData        = errors.New("the agent directory already holds cluster data; joining would lose it (pass --wipe to join anyway)")
	ErrRunning        = serve.ErrRunning
	ErrStarting       = rest.ErrStarting
	ErrStopping       = rest.ErrStopping
)

// Config configures a daemon.
type Config struct {
	// Dir is the agent directory (DIR/unix.socket, DIR/local.db, DIR/cluster.crt, DIR/database/).
	Dir string
	// Logger receives the daemon's logs; nil means slog.Default().
	Logger *slog.Logger
	// Timings are fixed raft timings (tests); zero means the cluster's (the
	// cluster.raft_* keys, store.DefaultTimings() until set).
	Timings store.Timings
	// Version overrides the build's version triple (tests only); zero means version.Current().
	Version version.Info
	// ClockOffset shifts this daemon's notion of now (tests and fault injection only:
	// `nodeagent daemon --debug-clock-offset`), as a member whose clock is wrong.
	ClockOffset time.Duration
}

// Daemon is one running nodeagent.
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	version version.Info
	local   *localdb.DB
	// server is DIR/server.crt/.key: the member's own certificate before it is clustered (its
	// identity and its client certificate when joining), the cluster certificate once it is
	// a member, as LXD keeps it, so that the guide's recipe reading server.crt works.
	server atomic.Pointer[pki.KeyPair]

	mu          sync.Mutex // serialises init, join, removal and listener changes
	roleMu      sync.Mutex // serialises raft role changes
	loopMu      sync.Mutex // serialises starting and stopping the member's loops (and the store watcher's reopening)
	st          atomic.Pointer[store.Store]
	cluster     atomic.Pointer[clusterIdentity]
	name        atomic.Pointer[string]
	srv         *serve.Server  // listeners, routes, forwarding, database access (daemon/serve)
	trust       *trust.Service // trusted client certificates (daemon/trust)
	health      *health
	stopLoops   context.CancelFunc
	loops       sync.WaitGroup
	shutdownCtx context.Context
	fence       *epoch.Fence          // the cluster epoch this member belongs to, and whether it was cut off (daemon/epoch)
	node        nodeDrivers           // containers and images of this member (instance_node.go)
	ents        *entity.Service       // storage pools, volumes and networks (daemon/entity)
	insts       *instances.Service    // instances and profiles (daemon/instances)
	conf        *serverconfig.Service // the server configuration, PUT/PATCH /1.0 (daemon/serverconfig)
	migrator    *upgrade.Migrator     // schema migrations on the leader (daemon/upgrade)
	infos       *memberinfo.Service   // members' architecture, failure domain, description (daemon/memberinfo)
	tokens      *tokens.Service       // join tokens (daemon/tokens)
	imgs        *images.Service       // images and remotes (daemon/images)
	ops         *operations.Manager   // background operations, cluster wide (daemon/operations)
	events      *events.Hub           // /1.0/events, cluster wide (daemon/events)
	metrics     *metrics.Service      // GET /1.0/metrics (daemon/metrics)
	debug       debugServer           // core.debug_address (debug.go)
	timings     raftTimings           // the cluster's raft timing keys (raft_timings.go)
	host        api.Environment       // GET /1.0's host fields, fixed while the daemon runs (server.go)
	lastServer  atomic.Pointer[serverAnswer]
	certView    atomic.Pointer[certView]

	// resumed is set once Run has reopened the member's database (or found the directory
	// uninitialised): until then GET /1.0 answers 503, so that `waitready` cannot return
	// before a consistent read is possible.
	resumed atomic.Bool
	// stopping is set when Run begins to shut down: from then on a missing database is
	// answered "stopping", not "not initialised".
	stopping atomic.Bool
	// repairing is set while the store watcher reopens a broken database (repair.go).
	repairing atomic.Bool
	watch     storeWatch // the store watcher (repair.go)
	// beforeOpenStore, when set (tests), runs in resume between starting the network and
	// opening the database: the moment a restarted member serves without a database.
	beforeOpenStore func()
}

// clusterIdentity is the cluster certificate every member shares.
type clusterIdentity struct {
	pair        pki.KeyPair
	tls         tls.Certificate
	der         []byte
	fingerprint string
	id          serve.Identity // the same, as the serving layer takes it
}

// New opens the agent directory; it serves nothing until Run.
func New(cfg Config) (*Daemon, error) {
	if cfg.Dir == "" {
		return nil, errors.New("agent directory not set")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	fixedTimings := cfg.Timings != (store.Timings{})
	if cfg.Version == (version.Info{}) {
		cfg.Version = version.Current()
	}
	if err := os.MkdirAll(cfg.Dir, 0o711); err != nil {
		return nil, err
	}
	local, err := localdb.Open(filepath.Join(cfg.Dir, "local.db"))
	if err != nil {
		return nil, err
	}
	server, err := pki.LoadOrGenerate(cfg.Dir, serverCertBase, "nodeagent")
	if err != nil {
		local.Close()
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	d := &Daemon{cfg: cfg, log: cfg.Logger, version: cfg.Version, local: local, host: hostEnvironment()}
	d.timings.fixed = fixedTimings
	d.server.Store(&server)
	d.fence = epoch.New(local, d.memberName, cfg.Logger, d.retire)
	if err := d.fence.Load(); err != nil {
		local.Close()
		return nil, err
	}
	if err := d.dropStaleClusterIdentity(); err != nil {
		local.Close()
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	d.health = newHealth()
	d.wireDomains()
	d.srv = d.newServer()
	return d, nil
}

// SocketPath is the daemon's unix socket in dir.
func SocketPath(dir string) string { return api.SocketPath(dir) }

func (d *Daemon) storeDir() string { return filepath.Join(d.cfg.Dir, "database") }

// Run serves until ctx is done, then shuts down cleanly: a voter hands its role over first.
func (d *Daemon) Run(ctx context.Context) error {
	d.shutdownCtx = ctx
	if err := d.srv.ServeUnix(SocketPath(d.cfg.Dir)); err != nil {
		return err
	}
	if err := d.reconcileDebug(); err != nil {
		d.log.Warn("core.debug_address: not serving pprof", "err", err)
	}
	if err := d.resume(ctx); err != nil {
		d.log.Error("resuming cluster membership failed", "err", err)
		d.stopAll()
		return err
	}
	d.resumed.Store(true)
	d.log.Info("daemon ready", "dir", d.cfg.Dir, "version", d.version.Version)
	<-ctx.Done()
	d.stopping.Store(true)
	d.shutdown()
	return nil
}

// resume restarts the member's cluster part when the directory is initialised.
func (d *Daemon) resume(ctx context.Context) error {
	name, err := d.local.Get(localdb.KeyMemberName)
	if err != nil || name == "" {
		return err
	}
	cid, err := d.loadClusterIdentity()
	if err != nil {
		return err
	}
	if err := d.serverIsCluster(cid.pair); err != nil {
		return err
	}
	d.setName(name)
	d.cluster.Store(cid)
	if err := d.srv.StartNetwork(); err != nil {
		return err
	}
	if c := d.cutOffState(); c != nil {
		d.log.Error("not starting the database: this member is cut off from the cluster", "reason", c.Error())
		return nil
	}
	if d.beforeOpenStore != nil {
		d.beforeOpenStore()
	}
	if err := d.openStore(); err != nil {
		return err
	}
	d.startLoops()
	d.restoreTokens()
	go d.checkEpochAtStart(ctx) // after startLoops: retire may stop what they started
	go d.afterRecovery(ctx)
	go d.announce(ctx)
	go func() {
		d.ents.AfterResume(ctx)
		d.insts.Autostart(ctx)
	}()
	return nil
}

func (d *Daemon) loadClusterIdentity() (*clusterIdentity, error) {
	kp, err := pki.Load(d.cfg.Dir, clusterCertBase)
	if err != nil {
		return nil, fmt.Errorf("cluster certificate: %w", err)
	}
	return newClusterIdentity(kp)
}

func newClusterIdentity(kp pki.KeyPair) (*clusterIdentity, error) {
	cert, err := kp.TLS()
	if err != nil {
		return nil, fmt.Errorf("cluster certificate: %w", err)
	}
	der, err := pki.DER(kp.CertPEM)
	if err != nil {
		return nil, err
	}
	fp, _ := kp.Fingerprint()
	return &clusterIdentity{pair: kp, tls: cert, der: der, fingerprint: fp,
		id: serve.Identity{TLS: cert, DER: der, Fingerprint: fp}}, nil
}

func (d *Daemon) setName(n string) { d.name.Store(&n) }

// now is this member's clock (shifted by Config.ClockOffset in fault tests). Times that
// enter the database are read from it on the leader (heartbeats, joins, tokens).
func (d *Daemon) now() time.Time { return time.Now().Add(d.cfg.ClockOffset) }

// memberName is this member's name, "" before init.
func (d *Daemon) memberName() string {
	if p := d.name.Load(); p != nil {
		return *p
	}
	return ""
}

func (d *Daemon) store() *store.Store { return d.st.Load() }

// initialised reports whether the agent directory holds a member (its name is recorded).
func (d *Daemon) initialised() bool {
	name, err := d.local.Get(localdb.KeyMemberName)
	return err == nil && name != ""
}

// noStore is why this member has no open cluster database: it is stopping, it is
// initialised but Run has not reopened the database yet (ErrStarting: a 503 that says try
// again, where "not initialised" or a 403 would read as a refusal), or it has none.
func (d *Daemon) noStore() error {
	switch {
	case d.stopping.Load():
		return ErrStopping
	case d.repairing.Load():
		return rest.ErrRepairing
	case !d.resumed.Load() && d.initialised() && d.cutOffState() == nil:
		return ErrStarting
	}
	return ErrNotInitialised
}

func (d *Daemon) openStore() error {
	cid := d.cluster.Load()
	layer, err := d.srv.Mux().RaftLayer(serve.PeerTLS(&cid.id), d.clusterAddress(), d.fence.Raft())
	if err != nil {
		return err
	}
	st, err := store.Open(store.Config{
		Dir: d.storeDir(), ID: d.memberName(), Address: d.clusterAddress(),
		Stream: layer, Timings: d.storeTimings(), Logger: d.log.With("component", "store"),
	})
	if err != nil {
		return fmt.Errorf("opening the database: %w", err)
	}
	d.st.Store(st)
	return nil
}

// clusterAddress is this member's cluster.https_address.
func (d *Daemon) clusterAddress() string {
	v, _ := d.local.Get("cluster.https_address")
	return v
}

// startLoops starts the member's loops and the store watcher (repair.go).
func (d *Daemon) startLoops() {
	d.startMemberLoops()
	d.startWatch()
}

// startMemberLoops starts heartbeats, the record of the raft position and the
// architecture loop over the current store.
func (d *Daemon) startMemberLoops() {
	d.loopMu.Lock()
	defer d.loopMu.Unlock()
	d.startMemberLoopsLocked()
}

func (d *Daemon) startMemberLoopsLocked() {
	ctx, cancel := context.WithCancel(context.Background())
	d.stopLoops = cancel
	d.loops.Add(3)
	go func() { defer d.loops.Done(); d.heartbeatLoop(ctx) }()
	go func() { defer d.loops.Done(); d.recordLoop(ctx) }()
	go func() { defer d.loops.Done(); d.infos.ArchitectureLoop(ctx) }()
}

// recordLoop keeps the node-local database's copy of the last applied raft index and term
// current, so that `cluster list-database` can print them with the daemon stopped. It
// wakes when the replica applies entries (store.AppliedChange), at most every
// recordEvery: a ticker woke every idle member twice a second for nothing.
func (d *Daemon) recordLoop(ctx context.Context) {
	var last uint64
	for {
		var changed <-chan struct{}
		if st := d.store(); st != nil {
			changed = st.AppliedChange()
		}
		d.recordIndex(&last)
		select {
		case <-ctx.Done():
			d.recordIndex(&last)
			return
		case <-changed:
		}
		t := time.NewTimer(recordEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			d.recordIndex(&last)
			return
		case <-t.C:
		}
	}
}

// recordEvery bounds how often recordLoop writes the node-local database under writes.
const recordEvery = 500 * time.Millisecond

func (d *Daemon) recordIndex(last *uint64) {
	st := d.store()
	if st == nil {
		return
	}
	i, t := st.LastIndexTerm()
	if i == *last {
		return
	}
	if err := d.local.SetLastIndexTerm(i, t); err != nil {
		d.log.Warn("recording the last raft index failed", "err", err)
		return
	}
	*last = i
}

// shutdown hands the raft role over (when a voter), then stops everything.
func (d *Daemon) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if instances.HostShuttingDown() {
		d.insts.StopForShutdown()
	}
	d.handover(ctx)
	d.stopAll()
}

func (d *Daemon) stopAll() {
	d.stopMember()
	d.srv.Close()
	d.debug.close()
	d.local.Close()
}

// stopMemberLoops stops the loops startMemberLoops started and waits for them.
func (d *Daemon) stopMemberLoops() {
	d.loopMu.Lock()
	defer d.loopMu.Unlock()
	d.stopMemberLoopsLocked()
}

func (d *Daemon) stopMemberLoopsLocked() {
	if d.stopLoops != nil {
		d.stopLoops()
		d.loops.Wait()
		d.stopLoops = nil
	}
}

// stopMember stops the cluster part: loops, store, network listeners.
func (d *Daemon) stopMember() {
	d.stopWatch() // first: a repair must not reopen the store behind this
	d.stopMemberLoops()
	if st := d.st.Swap(nil); st != nil {
		if err := st.Close(); err != nil {
			d.log.Warn("closing the database", "err", err)
		}
	}
	d.srv.StopNetwork()
}

// afterRecovery runs on the first start after recover-from-quorum-loss: once this member
// leads, every other member is marked as not seen since the epoch, so the lost members show
// OFFLINE at once instead of looking alive until the threshold passes.
func (d *Daemon) afterRecovery(ctx context.Context) {
	if v, _ := d.local.Get(localdb.KeyRecovered); v == "" {
		return
	}
	for ctx.Err() == nil {
		st := d.store()
		if st == nil {
			return
		}
		if st.IsLeader() {
			_, err := d.exec(ctx, storeStmt(`UPDATE members SET heartbeat = 0 WHERE name != ?`, d.memberName()))
			if err == nil {
				err = d.recordEpochReplicated(ctx)
			}
			if err == nil {
				_ = d.local.Set(map[string]string{localdb.KeyRecovered: ""})
				d.log.Info("recovered from quorum loss: other members marked offline")
				return
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}
