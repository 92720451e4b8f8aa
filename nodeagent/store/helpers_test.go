package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"orch/internal/syncbuf"
	"orch/internal/wait"
)

// testTimings are short raft timings for in-process clusters on a loaded
// machine: elections within ~0.5 s, without flapping under fsync stalls.
func testTimings() Timings {
	return Timings{
		Heartbeat:         200 * time.Millisecond,
		Election:          200 * time.Millisecond,
		LeaderLease:       100 * time.Millisecond,
		Commit:            5 * time.Millisecond,
		SnapshotThreshold: 8192,
		SnapshotInterval:  time.Second,
		TrailingLogs:      10240,
	}
}

// node is one in-process cluster member.
type node struct {
	tb    testing.TB
	id    string
	dir   string
	addr  string
	logs  *syncbuf.Buffer
	store *Store
	tweak func(*Config)
	layer raft.StreamLayer // the listener of the running store
}

// newNode opens a fresh store in its own directory on a free loopback port.
func newNode(tb testing.TB, id string, tweak func(*Config)) *node {
	tb.Helper()
	n := &node{tb: tb, id: id, dir: tb.TempDir(), logs: &syncbuf.Buffer{}, tweak: tweak}
	tb.Cleanup(func() {
		if n.store != nil {
			n.store.Close()
		}
		if tb.Failed() {
			tb.Logf("=== logs of %s ===\n%s", n.id, n.logs.String())
		}
	})
	n.open()
	return n
}

// config builds the node's Config on a new listener (same port once known).
func (n *node) config() Config {
	n.tb.Helper()
	listen := n.addr
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	layer, err := NewTCPLayer(listen)
	if err != nil {
		n.tb.Fatalf("%s: %v", n.id, err)
	}
	n.addr, n.layer = layer.Addr().String(), layer
	h := slog.NewTextHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelDebug})
	cfg := Config{
		Dir: n.dir, ID: n.id, Address: n.addr, Stream: layer, Timings: testTimings(),
		Logger: slog.New(h).With("node", n.id),
	}
	if n.tweak != nil {
		n.tweak(&cfg)
	}
	return cfg
}

// open opens the store in the node's directory.
func (n *node) open() {
	n.tb.Helper()
	cfg := n.config()
	s, err := Open(cfg)
	if err != nil {
		cfg.Stream.Close()
		n.tb.Fatalf("%s: open: %v", n.id, err)
	}
	n.store = s
}

// stop closes the store (no leadership transfer: like a kill for raft).
func (n *node) stop() {
	n.tb.Helper()
	if err := n.store.Close(); err != nil {
		n.tb.Errorf("%s: close: %v", n.id, err)
	}
	n.store = nil
}

// cluster is a set of in-process members.
type cluster struct {
	tb    testing.TB
	nodes []*node
	mu    sync.RWMutex // guards node.store against concurrent writers (load tests)
}

// restart closes and reopens nd in the same directory, on the same port.
func (c *cluster) restart(nd *node) {
	c.tb.Helper()
	c.stop(nd)
	c.start(nd)
}

// stop closes nd's store.
func (c *cluster) stop(nd *node) {
	c.tb.Helper()
	c.mu.Lock()
	s := nd.store
	nd.store = nil
	c.mu.Unlock()
	if err := s.Close(); err != nil {
		c.tb.Errorf("%s: close: %v", nd.id, err)
	}
}

// kill stops nd as kill -9 would: its port refuses connections before its connections
// close (a store's Close ends its connections first, and a follower's probe of its port
// would still find it listening).
func (c *cluster) kill(nd *node) {
	c.tb.Helper()
	nd.layer.Close()
	c.stop(nd)
}

// start reopens nd's store.
func (c *cluster) start(nd *node) {
	c.tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	nd.open()
}

// stores returns the open stores; safe to call from any goroutine.
func (c *cluster) stores() []*Store {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []*Store
	for _, nd := range c.nodes {
		if nd.store != nil {
			out = append(out, nd.store)
		}
	}
	return out
}

// newCluster bootstraps node n0 and adds n-1 voters.
func newCluster(tb testing.TB, n int, tweak func(*Config)) *cluster {
	tb.Helper()
	c := &cluster{tb: tb}
	c.nodes = append(c.nodes, newNode(tb, "n0", tweak))
	ctx := testContext(tb, 10*time.Second)
	if err := c.nodes[0].store.Bootstrap(ctx); err != nil {
		tb.Fatalf("bootstrap: %v", err)
	}
	for i := 1; i < n; i++ {
		c.join(newNode(tb, fmt.Sprintf("n%d", i), tweak), true)
	}
	return c
}

// join adds nd to the cluster as voter or non-voter through the current
// leader and waits until every member has caught up.
func (c *cluster) join(nd *node, voter bool) {
	c.nodes = append(c.nodes, nd)
	c.tb.Helper()
	ctx := testContext(c.tb, 10*time.Second)
	l := c.leader()
	add := l.store.AddNonvoter
	if voter {
		add = l.store.AddVoter
	}
	// Adding a server again is a no-op, so a change whose outcome is unknown (the leader
	// lost its lease: a loaded machine starves it for longer than the test timings'
	// LeaderLease) is retried on the next leader.
	wait.For(c.tb, 10*time.Second, "adding "+nd.id, func() error {
		err := add(ctx, nd.id, nd.addr)
		if retryable(err) {
			l = c.leader()
			add = l.store.AddNonvoter
			if voter {
				add = l.store.AddVoter
			}
			return err
		}
		if err != nil {
			c.tb.Fatalf("adding %s: %v", nd.id, err)
		}
		return nil
	})
	c.waitConverged()
}

// retryable reports an error after which an idempotent request may be sent again to the
// next leader.
func retryable(err error) bool {
	return errors.Is(err, ErrNotLeader) || errors.Is(err, ErrClosed) || errors.Is(err, ErrLeadershipLost)
}

// leader waits for a leader among the running nodes and returns it.
func (c *cluster) leader() *node {
	c.tb.Helper()
	var found *node
	wait.For(c.tb, 10*time.Second, "a leader", func() error {
		for _, nd := range c.nodes {
			if nd.store != nil && nd.store.IsLeader() {
				found = nd
				return nil
			}
		}
		return errors.New("no running node is leader")
	})
	return found
}

// running returns the nodes whose store is open.
func (c *cluster) running() []*node {
	var out []*node
	for _, nd := range c.nodes {
		if nd.store != nil {
			out = append(out, nd)
		}
	}
	return out
}

// waitConverged waits until every running node applied the leader's last
// applied index, through a linearizable read index.
func (c *cluster) waitConverged() {
	c.tb.Helper()
	var idx uint64
	wait.For(c.tb, 10*time.Second, "read index", func() error {
		var err error
		idx, err = c.leader().store.ReadIndex(context.Background())
		return err
	})
	ctx := testContext(c.tb, 10*time.Second)
	for _, nd := range c.running() {
		if err := nd.store.WaitApplied(ctx, idx); err != nil {
			c.tb.Fatalf("%s: wait applied %d: %v", nd.id, idx, err)
		}
	}
}

// exec runs req on the current leader. Every request the tests send through it is
// idempotent (CREATE TABLE IF NOT EXISTS, INSERT OR REPLACE with explicit keys, UPDATE to a
// value): a write whose outcome is unknown because the leader lost its lease is sent again
// to the next one, so that a loaded machine starving the in-process leader past the test
// timings' LeaderLease does not fail a test that is not about that.
func (c *cluster) exec(req Request) []Result {
	c.tb.Helper()
	var res []Result
	wait.For(c.tb, 10*time.Second, "exec on the leader", func() error {
		var err error
		res, err = c.leader().store.Exec(context.Background(), req)
		if retryable(err) {
			return err
		}
		if err != nil {
			c.tb.Fatalf("exec %v: %v", req, err)
		}
		return nil
	})
	return res
}

// testContext is a context cancelled at the end of the test or after d.
func testContext(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

// dump returns every row of table on nd's replica as text, ordered.
func dump(tb testing.TB, nd *node, table string) string {
	tb.Helper()
	rows, err := nd.store.DB().Query("SELECT * FROM " + table + " ORDER BY 1")
	if err != nil {
		tb.Fatalf("%s: dump %s: %v", nd.id, table, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var b strings.Builder
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			tb.Fatalf("%s: scan: %v", nd.id, err)
		}
		fmt.Fprintln(&b, vals...)
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("%s: rows: %v", nd.id, err)
	}
	return b.String()
}

// count returns a single integer query result on nd's replica.
func count(tb testing.TB, nd *node, query string, args ...any) int64 {
	tb.Helper()
	var n int64
	if err := nd.store.DB().QueryRow(query, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %s: %v", nd.id, query, err)
	}
	return n
}

// stmt is a one-statement request.
func stmt(sql string, args ...any) Request { return Request{{SQL: sql, Args: args}} }
