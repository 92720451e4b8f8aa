package jepsen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// fault is one kind of failure the nemesis injects and later heals.
type fault struct {
	name   string
	inject func(c *cluster, rng *rand.Rand) string // returns what it did
}

// faults are the nemesis's repertoire: kill -9 (leader or any member), SIGSTOP (leader or
// any member), partition a minority (maybe with the leader) or a majority.
var faults = []fault{
	{"kill-leader", func(c *cluster, _ *rand.Rand) string { return c.killOne(c.leader()) }},
	{"kill-random", func(c *cluster, rng *rand.Rand) string { return c.killOne(c.members[rng.IntN(len(c.members))]) }},
	{"pause-leader", func(c *cluster, _ *rand.Rand) string { return c.pauseOne(c.leader()) }},
	{"pause-random", func(c *cluster, rng *rand.Rand) string { return c.pauseOne(c.members[rng.IntN(len(c.members))]) }},
	{"partition-minority", func(c *cluster, rng *rand.Rand) string {
		return c.partition(rng, (len(c.members)-1)/2, true)
	}},
	{"partition-majority", func(c *cluster, rng *rand.Rand) string {
		return c.partition(rng, len(c.members)/2+1, false)
	}},
}

func (c *cluster) killOne(m *member) string {
	if m == nil {
		m = c.members[0]
	}
	m.kill()
	return "kill -9 " + m.name
}

func (c *cluster) pauseOne(m *member) string {
	if m == nil {
		m = c.members[0]
	}
	m.pause()
	return "SIGSTOP " + m.name
}

// partition cuts k members off (each alone); withLeader puts the leader among them.
func (c *cluster) partition(rng *rand.Rand, k int, withLeader bool) string {
	order := rng.Perm(len(c.members))
	var cut []*member
	if l := c.leader(); withLeader && l != nil && rng.IntN(2) == 0 {
		cut = append(cut, l)
	}
	for _, i := range order {
		if len(cut) >= k {
			break
		}
		if m := c.members[i]; !contains(cut, m) {
			cut = append(cut, m)
		}
	}
	names := ""
	for _, m := range cut {
		if err := m.host.Partition(); err != nil {
			c.t.Fatal(err)
		}
		names += " " + m.name
	}
	return fmt.Sprintf("partition%s", names)
}

func contains(ms []*member, m *member) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}

// nemesis injects a random fault, holds it, heals everything and lets the cluster settle,
// until ctx is done or cycles faults were injected (0: no limit). It returns the faults.
func nemesis(ctx context.Context, c *cluster, rng *rand.Rand, cycles int, hold, settle time.Duration) []string {
	var done []string
	for ctx.Err() == nil && (cycles == 0 || len(done) < cycles) {
		f := faults[rng.IntN(len(faults))]
		for *onlyFault != "" && f.name != *onlyFault {
			f = faults[rng.IntN(len(faults))]
		}
		what := f.inject(c, rng)
		done = append(done, what)
		c.t.Logf("nemesis: %s (%s)", what, f.name)
		sleepCtx(ctx, hold)
		c.healAll()
		c.t.Logf("nemesis: healed")
		sleepCtx(ctx, settle)
	}
	return done
}

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
