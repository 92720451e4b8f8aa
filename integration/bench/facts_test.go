package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// facts measures fact gathering (issue 17): the wall time `gather_facts: true` adds to a
// one-task play on warm connections, on 1 and 10 hosts, for orch (its `setup` module: one
// command per host) and Ansible (its setup module).
func (s *suite) facts(b *testing.B) {
	_, ansErr := ansibleVersion()
	for _, n := range []int{1, 10} {
		var orch, ans []float64
		for i := range s.k.runs {
			l := newLab(b, n)
			e := newOrchEnv(b, l)
			d, err := factsCost(func(ctx context.Context, facts bool) run {
				return e.playText(ctx, factsName(facts), factsPlaybook(facts))
			})
			if err != nil {
				b.Errorf("orch facts on %d hosts: %v", n, err)
				closeLab(b, l)
				break
			}
			orch = append(orch, d)
			if ansErr == nil && i < s.k.slowRuns() {
				a := newAnsible(b, l)
				d, err := factsCost(func(ctx context.Context, facts bool) run {
					return a.play(ctx, factsName(facts), factsPlaybook(facts))
				})
				if err != nil {
					ansErr = err
					b.Errorf("ansible facts on %d hosts: %v", n, err)
				} else {
					ans = append(ans, d)
				}
				a.closeMasters()
			}
			closeLab(b, l)
		}
		p := Peer{Name: "Ansible", Stat: Summarise("ms", ans), Note: "its setup module"}
		if len(ans) == 0 && ansErr != nil {
			p.Note = firstLine(ansErr)
		}
		row := s.rep.Add(&Row{Section: "Playbooks", Measure: fmt.Sprintf("fact gathering (`gather_facts: true`), %d host(s), warm: wall time it adds to a play", n),
			Orch: Summarise("ms", orch), Peers: []Peer{p}})
		if n == 1 {
			row.Below(30)
		}
		row.FasterThan(10, "Ansible")
	}
}

// factsRounds is how many plays with and without facts one sample alternates.
const factsRounds = 3

// factsCost runs a warm-up, then alternates plays without and with facts and returns the
// median extra wall time of gathering, in milliseconds.
func factsCost(play func(ctx context.Context, facts bool) run) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if r := play(ctx, true); r.err != nil {
		return 0, r.err
	}
	var with, without []float64
	for range factsRounds {
		for _, facts := range []bool{false, true} {
			r := play(ctx, facts)
			if r.err != nil {
				return 0, r.err
			}
			ms := float64(r.took.Microseconds()) / 1000
			if facts {
				with = append(with, ms)
			} else {
				without = append(without, ms)
			}
		}
	}
	return Summarise("", with).Median - Summarise("", without).Median, nil
}

func factsName(facts bool) string {
	if facts {
		return "facts.yml"
	}
	return "nofacts.yml"
}

// factsPlaybook is one play of two tasks, gathering facts or not; with facts the second
// task uses them, so that a gatherer that skipped would fail the play, and without it echoes
// a word: the same tasks either way.
func factsPlaybook(facts bool) string {
	p := noopPlaybook(1)
	if !facts {
		return p + "    - name: echo\n      command: /bin/echo x\n"
	}
	return strings.Replace(p, "gather_facts: false", "gather_facts: true", 1) +
		"    - name: echo\n      command: /bin/echo {{ ansible_distribution }} {{ ansible_default_ipv4.address | default('') }}\n"
}

// playText runs `orch play` on a playbook written from text.
func (e *orchEnv) playText(ctx context.Context, name, text string) run {
	path := filepath.Join(filepath.Dir(e.inv), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return run{err: err}
	}
	return e.orch(ctx, "play", path)
}
