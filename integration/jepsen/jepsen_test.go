package jepsen

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

var (
	soakDuration = flag.Duration("soak.duration", 0, "run TestSoak for this long (0 skips it)")
	soakSeed     = flag.Uint64("soak.seed", 0, "seed of the workload and nemesis of TestJepsen and TestSoak (0: a random one, printed)")
	soakMembers  = flag.Int("soak.members", 3, "cluster size of the soak: 3 or 5")
	outDir       = flag.String("jepsen.out", "", "directory for porcupine's HTML visualisation and the history of a failed check (default: a new directory under $TMPDIR, kept)")
	onlyFault    = flag.String("jepsen.fault", "", "inject only this fault (see faultNames: kill-leader, pause-leader, partition-leader, ...)")
	perMember    = flag.Int("jepsen.clients", 0, "concurrent clients per member (0: 3 on 3 members, 2 on more, which keeps 5-member windows decidable)")
)

// checkTimeout bounds porcupine's search on one window's history; a window it cannot
// decide in that time is checked again at the end of the run for longCheckTimeout, and
// fails the run if it is still undecided.
const (
	checkTimeout     = 45 * time.Second
	longCheckTimeout = 5 * time.Minute
)

// Fault timing: how long the workload runs before a fault, how long the fault lasts, and
// how long the healed cluster serves before the window closes.
const (
	warmUp = 1500 * time.Millisecond
	hold   = 4 * time.Second
	settle = 2 * time.Second
)

// carriedOp marks (as porcupine metadata) an ambiguous update of an earlier window.
const carriedOp = "carried from an earlier window"

// tally is what windows produced.
type tally struct {
	mu                              sync.Mutex
	ops, ok, fail, unknown, dropped int64
	faults                          []string
	violations, undecided, lost     int
	longChecked                     int // windows decided only by the longer check
	diverged                        int // windows whose replicas differed at one version
	faultChecks                     int // checks of a fault that failed
}

// undecidedWindow is a window porcupine gave up on, kept for the longer check.
type undecidedWindow struct {
	name      string
	initial   map[string]string
	v0        int64
	invisible int64
	ops       []porcupine.Operation
}

// suite is one cluster under test: its windows share the acknowledged unique writes and
// the ambiguous updates still open.
type suite struct {
	t     *testing.T
	c     *cluster
	rng   *rand.Rand
	seed  uint64
	acked map[string]string
	// open are the ambiguous writes and compare-and-sets of every earlier window that no
	// read has shown applied yet: a request can reach a member long after its client gave
	// up (a retransmitted segment after a partition heals, a request queued in a paused
	// member), so they stay possible until the end of the run. A carried compare-and-set
	// is checked as a plain write (a superset of what it may do).
	open      []opInput
	tally     tally
	check     sync.WaitGroup
	checking  sync.Mutex
	windows   int
	undecided []undecidedWindow
	clients   int      // per member
	script    []string // the faults of the first windows ("" or past its end: random)
	// mutant is set when the agents carry a known bug: the suite's findings are then the
	// expected outcome, logged instead of failing the test (TestMutations checks them).
	mutant bool
	out    string // where failed checks leave their visualisation and history (-jepsen.out)
}

// errorf reports a finding: a test failure, or a log line for a mutant.
func (s *suite) errorf(format string, args ...any) {
	s.t.Helper()
	if s.mutant {
		s.t.Logf("finding (expected of a mutant): "+format, args...)
		return
	}
	s.t.Errorf(format, args...)
}

// faultCheckFailed reports a fault's check that failed (a recovery that was not refused, a
// broken leader that kept leading, ...).
func (s *suite) faultCheckFailed(format string, args ...any) {
	s.t.Helper()
	s.tally.mu.Lock()
	s.tally.faultChecks++
	s.tally.mu.Unlock()
	s.errorf(format, args...)
}

// caught reports whether the suite found a violation, a lost write or diverged replicas.
func (s *suite) caught() bool {
	s.tally.mu.Lock()
	defer s.tally.mu.Unlock()
	return s.tally.violations > 0 || s.tally.lost > 0 || s.tally.diverged > 0
}

// window is one fault cycle: from a quiescent, healthy cluster (whose registers are the
// model's initial state) the workload runs, the nemesis injects one fault (maybe several
// overlapping), holds and heals it; then the workload stops, every member is read (through
// the API and from its own replica: lost writes, divergence) and the history is checked.
func (s *suite) window(name string, background bool) {
	s.t.Helper()
	c := s.c
	c.waitHealthy(time.Minute)
	start, v0 := initialState(c)
	initial := registerValues(start)
	h := newHistory()
	for _, in := range s.open {
		in.Kind, in.ETag = opWrite, ""
		h.ops = append(h.ops, porcupine.Operation{ClientId: 2000, Input: in, Output: opOutput{Outcome: outUnknown}, Call: 0, Return: math.MaxInt64, Metadata: carriedOp})
	}
	s.windows++
	// Workers finish their current operation when stopped (no ambiguity made by the test).
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range len(c.members) * s.clients {
		m := c.members[i%len(c.members)]
		w := &worker{id: i, tag: fmt.Sprintf("w%d.", s.windows), cl: c.client(m), h: h, rng: rand.New(rand.NewPCG(s.rng.Uint64(), uint64(i)))}
		wg.Add(1)
		go func() { defer wg.Done(); defer w.cl.Close(); w.run(ctx.Done()) }()
	}
	sleepCtx(context.Background(), warmUp)
	var fault string
	if s.windows <= len(s.script) {
		fault = s.script[s.windows-1]
	}
	faults := nemesis(&nemesisRun{c: c, rng: s.rng, h: h, hold: hold, tag: fmt.Sprintf("w%d.", s.windows), fail: s.faultCheckFailed}, fault, settle)
	cancel()
	wg.Wait()
	c.healAll()
	c.waitHealthy(time.Minute)
	h.mu.Lock()
	for k, v := range h.acked {
		s.acked[k] = v
	}
	h.mu.Unlock()
	lost, details, end := finalReads(c, h, s.acked)
	for _, d := range details {
		s.errorf("%s: %s", name, d)
	}
	invisible := s.settle(name, h, start, v0, end)
	s.tally.add(h, faults, lost, len(details) > 0 && lost == 0)
	s.t.Logf("%s: %s; ambiguous because: %v; updates still open: %d", name, describeHistory(h.ops), h.unknownErrs, len(s.open))
	run := func() {
		defer s.check.Done()
		s.checking.Lock() // one check at a time: the timeout is porcupine's time, not a queue's
		defer s.checking.Unlock()
		s.checkHistory(name, initial, v0, invisible, h.ops)
	}
	s.check.Add(1)
	if background {
		go run()
	} else {
		run()
	}
}

// settle decides what it can of the window's ambiguous updates (its own and the open ones
// of earlier windows) before the check, and carries the rest forward. Values are unique and
// a request is applied at most once, so an update whose value a read returned (or the final
// configuration holds) was applied — before the window if its start already held it, else
// during it. A unique key is never overwritten, so an ambiguous write of one that the final
// configuration lacks was not applied in this window. Every write bumps the configuration
// version by one, so the version's move over the window, less the acknowledged updates, is
// how many ambiguous ones were applied in it; those seen applied become acknowledged
// updates (returning at the end of time), the others leave the window's history (they stay
// open for later windows), and the number applied without being seen is returned: the
// model spends it as invisible version bumps (newModel). This keeps porcupine from
// searching where each ambiguous update might fit, which it cannot do in time for more
// than a few; the price is that an unseen applied update is checked as a version bump only.
func (s *suite) settle(name string, h *history, start map[string]string, v0 int64, end replica) (invisible int64) {
	seen := h.seen()
	has := func(cfg map[string]string, in opInput) bool { return cfg[in.Key] == in.Value }
	h.mu.Lock()
	defer h.mu.Unlock()
	var definite int64
	var ambiguous, appliedHere []int
	var keep []porcupine.Operation
	for _, op := range h.ops {
		in, out := op.Input.(opInput), op.Output.(opOutput)
		switch {
		case in.Kind == opRead:
		case out.Outcome == outOK:
			definite++
		case out.Outcome == outUnknown && op.Metadata != nil && has(start, in):
			continue // a carried update applied before this window: in its initial state
		case out.Outcome == outUnknown && (seen[in.Key+"="+in.Value] || has(end.config, in)):
			ambiguous = append(ambiguous, len(keep))
			appliedHere = append(appliedHere, len(keep))
		case out.Outcome == outUnknown && !isRegister(in.Key):
			continue // a unique key the end lacks: not applied in this window
		case out.Outcome == outUnknown:
			ambiguous = append(ambiguous, len(keep))
		}
		keep = append(keep, op)
	}
	applied := end.version - v0 - definite
	if applied < int64(len(appliedHere)) || applied > int64(len(ambiguous)) {
		s.tally.mu.Lock()
		s.tally.violations++
		s.tally.mu.Unlock()
		s.errorf("%s: the configuration version moved by %d (from %d to %d) but the window acknowledged %d updates, had %d ambiguous ones and saw %d of those applied: an update was lost or applied twice, or a refused one applied",
			name, end.version-v0, v0, end.version, definite, len(ambiguous), len(appliedHere))
	} else {
		for _, i := range appliedHere {
			out := keep[i].Output.(opOutput)
			out.Outcome = outOK // applied at some point after its call
			keep[i].Output = out
		}
		// The others are not in the history: the ones applied without being seen become
		// invisible updates of the model (version bumps at any point).
		invisible = applied - int64(len(appliedHere))
		keep = slices.DeleteFunc(keep, func(op porcupine.Operation) bool {
			return op.Input.(opInput).Kind != opRead && op.Output.(opOutput).Outcome == outUnknown
		})
	}
	var open []opInput
	for _, in := range append(s.open, h.unknownUpdatesLocked()...) {
		if !seen[in.Key+"="+in.Value] && !has(end.config, in) && !has(start, in) {
			open = append(open, in)
		}
	}
	s.open = open
	h.ops = keep
	return invisible
}

func (t *tally) add(h *history, faults []string, lost int, diverged bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ok, fail, unknown, dropped := h.okOps.Load(), h.failOps.Load(), h.unknownOps.Load(), h.droppedOps.Load()
	t.ok, t.fail, t.unknown, t.dropped = t.ok+ok, t.fail+fail, t.unknown+unknown, t.dropped+dropped
	t.ops += ok + fail + unknown + dropped
	t.faults = append(t.faults, faults...)
	t.lost += lost
	if diverged {
		t.diverged++
	}
}

// checkHistory runs porcupine; on a violation it writes the visualisation into -jepsen.out
// and names the file. A window it cannot decide in checkTimeout waits for the longer check.
func (s *suite) checkHistory(name string, initial map[string]string, v0, invisible int64, ops []porcupine.Operation) {
	if stale := staleReads(ops, etagVersion); len(stale) > 0 {
		s.tally.mu.Lock()
		s.tally.violations++
		s.tally.mu.Unlock()
		s.errorf("%s: history is NOT linearizable: stale reads: %v; history: %s", name, stale, s.dumpHistory(name, ops))
		return
	}
	start := time.Now()
	ops = pruneRefusedCAS(ops)
	model := newModel(initial, v0, invisible)
	result, info := porcupine.CheckOperationsVerbose(model, ops, checkTimeout)
	s.t.Logf("%s: porcupine: %v on %d operations in %v", name, result, len(ops), time.Since(start).Round(time.Millisecond))
	s.tally.mu.Lock()
	defer s.tally.mu.Unlock()
	switch result {
	case porcupine.Ok:
	case porcupine.Unknown:
		s.undecided = append(s.undecided, undecidedWindow{name: name, initial: initial, v0: v0, invisible: invisible, ops: ops})
	default:
		s.violation(name, model, info, ops)
	}
}

// violation records and reports a window that is not linearizable (tally.mu held).
func (s *suite) violation(name string, model porcupine.Model, info porcupine.LinearizationInfo, ops []porcupine.Operation) {
	s.tally.violations++
	s.errorf("%s: history is NOT linearizable; porcupine's visualisation: %s; history: %s", name, s.visualise(name, model, info), s.dumpHistory(name, ops))
}

// checkUndecided runs the longer check on every window porcupine gave up on. A window still
// undecided fails the run; the per-key check then only tells whether each register alone is
// linearizable, which helps reading the failure but does not pass the window.
func (s *suite) checkUndecided() {
	for i, w := range s.undecided {
		if s.tally.undecided > 0 {
			s.tally.undecided += len(s.undecided) - i
			s.errorf("%d more windows porcupine gave up on were not checked again: the run fails already", len(s.undecided)-i)
			break
		}
		start := time.Now()
		model := newModel(w.initial, w.v0, w.invisible)
		result, info := porcupine.CheckOperationsVerbose(model, w.ops, longCheckTimeout)
		s.t.Logf("%s: longer check: %v on %d operations in %v", w.name, result, len(w.ops), time.Since(start).Round(time.Millisecond))
		s.tally.mu.Lock()
		switch result {
		case porcupine.Ok:
			s.tally.longChecked++
		case porcupine.Illegal:
			s.violation(w.name, model, info, w.ops)
		default:
			s.tally.undecided++
			keys, _ := porcupine.CheckOperationsVerbose(registerModel(), registerHistory(w.initial, w.ops), checkTimeout)
			s.errorf("%s: porcupine could not decide this window in %v (each key alone: %v); partial visualisation: %s; history: %s",
				w.name, longCheckTimeout, keys, s.visualise(w.name, model, info), s.dumpHistory(w.name, w.ops))
		}
		s.tally.mu.Unlock()
	}
	s.undecided = nil
}

// dumpHistory writes the operations as text, in call order, next to the visualisation.
func (s *suite) dumpHistory(name string, ops []porcupine.Operation) string {
	sorted := slices.Clone(ops)
	slices.SortFunc(sorted, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
	var b strings.Builder
	for _, op := range sorted {
		ret := "∞"
		if op.Return != math.MaxInt64 {
			ret = time.Duration(op.Return).String()
		}
		fmt.Fprintf(&b, "c%d [%v, %s] %s\n", op.ClientId, time.Duration(op.Call), ret, describeOp(op.Input, op.Output))
	}
	path, err := filepath.Abs(filepath.Join(s.out, fmt.Sprintf("jepsen-%s-%s.txt", sanitize(name), time.Now().Format("20060102T150405"))))
	if err == nil {
		err = os.WriteFile(path, []byte(b.String()), 0o644)
	}
	if err != nil {
		return "not written: " + err.Error()
	}
	return path
}

// visualise writes porcupine's HTML visualisation into -jepsen.out and returns its path
// (or why it could not).
func (s *suite) visualise(name string, model porcupine.Model, info porcupine.LinearizationInfo) string {
	path, err := filepath.Abs(filepath.Join(s.out, fmt.Sprintf("jepsen-%s-%s.html", sanitize(name), time.Now().Format("20060102T150405"))))
	if err == nil {
		err = porcupine.VisualizePath(model, info, path)
	}
	if err != nil {
		return "not written: " + err.Error()
	}
	return path
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' {
			return '_'
		}
		return r
	}, s)
}

func newSuite(t *testing.T, members int, seed uint64, bin string, smallDisks bool) *suite {
	clients := *perMember
	if clients <= 0 {
		clients = 3
		if members > 3 {
			clients = 2
		}
	}
	return &suite{t: t, c: newCluster(t, members, bin, smallDisks), rng: rand.New(rand.NewPCG(seed, uint64(members))),
		seed: seed, acked: map[string]string{}, clients: clients, out: artifactDir(t)}
}

// artifactDir is -jepsen.out, made if missing, or a new directory under $TMPDIR: never the
// package directory (a failed run once left its history there to be committed). The
// default one is kept after the test, since a failure names the files in it.
func artifactDir(t *testing.T) string {
	if *outDir != "" {
		if err := os.MkdirAll(*outDir, 0o755); err != nil {
			t.Fatalf("-jepsen.out: %v", err)
		}
		return *outDir
	}
	dir, err := os.MkdirTemp("", "orch-jepsen-")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// runSeed is -soak.seed, or a random seed when it is 0; it is printed so that a failing
// run can be repeated with the same workload and nemesis choices.
func runSeed(t *testing.T) uint64 {
	seed := *soakSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	fmt.Printf("jepsen: seed %d (repeat with -soak.seed %d)\n", seed, seed)
	t.Logf("seed %d (repeat with -soak.seed %d)", seed, seed)
	return seed
}

// TestJepsen is the short version: a 3-member cluster, five fault cycles, the first three
// aimed at a deposed leader (pause, partition, both), then overlapping kills and a bridge
// partition. (The operator faults run in TestSoak: see nemesis_test.go.)
func TestJepsen(t *testing.T) {
	if testing.Short() {
		t.Skip("jepsen: a minute of faults on a lab cluster; not in -short")
	}
	s := newSuite(t, 3, runSeed(t), agentBin, false)
	s.script = []string{"pause-leader", "pause-during-partition", "partition-leader", "kill-during-recovery", "partition-bridge"}
	for i := range s.script {
		s.window(fmt.Sprintf("%s/window-%d", t.Name(), i+1), false)
	}
	s.report(os.Stdout)
}

// TestSoak runs fault windows for -soak.duration on -soak.members members and prints
// operations, faults, violations and lost writes. Histories are checked in the background
// while the next window runs.
func TestSoak(t *testing.T) {
	if *soakDuration <= 0 {
		t.Skip("soak: pass -soak.duration (e.g. make soak, or go test ./integration/jepsen -run Soak -soak.duration 10m)")
	}
	if *soakMembers != 3 && *soakMembers != 5 {
		t.Fatalf("-soak.members %d: must be 3 or 5", *soakMembers)
	}
	seed := runSeed(t)
	s := newSuite(t, *soakMembers, seed, agentBin, true)
	end := time.Now().Add(*soakDuration)
	for i := 1; time.Now().Before(end); i++ {
		s.window(fmt.Sprintf("%s/window-%d", t.Name(), i), true)
	}
	s.check.Wait()
	fmt.Printf("soak: %d members, seed %d, duration %v\n", *soakMembers, seed, *soakDuration)
	s.report(os.Stdout)
}

// report prints the summary make soak promises; violations, undecided windows, diverged
// replicas and lost writes fail the test.
func (s *suite) report(w *os.File) {
	s.check.Wait()
	s.checkUndecided()
	r := &s.tally
	r.mu.Lock()
	defer r.mu.Unlock()
	counts := map[string]int{}
	for _, f := range r.faults {
		counts[strings.TrimSuffix(strings.Fields(f)[0], ":")]++
	}
	msg := fmt.Sprintf("seed: %d\noperations done: %d (ok %d, failed %d, ambiguous %d, not sent %d; updates still open at the end: %d)\nfaults injected: %d %v\nviolations: %d (windows decided only by the %v check: %d, undecided: %d)\nreplicas diverged in %d windows; fault checks failed: %d\nacknowledged writes lost: %d (of %d acknowledged unique writes)\n",
		s.seed, r.ops, r.ok, r.fail, r.unknown, r.dropped, len(s.open), len(r.faults), counts, r.violations, longCheckTimeout, r.longChecked, r.undecided, r.diverged, r.faultChecks, r.lost, len(s.acked))
	fmt.Fprint(w, msg)
	s.t.Log(strings.TrimSpace(msg))
	if r.violations > 0 || r.lost > 0 || r.undecided > 0 || r.diverged > 0 || r.faultChecks > 0 {
		s.t.Fail()
	}
}
