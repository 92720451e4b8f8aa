package bench

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"orch/integration/lab"
)

// uplinkRate is the control node's link in the slowlink section: a laptop's VPN or a
// bastion's WAN uplink (issue 19).
const uplinkRate = "100mbit"

// slowLink is `orch up` and `orch upgrade` of ORCH_BENCH_HOSTS fresh hosts whose link to the
// control node is shaped to uplinkRate (host-to-host traffic is not), against parallel scp and
// Ansible behind the same link. The yardstick is the time one agent binary takes to cross the
// link (one scp to one host) plus the formation of the same cluster on an unshaped lab.
func (s *suite) slowLink(b *testing.B) {
	n := s.k.hosts
	f := slowFigures{newer: buildNewerAgent(b)}
	if err := f.measure(b, n); err != nil {
		b.Errorf("slow link, %d hosts: %v", n, err)
	}
	if _, err := ansibleVersion(); err == nil {
		if err := f.ansible(b, n); err != nil {
			s.rep.Note("Ansible behind the %s uplink failed: %v", uplinkRate, firstLine(err))
		}
	}
	f.rows(s, n)
}

// slowFigures are the samples of one slowlink run.
type slowFigures struct {
	one, scp, unshaped, up, upgrade, unshapedUpgrade, ans time.Duration
	upSent, upgradeSent                                   int64
	agentSize                                             int64
	newer                                                 string // the agent `orch upgrade` installs
}

func (f *slowFigures) measure(b *testing.B, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	st, err := os.Stat(bins.agent)
	if err != nil {
		return err
	}
	f.agentSize = st.Size()
	if f.unshaped, f.unshapedUpgrade, err = f.cluster(b, ctx, n, "", nil); err != nil {
		return fmt.Errorf("unshaped: %w", err)
	}
	f.up, f.upgrade, err = f.cluster(b, ctx, n, uplinkRate, f.floors)
	return err
}

// floors measures, on the shaped lab before orch touches it, one agent crossing the link
// and the parallel scp of it to every host.
func (f *slowFigures) floors(ctx context.Context, l *lab.Lab) error {
	start := time.Now()
	if err := scpTo(ctx, l, l.Hosts()[0], bins.agent, "/var/lib/nodeagent/scp-one"); err != nil {
		return fmt.Errorf("scp to one host: %w", err)
	}
	f.one = time.Since(start)
	took, err := scpFloor(ctx, l, bins.agent)
	f.scp = took
	return err
}

// cluster forms n fresh hosts with `orch up` and upgrades them, behind rate ("" unshaped);
// before runs first on the lab. On a shaped lab it records the bytes each command sent.
func (f *slowFigures) cluster(b *testing.B, ctx context.Context, n int, rate string, before func(context.Context, *lab.Lab) error) (up, upgrade time.Duration, err error) {
	l := newLab(b, n)
	defer closeLab(b, l)
	if rate != "" {
		if err := l.SetUplink(rate); err != nil {
			return 0, 0, err
		}
	}
	if before != nil {
		if err := before(ctx, l); err != nil {
			return 0, 0, err
		}
	}
	e := newOrchEnv(b, l)
	sent := l.UplinkSent
	if rate == "" {
		sent = func() (int64, error) { return 0, nil }
	}
	s0, err := sent()
	if err != nil {
		return 0, 0, err
	}
	r := e.up(ctx)
	if r.err != nil {
		return 0, 0, r.err
	}
	s1, err := sent()
	if err != nil {
		return 0, 0, err
	}
	u := e.orch(ctx, "upgrade", "--agent", f.newer)
	if u.err != nil {
		return 0, 0, u.err
	}
	s2, err := sent()
	if err != nil {
		return 0, 0, err
	}
	if rate != "" {
		f.upSent, f.upgradeSent = s1-s0, s2-s1
	}
	return r.took, u.took, nil
}

func (f *slowFigures) ansible(b *testing.B, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	l := newLab(b, n)
	defer closeLab(b, l)
	if err := l.SetUplink(uplinkRate); err != nil {
		return err
	}
	a := newAnsible(b, l)
	defer a.closeMasters()
	r := a.play(ctx, "form.yml", ansibleForm(bins.agent))
	if r.err != nil {
		return r.err
	}
	f.ans = r.took
	return nil
}

func (f *slowFigures) rows(s *suite, n int) {
	if f.up == 0 {
		return
	}
	one := func(d time.Duration) Stat { return Summarise("s", Seconds([]time.Duration{d})) }
	peers := []Peer{
		{Name: "scp floor", Stat: one(f.scp), Note: "parallel OpenSSH scp of the agent behind the same link"},
		{Name: "one agent", Stat: one(f.one), Note: "one scp of the agent to one host: the link's cost of one binary"},
		{Name: "unshaped", Stat: one(f.unshaped), Note: "orch up on as many fresh hosts, unshaped: formation"},
	}
	if f.ans != 0 {
		peers = append(peers, Peer{Name: "Ansible", Stat: one(f.ans), Note: "push, start, wait: no clustering"})
	}
	row := s.rep.Add(&Row{Section: "Slow link", Measure: fmt.Sprintf("orch up, %d fresh hosts behind a %s control link (sent %s: %.1f agents' worth)",
		n, uplinkRate, megabytes(f.upSent), float64(f.upSent)/float64(f.agentSize)), Orch: one(f.up), Peers: peers})
	limit := 2*f.one + f.unshaped
	row.target(fmt.Sprintf("≤ 2× one agent + formation (%.1f s)", limit.Seconds()), true, f.up <= limit)
	row.FasterThan(10, "scp floor")
	if f.ans != 0 {
		row.FasterThan(10, "Ansible")
	}
	up := s.rep.Add(&Row{Section: "Slow link", Measure: fmt.Sprintf("orch upgrade of %d members behind a %s control link (sent %s: %.1f agents' worth)",
		n, uplinkRate, megabytes(f.upgradeSent), float64(f.upgradeSent)/float64(f.agentSize)), Orch: one(f.upgrade),
		Peers: []Peer{{Name: "unshaped", Stat: one(f.unshapedUpgrade), Note: "the same upgrade on an unshaped lab"}}})
	up.WithinOf(2, "unshaped")
	up.target("sends ≤ ~1 agent", true, f.upgradeSent <= f.agentSize*5/4)
}

// megabytes formats a byte count in MB (10^6).
func megabytes(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
