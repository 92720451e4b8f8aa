package bench

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// clusterFigures are the samples of one tool's cluster benchmarks.
type clusterFigures struct {
	form, failover, online, list []time.Duration
	frozen                       []time.Duration // leader frozen (SIGSTOP) → a survivor names a new one
}

// cluster measures 3-member formation from preseeds, leader kill → a survivor answers with
// a new leader, restarted member → ONLINE and `cluster list` latency, for orch and LXD.
func (s *suite) cluster(b *testing.B) {
	ns := newNetns(b)
	var orch, lxd clusterFigures
	lxdVer, lxdErr := lxdVersion()
	if lxdErr == nil {
		s.peer(lxdVer)
	}
	for i := range s.k.runs {
		o := orchDaemons{newProcs(b, ns, "orch-bench-agents-", 3)}
		if err := orch.measure(o, o.procs); err != nil {
			b.Errorf("orch cluster, run %d: %v\n%s", i+1, err, tailOf(readAll(o.logFile(0)), 30))
			break
		}
	}
	for i := range s.k.slowRuns() {
		if lxdErr != nil {
			break
		}
		l := lxdDaemons{newProcs(b, ns, "orch-bench-lxd-", 3)}
		if err := lxd.measure(l, l.procs); err != nil {
			lxdErr = fmt.Errorf("run %d: %w", i+1, err)
			s.rep.Note("LXD cluster benchmark failed: %v", firstLine(err))
			b.Logf("LXD cluster, run %d: %v", i+1, err)
		}
	}
	s.clusterRows(orch, lxd, lxdErr)
}

func (s *suite) clusterRows(orch, lxd clusterFigures, lxdErr error) {
	peer := func(d []time.Duration, ms bool) Peer {
		p := Peer{Name: "LXD", Stat: Summarise("s", Seconds(d))}
		if ms {
			p.Stat = Summarise("ms", Millis(d))
		}
		if len(d) == 0 && lxdErr != nil {
			p.Note = firstLine(lxdErr)
		}
		return p
	}
	s.rep.Add(&Row{Section: "Cluster", Measure: "3-member formation from preseeds (daemons running; until 3 ONLINE voters)",
		Orch: Summarise("s", Seconds(orch.form)), Peers: []Peer{peer(lxd.form, false)}})
	s.rep.Add(&Row{Section: "Cluster", Measure: "kill -9 leader → a survivor answers with a new leader",
		Orch: Summarise("s", Seconds(orch.failover)), Peers: []Peer{peer(lxd.failover, false)}}).Below(1.5)
	s.rep.Add(&Row{Section: "Cluster", Measure: "leader frozen (SIGSTOP: silent, like a power cut or a partition) → a survivor answers with a new leader",
		Orch: Summarise("s", Seconds(orch.frozen)), Peers: []Peer{peer(lxd.frozen, false)}}).Below(1.5)
	s.rep.Add(&Row{Section: "Cluster", Measure: "OFFLINE member restarted → ONLINE (daemon start included)",
		Orch: Summarise("s", Seconds(orch.online)), Peers: []Peer{peer(lxd.online, false)}}).Below(2)
	s.rep.Add(&Row{Section: "Cluster", Measure: "`cluster list` CLI on a follower (process start included)",
		Orch: Summarise("ms", Millis(orch.list)), Peers: []Peer{peer(lxd.list, true)}})
}

// measure forms a cluster of 3 from scratch and takes one sample of each figure.
func (f *clusterFigures) measure(d daemons, p *procs) error {
	defer p.killAll()
	for i := range 3 {
		if err := d.start(i); err != nil {
			return err
		}
	}
	took, err := form3(d)
	if err != nil {
		return err
	}
	f.form = append(f.form, took)
	for range 10 {
		start := time.Now()
		if _, err := listVia(d, 1, 10*time.Second); err != nil {
			return err
		}
		f.list = append(f.list, time.Since(start))
	}
	return f.failoverAndBack(d, p)
}

// form3 bootstraps member 0, joins 1 and 2 and waits for three ONLINE voters.
func form3(d daemons) (time.Duration, error) {
	start := time.Now()
	if err := d.bootstrap(); err != nil {
		return 0, err
	}
	for i := 1; i < 3; i++ {
		if err := d.join(i); err != nil {
			return 0, err
		}
	}
	_, err := waitFor(60*time.Second, "three ONLINE voters", func() error {
		ms, err := listVia(d, 0, 5*time.Second)
		if err != nil {
			return err
		}
		return threeVoters(ms)
	})
	return time.Since(start), err
}

func threeVoters(ms []memberView) error {
	voters, leaders := 0, 0
	for _, m := range ms {
		if !m.online() {
			return fmt.Errorf("%s is %s: %w", m.Name, m.Status, errCondition)
		}
		v, l := databaseRoles(m.Roles)
		voters, leaders = voters+v, leaders+l
	}
	if voters != 3 || leaders != 1 {
		return fmt.Errorf("%d voters, %d leaders in %+v: %w", voters, leaders, ms, errCondition)
	}
	return nil
}

// failoverAndBack kills the leader, times until a survivor answers naming another leader,
// waits until the killed member is OFFLINE, restarts it and times until it is ONLINE.
func (f *clusterFigures) failoverAndBack(d daemons, p *procs) error {
	li, err := leaderIndex(d)
	if err != nil {
		return err
	}
	via := (li + 1) % 3
	start := time.Now()
	p.kill(li)
	took, err := newLeaderVia(d, li, via, start)
	if err != nil {
		return err
	}
	f.failover = append(f.failover, took)
	if _, err := waitFor(90*time.Second, name(li)+" OFFLINE", memberStatus(d, via, name(li), false)); err != nil {
		return err
	}
	start = time.Now()
	if err := d.start(li); err != nil {
		return err
	}
	if _, err := waitFor(60*time.Second, name(li)+" ONLINE", memberStatus(d, via, name(li), true)); err != nil {
		return err
	}
	f.online = append(f.online, time.Since(start))
	return f.frozenLeader(d, p)
}

// frozenLeader stops the leader with SIGSTOP (its connections stay open and silent, as
// with a host lost to a power cut or a partition: no kill -9 shortcut), times until a
// survivor answers naming another leader, and lets the frozen one go on until it follows.
func (f *clusterFigures) frozenLeader(d daemons, p *procs) error {
	li, err := leaderIndex(d)
	if err != nil {
		return err
	}
	pid := p.pid(li)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("freezing %s: %w", name(li), err)
	}
	start := time.Now()
	took, err := newLeaderVia(d, li, (li+1)%3, start)
	_ = syscall.Kill(pid, syscall.SIGCONT)
	if err != nil {
		return err
	}
	f.frozen = append(f.frozen, took)
	// The resumed member steps down and follows again: three voters, one leader.
	_, err = waitFor(60*time.Second, "three ONLINE voters after the frozen leader resumed", func() error {
		ms, err := listVia(d, (li+1)%3, 5*time.Second)
		if err != nil {
			return err
		}
		return threeVoters(ms)
	})
	return err
}

// newLeaderVia waits until member via answers naming a leader other than member old, and
// returns the time since start.
func newLeaderVia(d daemons, old, via int, start time.Time) (time.Duration, error) {
	_, err := waitFor(30*time.Second, "a new leader", func() error {
		ms, err := listVia(d, via, 2*time.Second)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if m.leader() && m.Name != name(old) {
				return nil
			}
		}
		return fmt.Errorf("leaders in %+v: %w", ms, errCondition)
	})
	return time.Since(start), err
}

// memberStatus is a wait condition: member n is ONLINE (or not), as seen through via.
func memberStatus(d daemons, via int, n string, online bool) func() error {
	return func() error {
		ms, err := listVia(d, via, 3*time.Second)
		if err != nil {
			return err
		}
		if m, ok := find(ms, n); ok && m.online() == online {
			return nil
		}
		return fmt.Errorf("%s in %+v: %w", n, ms, errCondition)
	}
}

// databaseRoles counts the database (voter) and database-leader roles among roles.
func databaseRoles(roles []string) (voters, leaders int) {
	for _, r := range roles {
		switch r {
		case "database":
			voters++
		case "database-leader":
			leaders++
		}
	}
	return voters, leaders
}
