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
	soakSeed     = flag.Uint64("soak.seed", 1, "seed of the soak's workload and nemesis")
	soakMembers  = flag.Int("soak.members", 3, "cluster size of the soak: 3 or 5")
	outDir       = flag.String("jepsen.out", ".", "directory for porcupine's HTML visualisation of a failed check")
	onlyFault    = flag.String("jepsen.fault", "", "inject only this fault (kill-leader, pause-leader, partition-minority, ...)")
)

// checkTimeout bounds porcupine's search on one window's history; a search that times out
// is reported as unchecked, never as passed.
const checkTimeout = 45 * time.Second

// Fault timing: how long the workload runs before a fault, how long the fault lasts, and
// how long the healed cluster serves before the window closes.
const (
	warmUp = 1500 * time.Millisecond
	hold   = 4 * time.Second
	settle = 2 * time.Second
)

// carriedOp marks (as porcupine metadata) an ambiguous write of an earlier window.
const carriedOp = "carried from an earlier window"

// carryWindows is for how many later windows an ambiguous write stays pending.
const carryWindows = 1

// tally is what windows produced.
type tally struct {
	mu                              sync.Mutex
	ops, ok, fail, unknown, dropped int64
	faults                          []string
	violations, unchecked, lost     int
	perKey                          int // windows whose ETag semantics went unchecked
}

// suite is one cluster under test: its windows share the acknowledged unique writes.
type suite struct {
	t     *testing.T
	c     *cluster
	rng   *rand.Rand
	acked map[string]string
	// carried are the ambiguous writes of the last window: a request can reach a member
	// seconds after its client gave up (a partitioned member receives the retransmitted
	// request when TCP's backed-off timer fires after the heal), so they may still take
	// effect in the next window.
	carried [carryWindows][]opInput
	tally   tally
	check   sync.WaitGroup
	windows int
}

// window is one fault cycle: from a quiescent, healthy cluster (whose registers are the
// model's initial state) the workload runs, one fault is injected, held and healed; then
// the workload stops, every member is read (lost-write check) and the window's history is
// checked. In-flight writes are resolved by then: the next window starts with a
// linearizable read, which needs a leader that committed in its own term.
func (s *suite) window(name string, background bool) {
	s.t.Helper()
	c := s.c
	c.waitHealthy(time.Minute)
	initial := initialRegisters(c)
	h := newHistory()
	for _, ins := range s.carried {
		for _, in := range ins {
			h.ops = append(h.ops, porcupine.Operation{ClientId: len(c.members), Input: in, Output: opOutput{Outcome: outUnknown}, Call: 0, Return: math.MaxInt64, Metadata: carriedOp})
		}
	}
	s.windows++
	// Workers finish their current operation when stopped (no ambiguity made by the test).
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, m := range c.members {
		w := &worker{id: i, tag: fmt.Sprintf("w%d.", s.windows), cl: c.client(m), h: h, rng: rand.New(rand.NewPCG(s.rng.Uint64(), uint64(i)))}
		wg.Add(1)
		go func() { defer wg.Done(); defer w.cl.Close(); w.run(ctx.Done()) }()
	}
	sleepCtx(context.Background(), warmUp)
	faults := nemesis(context.Background(), c, s.rng, 1, hold, settle)
	cancel()
	wg.Wait()
	c.healAll()
	c.waitHealthy(time.Minute)
	h.mu.Lock()
	for k, v := range h.acked {
		s.acked[k] = v
	}
	h.mu.Unlock()
	copy(s.carried[1:], s.carried[:carryWindows-1])
	s.carried[0] = h.unknownWrites()
	lost, details := finalReads(c, h, s.acked)
	for _, d := range details {
		s.t.Errorf("%s: lost acknowledged write: %s", name, d)
	}
	s.tally.add(h, faults, lost)
	s.t.Logf("%s: %s; ambiguous because: %v", name, describeHistory(h.ops), h.unknownErrs)
	run := func() { defer s.check.Done(); s.checkHistory(name, initial, h.ops) }
	s.check.Add(1)
	if background {
		go run()
	} else {
		run()
	}
}

func (t *tally) add(h *history, faults []string, lost int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ok, fail, unknown, dropped := h.okOps.Load(), h.failOps.Load(), h.unknownOps.Load(), h.droppedOps.Load()
	t.ok, t.fail, t.unknown, t.dropped = t.ok+ok, t.fail+fail, t.unknown+unknown, t.dropped+dropped
	t.ops += ok + fail + unknown + dropped
	t.faults = append(t.faults, faults...)
	t.lost += lost
}

// checkHistory runs porcupine; on a violation it writes the visualisation into -jepsen.out
// and names the file.
func (s *suite) checkHistory(name string, initial map[string]string, ops []porcupine.Operation) {
	start := time.Now()
	model := newModel(initial)
	result, info := porcupine.CheckOperationsVerbose(model, ops, checkTimeout)
	if result == porcupine.Unknown {
		// The whole-configuration search gave up: check each register alone, which is
		// cheap. A violation there is a violation; a pass leaves the ETag semantics
		// of this window unchecked.
		s.t.Logf("%s: porcupine gave up on the whole configuration after %v; checking each key alone", name, checkTimeout)
		model = registerModel()
		ops = registerHistory(initial, ops)
		if r, i := porcupine.CheckOperationsVerbose(model, ops, checkTimeout); r != porcupine.Ok {
			result, info = r, i
		} else {
			s.t.Logf("%s: each key is linearizable (%d register operations)", name, len(ops))
			s.tally.mu.Lock()
			s.tally.perKey++
			s.tally.mu.Unlock()
			return
		}
	}
	s.t.Logf("%s: porcupine: %v on %d operations in %v", name, result, len(ops), time.Since(start).Round(time.Millisecond))
	s.tally.mu.Lock()
	defer s.tally.mu.Unlock()
	switch result {
	case porcupine.Ok:
		return
	case porcupine.Unknown:
		s.tally.unchecked++
		path := s.visualise(name, model, info)
		s.t.Logf("%s: porcupine gave up after %v: this window is unchecked (partial visualisation: %s)", name, checkTimeout, path)
		return
	}
	s.tally.violations++
	s.t.Errorf("%s: history is NOT linearizable; porcupine's visualisation: %s; history: %s", name, s.visualise(name, model, info), dumpHistory(name, ops))
}

// dumpHistory writes the operations as text, in call order, next to the visualisation.
func dumpHistory(name string, ops []porcupine.Operation) string {
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
	path, err := filepath.Abs(filepath.Join(*outDir, fmt.Sprintf("jepsen-%s-%s.txt", sanitize(name), time.Now().Format("20060102T150405"))))
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
	path, err := filepath.Abs(filepath.Join(*outDir, fmt.Sprintf("jepsen-%s-%s.html", sanitize(name), time.Now().Format("20060102T150405"))))
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

func newSuite(t *testing.T, members int, seed uint64) *suite {
	return &suite{t: t, c: newCluster(t, members), rng: rand.New(rand.NewPCG(seed, uint64(members))), acked: map[string]string{}}
}

// TestJepsen is the short version: a 3-member cluster, a few fault cycles.
func TestJepsen(t *testing.T) {
	if testing.Short() {
		t.Skip("jepsen: a minute of faults on a lab cluster; not in -short")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	s := newSuite(t, 3, seed)
	for i := 1; i <= 5; i++ {
		s.window(fmt.Sprintf("%s/window-%d", t.Name(), i), false)
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
	s := newSuite(t, *soakMembers, *soakSeed)
	end := time.Now().Add(*soakDuration)
	for i := 1; time.Now().Before(end); i++ {
		s.window(fmt.Sprintf("%s/window-%d", t.Name(), i), true)
	}
	s.check.Wait()
	fmt.Printf("soak: %d members, seed %d, duration %v\n", *soakMembers, *soakSeed, *soakDuration)
	s.report(os.Stdout)
}

// report prints the summary make soak promises; violations and lost writes fail the test.
func (s *suite) report(w *os.File) {
	s.check.Wait()
	r := &s.tally
	r.mu.Lock()
	defer r.mu.Unlock()
	counts := map[string]int{}
	for _, f := range r.faults {
		counts[strings.Fields(f)[0]]++
	}
	msg := fmt.Sprintf("operations done: %d (ok %d, failed %d, ambiguous %d, not sent %d)\nfaults injected: %d %v\nviolations: %d (windows checked per key only: %d, unchecked: %d)\nacknowledged writes lost: %d (of %d acknowledged unique writes)\n",
		r.ops, r.ok, r.fail, r.unknown, r.dropped, len(r.faults), counts, r.violations, r.perKey, r.unchecked, r.lost, len(s.acked))
	fmt.Fprint(w, msg)
	s.t.Log(strings.TrimSpace(msg))
	if r.violations > 0 || r.lost > 0 {
		s.t.Fail()
	}
}
