package jepsen

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
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
)

// checkTimeout bounds porcupine's search on one round's history; a search that times out
// is reported as unchecked, never as passed.
const checkTimeout = 2 * time.Minute

// roundResult is what one round of workload and nemesis produced.
type roundResult struct {
	ops, ok, fail, unknown, dropped int64
	faults                          []string
	violation                       bool
	unchecked                       bool
	lost                            int
	visualisation                   string
}

// round runs the workload (one client per member) while the nemesis injects cycles faults
// (or until d passes), then heals, reads everything through every member and checks.
func round(t *testing.T, c *cluster, rng *rand.Rand, name string, cycles int, d time.Duration) roundResult {
	t.Helper()
	c.waitHealthy(time.Minute)
	initial := initialRegisters(c)
	h := newHistory()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, m := range c.members {
		w := &worker{id: i, cl: c.client(m), h: h, rng: rand.New(rand.NewPCG(rng.Uint64(), uint64(i)))}
		wg.Add(1)
		go func() { defer wg.Done(); defer w.cl.Close(); w.run(ctx) }()
	}
	nctx, ncancel := context.WithTimeout(context.Background(), d)
	sleepCtx(nctx, 2*time.Second) // some history before the first fault
	res := roundResult{faults: nemesis(nctx, c, rng, cycles, 4*time.Second, 3*time.Second)}
	ncancel()
	cancel()
	wg.Wait()
	c.healAll()
	c.waitHealthy(time.Minute)
	var details []string
	res.lost, details = finalReads(c, h)
	for _, d := range details {
		t.Errorf("lost acknowledged write: %s", d)
	}
	res.ok, res.fail, res.unknown, res.dropped = h.okOps.Load(), h.failOps.Load(), h.unknownOps.Load(), h.droppedOps.Load()
	res.ops = res.ok + res.fail + res.unknown + res.dropped
	t.Logf("%s: %s", name, describeHistory(h.ops))
	check(t, name, newModel(initial), h.ops, &res)
	return res
}

// check runs porcupine on a history; on a violation it writes the visualisation into
// -jepsen.out and names the file.
func check(t *testing.T, name string, model porcupine.Model, ops []porcupine.Operation, res *roundResult) {
	t.Helper()
	start := time.Now()
	result, info := porcupine.CheckOperationsVerbose(model, ops, checkTimeout)
	t.Logf("%s: porcupine %v on %d operations in %v", name, result, len(ops), time.Since(start).Round(time.Millisecond))
	switch result {
	case porcupine.Ok:
		return
	case porcupine.Unknown:
		res.unchecked = true
		t.Logf("%s: porcupine gave up after %v: the history is unchecked", name, checkTimeout)
		return
	}
	res.violation = true
	path, err := filepath.Abs(filepath.Join(*outDir, fmt.Sprintf("jepsen-%s-%s.html", sanitize(name), time.Now().Format("20060102T150405"))))
	if err == nil {
		err = porcupine.VisualizePath(model, info, path)
	}
	if err != nil {
		t.Errorf("%s: history is NOT linearizable (writing the visualisation: %v)", name, err)
		return
	}
	t.Errorf("%s: history is NOT linearizable; porcupine's visualisation: %s", name, path)
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' {
			return '_'
		}
		return r
	}, s)
}

// TestJepsen is the short version: a 3-member cluster, a few fault cycles.
func TestJepsen(t *testing.T) {
	c := newCluster(t, 3)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	res := round(t, c, rng, t.Name(), 5, 90*time.Second)
	report(t, os.Stdout, res)
	if res.lost > 0 || res.violation {
		t.Fail()
	}
}

// TestSoak runs rounds of workload and nemesis for -soak.duration on -soak.members members
// and prints operations, faults, violations and lost writes.
func TestSoak(t *testing.T) {
	if *soakDuration <= 0 {
		t.Skip("soak: pass -soak.duration (e.g. make soak, or go test ./integration/jepsen -run Soak -soak.duration 10m)")
	}
	if *soakMembers != 3 && *soakMembers != 5 {
		t.Fatalf("-soak.members %d: must be 3 or 5", *soakMembers)
	}
	c := newCluster(t, *soakMembers)
	rng := rand.New(rand.NewPCG(*soakSeed, uint64(*soakMembers)))
	var total roundResult
	end := time.Now().Add(*soakDuration)
	for i := 1; time.Until(end) > 10*time.Second; i++ {
		d := min(time.Until(end), 60*time.Second)
		res := round(t, c, rng, fmt.Sprintf("%s/round-%d", t.Name(), i), 0, d)
		total.add(res)
		report(t, os.Stdout, total)
	}
	fmt.Printf("soak: %d members, seed %d, %v\n", *soakMembers, *soakSeed, *soakDuration)
	report(t, os.Stdout, total)
	if total.lost > 0 || total.violation {
		t.Fail()
	}
}

func (r *roundResult) add(o roundResult) {
	r.ops += o.ops
	r.ok += o.ok
	r.fail += o.fail
	r.unknown += o.unknown
	r.dropped += o.dropped
	r.faults = append(r.faults, o.faults...)
	r.violation = r.violation || o.violation
	r.unchecked = r.unchecked || o.unchecked
	r.lost += o.lost
}

// report prints the summary make soak promises.
func report(t *testing.T, w *os.File, r roundResult) {
	violations := 0
	if r.violation {
		violations = 1
	}
	counts := map[string]int{}
	for _, f := range r.faults {
		counts[strings.Fields(f)[0]]++
	}
	msg := fmt.Sprintf("operations done: %d (ok %d, failed %d, ambiguous %d, not sent %d)\nfaults injected: %d %v\nviolations: %d%s\nacknowledged writes lost: %d\n",
		r.ops, r.ok, r.fail, r.unknown, r.dropped, len(r.faults), counts, violations, map[bool]string{true: " (some history unchecked: porcupine timed out)"}[r.unchecked], r.lost)
	fmt.Fprint(w, msg)
	t.Log(strings.TrimSpace(msg))
}
