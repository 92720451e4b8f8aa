package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/daemon/serve"
	"orch/nodeagent/daemon/upgrade"
	"orch/nodeagent/localdb"
	"orch/nodeagent/store"
	"orch/nodeagent/version"
)

// health is what this member learnt from the leader's last heartbeat.
type health struct {
	mu      sync.Mutex
	leader  string // leader's cluster address
	members []heartbeatMember
	hash    string // membersHash(members)
	// held is, on the leader, the hash of the member list each member said it holds
	// (membersHaveHeader): a member holding the current list gets heartbeats without it.
	held map[string]string
	// seen is, on the leader, when each member last answered a heartbeat round.
	seen    map[string]time.Time
	cluster version.Info // the database's schema version and API level
	heard   bool         // a heartbeat (or an announce answer) arrived since start
	kick    chan struct{}
	// offset is the leader's clock minus this member's, measured when its last heartbeat
	// arrived (clockHeader); zero until one has.
	offset time.Duration
}

// clockHeader carries the sender's clock (Unix milliseconds) on every member-to-member
// request (serve sets it), so that a member learns the leader's clock from its heartbeats.
// A header, not a heartbeat field: members of an older version decode heartbeats strictly.
const clockHeader = serve.ClockHeader

// clusterNow is the leader's clock as this member knows it: its own clock when it leads,
// else its own clock shifted by the offset measured at the leader's last heartbeat. Member
// health (ONLINE/OFFLINE) is always decided on it, so that one member's wrong clock does
// not make it see every other member OFFLINE or refuse operations.
func (d *Daemon) clusterNow() time.Time {
	now := d.now()
	if st := d.store(); st != nil && st.IsLeader() {
		return now
	}
	d.health.mu.Lock()
	defer d.health.mu.Unlock()
	return now.Add(d.health.offset)
}

// noteLeaderClock records the offset of the leader's clock sent with a heartbeat.
func (d *Daemon) noteLeaderClock(r *http.Request) {
	ms, err := strconv.ParseInt(r.Header.Get(clockHeader), 10, 64)
	if err != nil || ms <= 0 {
		return
	}
	off := time.UnixMilli(ms).Sub(d.now())
	d.health.mu.Lock()
	d.health.offset = off
	d.health.mu.Unlock()
}

func newHealth() *health {
	return &health{kick: make(chan struct{}, 1), held: map[string]string{}, seen: map[string]time.Time{}}
}

// membersHashHeader (leader to member) is membersHash of the cluster's member list; a
// heartbeat whose members are null means "the list you said you hold". membersHaveHeader
// (in the member's answer) is the hash of the list the member holds. Headers rather than
// fields: members of an older version decode heartbeats strictly, and as they never answer
// with membersHaveHeader they always get the full list. With 200 members the full list is
// ~30 KB that every member decoded every round for nothing while membership was unchanged.
const (
	membersHashHeader = "X-Orch-Members-Hash"
	membersHaveHeader = "X-Orch-Members-Have"
)

// membersHash identifies a member list (names, addresses, roles, versions), in order.
func membersHash(ms []heartbeatMember) string {
	h := fnv.New64a()
	for _, m := range ms {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%d\x00%d\x01", m.Name, m.Address, m.Role, m.Version.Version, m.Version.Schema, m.Version.APILevel)
	}
	return strconv.FormatUint(h.Sum64(), 16)
}

// holds reports whether member name said it holds the member list of hash.
func (h *health) holds(name, hash string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held[name] == hash
}

// answered reports whether member name answered this leader's previous round (or it is
// this leader's first round, when nobody is known).
func (h *health) answered(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.held[name]
	return ok || len(h.held) == 0
}

// setHeld records the hash of the member list that member name holds ("" forgets it).
func (h *health) setHeld(name, hash string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if hash == "" {
		delete(h.held, name)
		return
	}
	h.held[name] = hash
}

// forgetHeld drops what members said they hold and when they last answered (on gaining or
// losing leadership): another leader may have heard from them since.
func (h *health) forgetHeld() {
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.held)
	clear(h.seen)
}

// kickRound asks the heartbeat loop for a round now (on the leader), so that a version or
// membership change reaches every member at once rather than at the next interval.
func (h *health) kickRound() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

func (h *health) leaderHint() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.leader
}

// heartbeatMember is one member as a heartbeat describes it.
type heartbeatMember struct {
	Name    string       `json:"name"`
	Address string       `json:"address"`
	Role    string       `json:"role"`
	Version version.Info `json:"version"`
}

// heartbeat is the body the leader sends to every member each round.
type heartbeat struct {
	Leader        string            `json:"leader"`
	LeaderAddress string            `json:"leader_address"`
	Members       []heartbeatMember `json:"members"`
	// Cluster is the database's schema version and API level (meta table).
	Cluster version.Info `json:"cluster"`
}

// announcement is what a member sends the leader when it starts, and answers a heartbeat with.
type announcement struct {
	Name    string       `json:"name"`
	Version version.Info `json:"version"`
}

// heartbeatInterval derives the round interval from the offline threshold: four rounds per
// threshold, so that one lost round never makes a live member OFFLINE, bounded to keep idle
// CPU low on large thresholds and the load sane on tiny test thresholds.
func heartbeatInterval(threshold time.Duration) time.Duration {
	iv := threshold / 4
	return min(max(iv, 200*time.Millisecond), 5*time.Second)
}

// thresholdRecheck is the shortest time between two checks of cluster.offline_threshold
// between rounds. The leader checks it when its replica applies entries (a lowered
// threshold shortens the current wait instead of letting members look OFFLINE), at most
// this often under a write load, and not at all while idle: polling it every 250 ms woke
// an idle leader 4 times a second (~10% of its idle CPU, issue 19).
const thresholdRecheck = 250 * time.Millisecond

// recoveryPoll is how often a leader that was just recovered from quorum loss checks
// whether the lost members have been marked OFFLINE (afterRecovery), before its first round.
const recoveryPoll = 50 * time.Millisecond

// heartbeatLoop runs on every member and acts while this member is the raft leader: a round
// every interval (jittered ±10%), measured from the start of the previous round. A kick
// (announce, migration) or gaining leadership starts a round at once. It follows raft's
// leadership notifications, so a member that does not lead sleeps until it does.
func (d *Daemon) heartbeatLoop(ctx context.Context) {
	st := d.store()
	if st == nil {
		return
	}
	leaderCh := st.LeaderChanges()
	leading := false
	recovered, _ := d.local.Get(localdb.KeyRecovered)
	sched := roundSchedule{recovering: recovered != ""}
	for {
		var timeout <-chan time.Time
		var applied <-chan struct{}
		var t *time.Timer
		if leading {
			var wait time.Duration
			wait, applied = d.leaderStep(ctx, st, &sched)
			t = time.NewTimer(wait)
			timeout = t.C
		}
		select {
		case <-ctx.Done():
		case v, ok := <-leaderCh:
			if !ok {
				return // the store closed
			}
			if v != leading {
				leading, sched.next = v, time.Time{}
				d.health.forgetHeld()
			}
		case <-d.health.kick:
			sched.next = time.Time{}
		case <-applied:
			sched.checked = time.Now()
		case <-timeout:
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// roundSchedule is the heartbeat loop's state while this member leads.
type roundSchedule struct {
	last, next time.Time // start of the last round, and when the next is due
	// checked is when an applied entry last woke the loop to check the threshold; the
	// next such wake waits until thresholdRecheck after it.
	checked time.Time
	iv      intervalCache
	// recovering is set while this member, restarted after recover-from-quorum-loss, may
	// not yet have marked the lost members OFFLINE: a round then would see them ONLINE and
	// make them voters again.
	recovering bool
}

// leaderStep runs a round when one is due and returns how long to wait before the next
// step, and a channel closed when the replica applies entries (nil while an applied entry
// woke the loop less than thresholdRecheck ago: then the wait ends by then).
func (d *Daemon) leaderStep(ctx context.Context, st *store.Store, s *roundSchedule) (time.Duration, <-chan struct{}) {
	if s.recovering {
		if v, _ := d.local.Get(localdb.KeyRecovered); v != "" {
			return recoveryPoll, nil
		}
		s.recovering = false
	}
	applied := st.AppliedChange() // before reading the threshold, so no change is missed
	if !time.Now().Before(s.next) {
		s.last = time.Now()
		s.next = s.last.Add(jittered(d.heartbeatRound(ctx)))
		applied = st.AppliedChange() // the round's own write is no reason to check
	} else if cur := s.iv.get(ctx, d, st.AppliedIndex()); s.last.Add(cur).Before(s.next) {
		s.next = s.last.Add(cur) // the threshold was lowered
	}
	wait := max(time.Until(s.next), 0)
	if again := time.Until(s.checked.Add(thresholdRecheck)); again > 0 {
		return min(wait, again), nil
	}
	return wait, applied
}

// intervalCache is the round interval for the threshold in this member's replica, read
// again only when the replica has applied new entries.
type intervalCache struct {
	applied uint64
	iv      time.Duration
}

func (c *intervalCache) get(ctx context.Context, d *Daemon, applied uint64) time.Duration {
	if c.iv == 0 || applied != c.applied {
		c.applied, c.iv = applied, d.currentInterval(ctx)
	}
	return c.iv
}

// jittered spreads iv by ±10%, so that rounds of successive leaders do not line up.
func jittered(iv time.Duration) time.Duration {
	return iv + time.Duration(rand.Int64N(int64(iv)/5+1)) - iv/10
}

// currentInterval is the round interval for the threshold in this member's replica.
func (d *Daemon) currentInterval(ctx context.Context) time.Duration {
	cfg, err := d.globalConfigLocal(ctx)
	if err != nil {
		return time.Second
	}
	return heartbeatInterval(offlineThreshold(cfg))
}

// heartbeatRound contacts every member, records who answered, then rebalances roles.
// It returns the interval until the next round.
func (d *Daemon) heartbeatRound(ctx context.Context) time.Duration {
	cfg, err := d.globalConfigLocal(ctx)
	if err != nil {
		return time.Second
	}
	threshold := offlineThreshold(cfg)
	iv := heartbeatInterval(threshold)
	members, err := d.roundMembers(ctx)
	if err != nil {
		return min(iv, time.Second) // a new leader not confirmed yet: try again soon
	}
	d.followRaftTimings(ctx)
	hb := d.buildHeartbeat(members)
	answered := d.sendHeartbeats(ctx, members, hb, min(iv, 2*time.Second))
	if err := d.recordRound(ctx, members, answered, threshold); err != nil && !errors.Is(err, context.Canceled) {
		d.log.Warn("recording heartbeats failed", "err", err)
	}
	if migrated, err := d.migrator.Migrate(ctx); err != nil && !errors.Is(err, context.Canceled) {
		d.log.Warn("migrating the database failed", "err", err)
	} else if migrated {
		d.health.kickRound()
	}
	if err := d.rebalance(ctx); err != nil && !errors.Is(err, context.Canceled) {
		d.log.Warn("rebalancing roles failed", "err", err)
	}
	return iv
}

// roundMembers reads the members for a round: linearizably on a new leader's first round
// (nobody answered it yet), which commits an entry of its term first, so that its lease
// holds before it opens a connection to every member; from the local replica after that.
func (d *Daemon) roundMembers(ctx context.Context) ([]memberRow, error) {
	d.health.mu.Lock()
	first := len(d.health.seen) == 0
	d.health.mu.Unlock()
	if first {
		return d.members(ctx)
	}
	return d.membersLocal(ctx)
}

// buildHeartbeat describes members with their raft roles and versions, and the database's
// version, all from this (the leader's) replica.
func (d *Daemon) buildHeartbeat(members []memberRow) heartbeat {
	roles := map[string]string{}
	if servers, err := d.store().Servers(); err == nil {
		roles = currentRoles(servers)
	}
	hb := heartbeat{Leader: d.memberName(), LeaderAddress: d.clusterAddress()}
	if cv, err := d.clusterVersionLocal(context.Background()); err == nil {
		hb.Cluster = cv
	}
	for _, m := range members {
		role := roles[m.name]
		if role == "" {
			role = roleSpare
		}
		hb.Members = append(hb.Members, heartbeatMember{Name: m.name, Address: m.address, Role: role, Version: m.ver})
	}
	return hb
}

// heartbeatFanout bounds the members a round contacts at once. A new leader's first round
// opens a TLS connection to every member (P-384 then: ~3 ms of CPU each; P-256 now: ~1 ms): 199 handshakes at once
// starved raft's own heartbeats on a 2-core machine long enough for the new leader to lose
// its lease and step down (200-member failover took 3.8 s instead of ~1 s; with 16 at once
// it still stepped down under load). An idle round of 200 members takes ~0.25 s at 4. Members that did not answer the
// previous round are contacted outside the bound, so that dead members, which hold a slot
// until the round's timeout, never delay the live ones.
const heartbeatFanout = 4

// sendHeartbeats contacts every other member in parallel, each with a bounded timeout, and
// returns the versions of those that answered (this member included). The body is encoded
// once, in two forms: with the member list, and without it for the members that hold it.
func (d *Daemon) sendHeartbeats(ctx context.Context, members []memberRow, hb heartbeat, timeout time.Duration) map[string]version.Info {
	bodies, hash, err := heartbeatBodies(hb)
	if err != nil {
		d.log.Warn("encoding the heartbeat failed", "err", err)
		return map[string]version.Info{d.memberName(): d.version}
	}
	var mu sync.Mutex
	answered := map[string]version.Info{d.memberName(): d.version}
	var wg sync.WaitGroup
	slots := make(chan struct{}, heartbeatFanout)
	for _, m := range members {
		if m.name == d.memberName() {
			continue
		}
		bounded := d.health.answered(m.name)
		if bounded {
			slots <- struct{}{}
		}
		wg.Go(func() {
			if bounded {
				defer func() { <-slots }()
			}
			v, ok := d.heartbeatOne(ctx, m, bodies, hash, timeout)
			if ok {
				mu.Lock()
				answered[m.name] = v
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	d.applyHeartbeatLocally(hb)
	return answered
}

// heartbeatBodies encodes hb with its member list ([0]) and without it ([1]), and the
// list's hash.
func heartbeatBodies(hb heartbeat) ([2][]byte, string, error) {
	var out [2][]byte
	full, err := json.Marshal(hb)
	if err != nil {
		return out, "", err
	}
	lean := hb
	lean.Members = nil
	out[1], err = json.Marshal(lean)
	out[0] = full
	return out, membersHash(hb.Members), err
}

// heartbeatOne sends one member its heartbeat (without the member list when it holds it)
// and returns its version when it answered.
func (d *Daemon) heartbeatOne(ctx context.Context, m memberRow, bodies [2][]byte, hash string, timeout time.Duration) (version.Info, bool) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body := bodies[0]
	if d.health.holds(m.name, hash) {
		body = bodies[1]
	}
	var ans announcement
	hdr, err := d.srv.Exchange(cctx, m.address, "/internal/heartbeat", body, http.Header{membersHashHeader: {hash}}, &ans)
	if err != nil {
		d.health.setHeld(m.name, "")
		return version.Info{}, false
	}
	d.health.setHeld(m.name, hdr.Get(membersHaveHeader))
	return ans.Version, true
}

// recordRound writes what a round learnt through raft, and only what a reader of the
// members table needs: an answering member's heartbeat once the recorded one is half the
// threshold old (or its version changed), and for a member that stopped answering the exact
// time the leader last heard it (kept in memory between writes). So a live member never
// looks older than half the threshold plus a round, a dead one goes OFFLINE exactly the
// threshold after its last answer, and an idle cluster writes a round entry every other
// round instead of every round (issue 19: heartbeat rounds written through raft). After a
// failover the new leader knows nothing in memory: a member that died in the old leader's
// last half-threshold may be listed OFFLINE that much early.
func (d *Daemon) recordRound(ctx context.Context, members []memberRow, answered map[string]version.Info, threshold time.Duration) error {
	st := d.store()
	if st == nil {
		return ErrNotInitialised
	}
	stmts := d.roundStatements(members, answered, d.now(), threshold)
	if len(stmts) == 0 {
		return nil
	}
	_, err := st.Exec(ctx, store.Request(stmts))
	return err
}

// roundStatements are recordRound's writes; it notes who answered, at now.
func (d *Daemon) roundStatements(members []memberRow, answered map[string]version.Info, now time.Time, threshold time.Duration) []store.Statement {
	ms := now.UnixMilli()
	var stmts []store.Statement
	d.health.mu.Lock()
	defer d.health.mu.Unlock()
	known := map[string]bool{}
	for _, m := range members {
		known[m.name] = true
		if m.heartbeat.After(now) && len(stmts) == 0 {
			// A previous leader with a clock ahead recorded heartbeats in the future.
			stmts = append(stmts, storeStmt(`UPDATE members SET heartbeat = ? WHERE heartbeat > ?`, ms, ms))
		}
	}
	for _, m := range members {
		v, ok := answered[m.name]
		if ok {
			d.health.seen[m.name] = now
			if v != m.ver || now.Sub(m.heartbeat) >= threshold/2 || m.heartbeat.After(now) {
				stmts = append(stmts, heartbeatStmt(ms, m.name, v))
			}
			continue
		}
		if seen, ok := d.health.seen[m.name]; ok && seen.After(m.heartbeat) {
			stmts = append(stmts, storeStmt(`UPDATE members SET heartbeat = ? WHERE name = ?`, seen.UnixMilli(), m.name))
		}
	}
	for _, n := range sortedAnswered(answered) {
		if !known[n] { // joined since the round read the members
			stmts = append(stmts, heartbeatStmt(ms, n, answered[n]))
		}
	}
	return stmts
}

// heartbeatStmt records member name heard at ms (Unix milliseconds) running v.
func heartbeatStmt(ms int64, name string, v version.Info) store.Statement {
	return store.Statement{
		SQL:  `UPDATE members SET heartbeat = ?, version = ?, schema = ?, api_level = ? WHERE name = ?`,
		Args: []any{ms, v.Version, int64(v.Schema), int64(v.APILevel), name},
	}
}

// sortedAnswered are the names of answered, sorted.
func sortedAnswered(answered map[string]version.Info) []string {
	names := make([]string, 0, len(answered))
	for n := range answered {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// recordHeartbeats writes the time of this round by this (the leader's) clock, chosen here
// before the entry enters the log, and the versions of the members that answered, in one
// raft entry. The same entry brings heartbeats that a previous leader with a clock ahead
// recorded in the future back to now, so that a member that is gone goes OFFLINE after
// the threshold. Leader only: an ex-leader's round that ends after it lost leadership is
// dropped rather than forwarded, so it cannot overwrite newer versions.
func (d *Daemon) recordHeartbeats(ctx context.Context, answered map[string]version.Info) error {
	st := d.store()
	if st == nil {
		return ErrNotInitialised
	}
	now := d.now().UnixMilli()
	stmts := make([]store.Statement, 0, len(answered)+1)
	stmts = append(stmts, storeStmt(`UPDATE members SET heartbeat = ? WHERE heartbeat > ?`, now, now))
	names := make([]string, 0, len(answered))
	for n := range answered {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v := answered[n]
		stmts = append(stmts, store.Statement{
			SQL:  `UPDATE members SET heartbeat = ?, version = ?, schema = ?, api_level = ? WHERE name = ?`,
			Args: []any{now, v.Version, int64(v.Schema), int64(v.APILevel), n},
		})
	}
	_, err := st.Exec(ctx, store.Request(stmts))
	return err
}

// postHeartbeat receives the leader's heartbeat.
func (d *Daemon) postHeartbeat(w http.ResponseWriter, r *http.Request) error {
	var hb heartbeat
	if err := decodeBody(r, &hb); err != nil {
		return err
	}
	if hash := r.Header.Get(membersHashHeader); hb.Members == nil && hash != "" {
		d.applyLeanHeartbeat(hb, hash)
	} else {
		d.applyHeartbeatLocally(hb)
	}
	w.Header().Set(membersHaveHeader, d.health.heldHash())
	d.noteLeaderClock(r)
	d.followRaftTimings(r.Context())
	if d.repairing.Load() {
		return unavailable("member %q: %v", d.memberName(), rest.ErrRepairing)
	}
	if st := d.store(); st != nil && st.Broken() != nil {
		// Not answering makes this member OFFLINE, so the leader gives its role to
		// another member when it can (its replica no longer follows the log).
		return unavailable("member %q: its database is broken until it is reopened (the daemon does so by itself): %v", d.memberName(), st.Broken())
	}
	return writeOK(w, announcement{Name: d.memberName(), Version: d.version}, "")
}

// heldHash is the hash of the member list this member holds ("" before the first).
func (h *health) heldHash() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hash
}

// applyLeanHeartbeat takes a heartbeat sent without the member list: the leader believes
// this member holds the list of hash. When it does not (it restarted, or an answer was
// lost), it keeps what it has and its answer's membersHaveHeader makes the leader send
// the full list next round.
func (d *Daemon) applyLeanHeartbeat(hb heartbeat, hash string) {
	d.health.mu.Lock()
	defer d.health.mu.Unlock()
	d.health.leader, d.health.cluster = hb.LeaderAddress, hb.Cluster
	if d.health.hash == hash {
		d.health.heard = true
	}
}

// applyHeartbeatLocally records the leader and the raft members in the node-local
// database, so that list-database works with the daemon stopped.
func (d *Daemon) applyHeartbeatLocally(hb heartbeat) {
	hash := membersHash(hb.Members)
	d.health.mu.Lock()
	changed := !sameDBMembers(d.health.members, hb.Members)
	d.health.leader, d.health.members, d.health.cluster, d.health.heard = hb.LeaderAddress, hb.Members, hb.Cluster, true
	d.health.hash = hash
	d.health.mu.Unlock()
	if !changed {
		return
	}
	var nodes []api.DatabaseMember
	for _, m := range hb.Members {
		if m.Role != roleSpare {
			nodes = append(nodes, api.DatabaseMember{Name: m.Name, Address: m.Address, Role: m.Role})
		}
	}
	if err := d.local.SetRaftNodes(nodes); err != nil {
		d.log.Warn("recording raft members failed", "err", err)
	}
}

func sameDBMembers(a, b []heartbeatMember) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Address != b[i].Address || a[i].Role != b[i].Role {
			return false
		}
	}
	return true
}

// announce tells the leader this member is up, so it is ONLINE at once rather than at the
// next heartbeat round, and learns the cluster's versions from the answer. It retries until
// it succeeds or ctx ends.
func (d *Daemon) announce(ctx context.Context) {
	backoff := 50 * time.Millisecond
	for {
		ans := announcement{Name: d.memberName(), Version: d.version}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		var err error
		var hb heartbeat
		if st := d.store(); st != nil && st.IsLeader() {
			err = d.recordHeartbeats(cctx, map[string]version.Info{ans.Name: ans.Version})
			d.health.kickRound()
		} else if err = d.srv.ToLeader(cctx, "/internal/announce", ans, &hb); err == nil && hb.Leader != "" {
			d.applyHeartbeatLocally(hb)
		}
		cancel()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// postAnnounce (leader) marks the announcing member as seen now, answers with the current
// heartbeat (so the member knows at once whether it is blocked) and starts a round, which
// tells every other member the new version and may run a schema migration.
func (d *Daemon) postAnnounce(w http.ResponseWriter, r *http.Request) error {
	var a announcement
	if err := decodeBody(r, &a); err != nil {
		return err
	}
	before, _ := d.memberVersionLocal(r.Context(), a.Name)
	if err := d.recordHeartbeats(r.Context(), map[string]version.Info{a.Name: a.Version}); err != nil {
		return err
	}
	if before != a.Version {
		// A new version: every member learns it now (and a migration may run). A member
		// restarted or joined on the same version needs no round: with 200 members
		// joining, a round per join was most of the leader's work.
		d.health.kickRound()
	}
	members, err := d.membersLocal(r.Context())
	if err != nil {
		return err
	}
	return writeOK(w, d.buildHeartbeat(members), "")
}

// memberVersionLocal is member name's recorded version in this member's replica.
func (d *Daemon) memberVersionLocal(ctx context.Context, name string) (version.Info, error) {
	rows, err := d.queryLocal(ctx, `SELECT version, schema, api_level FROM members WHERE name = ?`, name)
	if err != nil || len(rows) == 0 {
		return version.Info{}, err
	}
	return version.Info{Version: str(rows[0][0]), Schema: int(i64(rows[0][1])), APILevel: int(i64(rows[0][2]))}, nil
}

// memberStatus is a member's status for `cluster list`: OFFLINE when its last heartbeat is
// older than the threshold at now (the leader's clock); BLOCKED when it is older than the database (it must be
// upgraded) or newer than another member that is not behind the database (it waits for that
// member's upgrade); ONLINE otherwise.
func memberStatus(m memberRow, all []memberRow, now time.Time, threshold time.Duration, cluster version.Info) (status, message string) {
	if !m.online(now, threshold) {
		if m.heartbeat.UnixMilli() == 0 {
			return api.StatusOffline, "No heartbeat recorded" // never seen, or lost in a quorum-loss recovery
		}
		return api.StatusOffline, "No heartbeat for " + m.age(now).Round(time.Second).String()
	}
	if upgrade.Behind(m.ver, cluster) {
		return api.StatusBlocked, "Upgrade required: runs schema " + itoa(m.ver.Schema) + " API " + itoa(m.ver.APILevel) +
			", the database is at schema " + itoa(cluster.Schema) + " API " + itoa(cluster.APILevel)
	}
	var waiting []string
	for _, o := range all {
		if o.name != m.name && o.ver.Schema != 0 && !upgrade.Behind(o.ver, cluster) && version.Compare(m.ver, o.ver) > 0 {
			waiting = append(waiting, o.name)
		}
	}
	if len(waiting) > 0 {
		return api.StatusBlocked, "Waiting for " + strings.Join(waiting, ", ") + " to be upgraded"
	}
	return api.StatusOnline, "Fully operational"
}

func itoa(n int) string { return strconv.Itoa(n) }
