package jepsen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptrace"
	"slices"
	"sync"
	"time"

	"orch/nodeagent/api"
)

// fault is one kind of failure the nemesis injects. run injects it, holds it and, where
// the order of healing matters, heals it; the nemesis heals whatever is left afterwards.
type fault struct {
	name string
	run  func(n *nemesisRun) string // returns what it did
}

// faults are the nemesis's repertoire; a window picks one at random (or -jepsen.fault).
// The aimed ones put a deposed leader in front of clients: clients keep sending to the
// old leader (its client path is never cut) after a new leader acknowledged a write.
var faults = []fault{
	{"kill-leader", func(n *nemesisRun) string { return n.kill(n.leader()) }},
	{"kill-random", func(n *nemesisRun) string { return n.kill(n.random()) }},
	{"pause-random", func(n *nemesisRun) string { return n.pause(n.random()) }},
	{"pause-leader", (*nemesisRun).pauseLeader},
	{"partition-leader", (*nemesisRun).partitionLeader},
	{"pause-leader-standbys-behind", (*nemesisRun).pauseLeaderStandbysBehind},
	{"pause-during-partition", (*nemesisRun).pauseDuringPartition},
	{"partition-minority", (*nemesisRun).partitionMinority},
	{"partition-majority", (*nemesisRun).partitionMajority},
	{"partition-bridge", (*nemesisRun).partitionBridge},
	{"link-down", (*nemesisRun).linkDown},
	{"kill-during-recovery", (*nemesisRun).killDuringRecovery},
	{"disk-full-leader", (*nemesisRun).diskFullLeader},
	{"clock-offset", (*nemesisRun).clockOffset},
	{"recover-majority-alive", (*nemesisRun).recoverMajorityAlive},
}

// faultByName finds a fault of the repertoire.
func faultByName(name string) (fault, bool) {
	for _, f := range faults {
		if f.name == name {
			return f, true
		}
	}
	return fault{}, false
}

// faultNames lists the repertoire, for error messages.
func faultNames() []string {
	var out []string
	for _, f := range faults {
		out = append(out, f.name)
	}
	return out
}

// nemesisRun is one window's nemesis: the cluster, the window's history (the aimed faults
// add their own clients' operations to it) and the fault's duration.
type nemesisRun struct {
	c      *cluster
	rng    *rand.Rand
	h      *history
	hold   time.Duration
	tag    string // makes the nemesis's written values unique across windows
	start  time.Time
	probes int
	writes int
	// fail reports a check of a fault that failed (the run then fails).
	fail func(format string, args ...any)
}

// nemesis runs one fault (name, else -jepsen.fault, else a random one), heals everything
// and lets the cluster settle. It returns what it did.
func nemesis(n *nemesisRun, name string, settle time.Duration) []string {
	c := n.c
	if name == "" {
		name = *onlyFault
	}
	f := faults[n.rng.IntN(len(faults))]
	if name != "" {
		var ok bool
		if f, ok = faultByName(name); !ok {
			c.t.Fatalf("-jepsen.fault %q: no such fault (have %v)", name, faultNames())
		}
	}
	n.start = time.Now()
	what := f.run(n)
	c.t.Logf("nemesis: %s (%s)", what, f.name)
	c.healAll()
	c.t.Logf("nemesis: healed")
	sleepCtx(context.Background(), settle)
	return []string{f.name + ": " + what}
}

// holdRest waits until the fault has lasted n.hold: a fault's duration is fixed on purpose
// (it is not a wait for a condition).
func (n *nemesisRun) holdRest() { sleepCtx(context.Background(), time.Until(n.start.Add(n.hold))) }

func (n *nemesisRun) leader() *member {
	if m := n.c.leader(); m != nil {
		return m
	}
	return n.c.members[0]
}

func (n *nemesisRun) random() *member { return n.c.members[n.rng.IntN(len(n.c.members))] }

// others lists the members but m.
func (n *nemesisRun) others(m *member) []*member {
	var out []*member
	for _, x := range n.c.members {
		if x != m {
			out = append(out, x)
		}
	}
	return out
}

func (n *nemesisRun) kill(m *member) string {
	m.kill(n.c.t)
	n.holdRest()
	return "kill -9 " + m.name
}

func (n *nemesisRun) pause(m *member) string {
	m.pause()
	n.holdRest()
	return "SIGSTOP " + m.name
}

// pauseLeader pauses the leader until the others acknowledged a write under a new leader,
// sends reads to the old leader on connections it accepted before the pause, and resumes
// it: those reads were sent after the write was acknowledged, so an answer without it is
// stale — what a leader serving reads without confirming its leadership answers.
func (n *nemesisRun) pauseLeader() string {
	l := n.leader()
	p := n.newProbe(l)
	l.pause()
	acked := n.marker(n.others(l))
	p.fire()
	l.resume()
	p.wait()
	n.holdRest()
	return fmt.Sprintf("SIGSTOP %s until a write was acknowledged without it (%v), %d reads sent to it, SIGCONT", l.name, acked, p.k)
}

// pauseDuringPartition pauses the leader, cuts it from the other members (its clients
// still reach it), waits for a write acknowledged by a new leader, sends reads to the old
// leader and resumes it while it is still cut off: it may believe it leads until it finds
// no quorum, and its clients keep asking it until the partition heals.
func (n *nemesisRun) pauseDuringPartition() string {
	l := n.leader()
	p := n.newProbe(l)
	l.pause()
	n.c.split([]*member{l})
	acked := n.marker(n.others(l))
	p.fire()
	l.resume()
	p.wait()
	n.holdRest()
	return fmt.Sprintf("SIGSTOP %s, cut from the others, a write acknowledged without it (%v), %d reads sent to it, SIGCONT while cut off", l.name, acked, p.k)
}

// pauseLeaderStandbysBehind is pauseLeader with the old leader and the stand-by members
// (non-voters) cut from the other voters while it is paused: the stand-bys never hear of the
// new term, so after the old leader resumes they still answer its heartbeats. Their answers
// must not count towards its leadership check (only voters make a quorum; hashicorp/raft's
// VerifyLeader counts every follower's answer). Without stand-bys (3 members) it is
// pauseLeader.
func (n *nemesisRun) pauseLeaderStandbysBehind() string {
	standbys := n.c.withRole(api.RoleDatabaseStandby)
	l := n.leader()
	if len(standbys) == 0 {
		return n.pauseLeader() + " (no stand-bys)"
	}
	p := n.newProbe(l)
	l.pause()
	var voters []*member
	for _, m := range n.others(l) {
		if !contains(standbys, m) {
			voters = append(voters, m)
		}
	}
	n.c.split(voters) // the old leader and the stand-bys on one side, the other voters on the other
	acked := n.marker(voters)
	p.fire()
	l.resume()
	p.wait()
	n.holdRest()
	return fmt.Sprintf("SIGSTOP %s, it and stand-bys %s cut from the other voters, a write acknowledged without it (%v), %d reads sent to it, SIGCONT",
		l.name, names(standbys), acked, p.k)
}

// partitionLeader cuts the leader from the other members; its clients keep sending to it.
func (n *nemesisRun) partitionLeader() string {
	l := n.leader()
	p := n.newProbe(l)
	n.c.split([]*member{l})
	acked := n.marker(n.others(l))
	p.fire()
	p.wait()
	n.holdRest()
	return fmt.Sprintf("cut %s from the others, a write acknowledged without it (%v), %d reads sent to it", l.name, acked, p.k)
}

// partitionMinority cuts a random minority (the leader among it half of the time) from the
// majority; each side stays connected inside.
func (n *nemesisRun) partitionMinority() string {
	k := max(1, (len(n.c.members)-1)/2)
	var side []*member
	if n.rng.IntN(2) == 0 {
		side = append(side, n.leader())
	}
	for _, i := range n.rng.Perm(len(n.c.members)) {
		if m := n.c.members[i]; len(side) < k && !contains(side, m) {
			side = append(side, m)
		}
	}
	n.c.split(side)
	n.holdRest()
	return "cut " + names(side) + " from the others"
}

// partitionMajority cuts a majority of members off each alone: no side has a quorum.
func (n *nemesisRun) partitionMajority() string {
	order := n.rng.Perm(len(n.c.members))
	var alone []*member
	for _, i := range order[:len(n.c.members)/2+1] {
		alone = append(alone, n.c.members[i])
	}
	for _, m := range alone {
		n.c.split([]*member{m})
	}
	n.holdRest()
	return "cut " + names(alone) + " each alone"
}

// partitionBridge splits the others in two halves that cannot talk, with one member (the
// bridge) that talks to both.
func (n *nemesisRun) partitionBridge() string {
	order := n.rng.Perm(len(n.c.members))
	bridge := n.c.members[order[0]]
	var left, right []*member
	for i, j := range order[1:] {
		if i%2 == 0 {
			left = append(left, n.c.members[j])
		} else {
			right = append(right, n.c.members[j])
		}
	}
	for _, a := range left {
		for _, b := range right {
			n.c.cut(a, b)
		}
	}
	n.holdRest()
	return fmt.Sprintf("cut %s from %s, %s bridging", names(left), names(right), bridge.name)
}

// linkDown sets a random member's only link down: it is cut off from members and clients.
func (n *nemesisRun) linkDown() string {
	m := n.random()
	if err := m.host.Partition(); err != nil {
		n.c.t.Fatal(err)
	}
	n.holdRest()
	return "link down on " + m.name
}

// killDuringRecovery kills a member, restarts it, and kills another one while the first
// is catching up.
func (n *nemesisRun) killDuringRecovery() string {
	a := n.random()
	if n.rng.IntN(2) == 0 {
		a = n.leader()
	}
	a.kill(n.c.t)
	sleepCtx(context.Background(), n.hold/2)
	n.c.start(a)
	others := n.others(a)
	b := others[n.rng.IntN(len(others))]
	b.kill(n.c.t)
	n.holdRest()
	return fmt.Sprintf("kill -9 %s, restart it, kill -9 %s while it recovers", a.name, b.name)
}

// marker waits until the given members see a leader among them, then writes unique keys
// through them until one write is acknowledged or the fault's time is up, recording the
// writes in the history. With the old leader paused or cut off, an acknowledged write was
// committed by a new leader.
func (n *nemesisRun) marker(via []*member) bool {
	deadline := n.start.Add(n.hold)
	for time.Now().Before(deadline) {
		if l := n.c.leaderSeenBy(via); l != nil && contains(via, l) {
			break
		}
		sleepCtx(context.Background(), 50*time.Millisecond)
	}
	for i := 0; time.Now().Before(deadline); i++ {
		if n.write(via[i%len(via)], fmt.Sprintf("marker.%d", i)) {
			return true
		}
	}
	return false
}

// write writes one unique key through m and records it; it reports whether it was
// acknowledged. A write that certainly did not leave is paced, not recorded.
func (n *nemesisRun) write(m *member, suffix string) bool {
	n.writes++
	cl := n.c.client(m)
	defer cl.Close()
	in := opInput{Kind: opWrite, Key: fmt.Sprintf("user.u.%snemesis.%s", n.tag, suffix), Value: fmt.Sprintf("%snemesis-%d", n.tag, n.writes)}
	call := n.h.now()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	err := cl.PatchConfig(ctx, map[string]string{in.Key: in.Value}, "")
	cancel()
	out := classify(in, err)
	switch out {
	case 0:
		n.h.droppedOps.Add(1)
		sleepCtx(context.Background(), 50*time.Millisecond)
		return false
	case outUnknown:
		n.h.noteUnknown(err)
	}
	n.h.record(1090, in, opOutput{Outcome: out}, call, n.h.now())
	return out == outOK
}

// probeReads is how many reads a probe sends at once.
const probeReads = 12

// probe is a set of clients of one member whose connections were opened (and left idle)
// before a fault: requests sent on them while the member is paused wait in its socket
// buffers and are served the moment it resumes, before it can learn it was deposed.
type probe struct {
	n    *nemesisRun
	m    *member
	cl   *api.Client
	k    int
	base int // client id of the first read
	wg   sync.WaitGroup
}

// newProbe opens k connections to m with one read each (recorded).
func (n *nemesisRun) newProbe(m *member) *probe {
	n.probes++
	p := &probe{n: n, m: m, cl: n.c.client(m), k: probeReads, base: 1100 + 20*n.probes}
	p.fire()
	p.wait()
	return p
}

// fire sends k reads at once and returns when each was written to its connection (or
// failed): from then on they wait in the member's socket buffers. wait waits for their
// answers (or their timeouts).
func (p *probe) fire() {
	var sent sync.WaitGroup
	for i := range p.k {
		p.wg.Add(1)
		sent.Add(1)
		go func() { defer p.wg.Done(); p.read(p.base+i, sent.Done) }()
	}
	sent.Wait()
}

func (p *probe) wait() {
	p.wg.Wait()
}

func (p *probe) read(id int, sent func()) {
	h := p.n.h
	var once sync.Once
	done := func() { once.Do(sent) }
	defer done()
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { done() }}
	call := h.now()
	ctx, cancel := context.WithTimeout(httptrace.WithClientTrace(context.Background(), trace), opTimeout)
	s, etag, err := p.cl.Server(ctx)
	cancel()
	ret := h.now()
	if err == nil {
		err = consistent(s, etag)
	}
	if err != nil {
		h.droppedOps.Add(1)
		return
	}
	h.record(id, opInput{Kind: opRead}, opOutput{Outcome: outOK, Values: registerValues(s.Config), ETag: etag}, call, ret)
}

func contains(ms []*member, m *member) bool { return slices.Contains(ms, m) }

// sleepCtx waits for d or until ctx is done: the nemesis holds a fault for a fixed time on
// purpose (it is the fault's duration, not a wait for a condition).
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
