package jepsen

import (
	"fmt"
	"testing"
)

// mutants are agent builds with a known bug (nodeagent/store/mutation_*.go) and the faults
// aimed at it; the suite must report a violation on each, or it cannot catch that bug.
var mutants = []struct {
	tag    string
	bug    string
	script []string
}{
	{"jepsen_mutation_noverify", "read-index reads without confirming leadership (a heartbeat quorum of voters)",
		// Twelve windows: a stale read needs the resumed old leader to serve a queued read
		// before raft makes it step down, a race it lost in all of six windows once in about
		// seven runs; the run stops at the first window that catches it.
		[]string{"pause-leader", "pause-during-partition", "pause-leader", "pause-during-partition", "pause-leader", "pause-leader",
			"pause-leader", "pause-during-partition", "pause-leader", "pause-during-partition", "pause-leader", "pause-leader"}},
	{"jepsen_mutation_localread", "reads from the local replica",
		[]string{"partition-leader", "pause-leader", "kill-leader"}},
}

// TestMutations runs the suite against each mutant until it reports a violation: a mutant
// that survives every window fails the test.
func TestMutations(t *testing.T) {
	if testing.Short() {
		t.Skip("jepsen mutations: lab clusters with faults; not in -short")
	}
	for _, mu := range mutants {
		t.Run(mu.tag, func(t *testing.T) {
			bin, err := buildAgent(mu.tag)
			if err != nil {
				t.Fatal(err)
			}
			s := newSuite(t, 3, runSeed(t), bin, false)
			s.mutant, s.out = true, t.TempDir()
			s.script = mu.script
			for i := range mu.script {
				s.window(fmt.Sprintf("%s/window-%d", t.Name(), i+1), false)
				if s.caught() {
					t.Logf("%s (%s) caught in window %d", mu.tag, mu.bug, i+1)
					return
				}
			}
			t.Errorf("%s (%s): no violation in %d windows aimed at it: the suite cannot catch this bug", mu.tag, mu.bug, len(mu.script))
		})
	}
}
