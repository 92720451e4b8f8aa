package bench

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// playbookTasks is the task count of the long playbook; the baseline has one task.
const playbookTasks = 6

// playbook measures the engine's overhead per host-task on warm connections: a playbook of
// playbookTasks `command: /bin/true` tasks minus the one-task baseline, divided by the
// extra tasks × hosts, for orch and Ansible on 1 and 10 hosts.
func (s *suite) playbook(b *testing.B) {
	_, ansErr := ansibleVersion()
	for _, n := range []int{1, 10} {
		var orch, ans, orchStep, ansStep []float64
		for i := range s.k.runs {
			l := newLab(b, n)
			e := newOrchEnv(b, l)
			perHost, perStep, err := overhead(n, func(ctx context.Context, tasks int) run {
				return e.play(ctx, tasks)
			})
			if err != nil {
				b.Errorf("orch play on %d hosts: %v", n, err)
				closeLab(b, l)
				break
			}
			orch, orchStep = append(orch, perHost), append(orchStep, perStep)
			if ansErr == nil && i < s.k.slowRuns() {
				a := newAnsible(b, l)
				perHost, perStep, err = overhead(n, func(ctx context.Context, tasks int) run {
					return a.play(ctx, fmt.Sprintf("noop%d.yml", tasks), noopPlaybook(tasks))
				})
				if err != nil {
					ansErr = err
					b.Errorf("ansible on %d hosts: %v", n, err)
				}
				ans, ansStep = append(ans, perHost), append(ansStep, perStep)
				a.closeMasters()
			}
			closeLab(b, l)
		}
		p := Peer{Name: "Ansible", Stat: Summarise("ms", ans)}
		if len(ans) > 0 {
			p.Note = "per task over all hosts " + num(Summarise("", ansStep).Median) + " ms"
		} else if ansErr != nil {
			p.Note = firstLine(ansErr)
		}
		s.rep.Add(&Row{Section: "Playbooks", Measure: fmt.Sprintf("overhead per host-task, `command: /bin/true`, %d host(s), warm", n),
			Orch: Summarise("ms", orch), OrchNote: "per task over all hosts " + num(Summarise("", orchStep).Median) + " ms",
			Peers: []Peer{p}}).Below(10)
	}
}

// overhead runs a warm-up, then the one-task and the long playbook, and returns the extra
// time per host-task and per task (milliseconds).
func overhead(hosts int, play func(ctx context.Context, tasks int) run) (perHost, perStep float64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var took [2]time.Duration
	for i, tasks := range []int{1, 1, playbookTasks} {
		r := play(ctx, tasks)
		if r.err != nil {
			return 0, 0, r.err
		}
		if i > 0 {
			took[i-1] = r.took
		}
	}
	extra := float64((took[1] - took[0]).Microseconds()) / 1000 / (playbookTasks - 1)
	return extra / float64(hosts), extra, nil
}

// play runs `orch play` on a playbook of n no-op command tasks.
func (e *orchEnv) play(ctx context.Context, tasks int) run {
	return e.playText(ctx, fmt.Sprintf("noop%d.yml", tasks), noopPlaybook(tasks))
}
