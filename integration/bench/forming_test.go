package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"orch/integration/lab"
)

// orchEnv runs orch against one lab with its own state directory.
type orchEnv struct {
	lab   *lab.Lab
	inv   string
	state string
}

func newOrchEnv(b testing.TB, l *lab.Lab) *orchEnv {
	b.Helper()
	dir, err := os.MkdirTemp("", "orch-bench-orch-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	e := &orchEnv{lab: l, inv: filepath.Join(dir, "inventory.ini"), state: filepath.Join(dir, "state")}
	if err := l.WriteInventory(e.inv, nil); err != nil {
		b.Fatal(err)
	}
	return e
}

// orch runs the orch binary with the env's inventory, state and the lab's known_hosts.
func (e *orchEnv) orch(ctx context.Context, args ...string) run {
	full := append([]string{"-i", e.inv, "--known-hosts", e.lab.KnownHostsFile()}, args...)
	return timed(ctx, []string{"ORCH_CONFIG=" + e.state}, "", bins.orch, full...)
}

// up is `orch up` with the agent under test.
func (e *orchEnv) up(ctx context.Context) run { return e.orch(ctx, "up", "--agent", bins.agent) }

// scpFloor copies the agent binary to every host at once with OpenSSH scp (one process per
// host, as parallel scp does) and returns the wall time.
func scpFloor(ctx context.Context, l *lab.Lab, file string) (time.Duration, error) {
	hosts := l.Hosts()
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	start := time.Now()
	for i, h := range hosts {
		wg.Go(func() { errs[i] = scpTo(ctx, l, h, file, "/var/lib/nodeagent/scp-floor") })
	}
	wg.Wait()
	took := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return took, nil
}

// scpTo copies file to dest on host h with OpenSSH scp, the lab's key and known_hosts.
func scpTo(ctx context.Context, l *lab.Lab, h *lab.Host, file, dest string) error {
	out, err := exec.CommandContext(ctx, "scp", "-q", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile="+l.KnownHostsFile(), "-i", l.KeyFile(),
		file, "root@"+h.Addr+":"+dest).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: scp: %w: %s", h.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// forming is `orch up` on fresh hosts (push included) and its converged re-run, against
// the parallel-scp floor and Ansible's equivalent playbook on the same number of hosts.
func (s *suite) forming(b *testing.B) {
	ansVer, ansErr := ansibleVersion()
	if ansErr == nil {
		s.peer(ansVer)
	}
	for _, n := range []int{3, s.k.hosts} {
		runs, ansRuns := s.k.runs, s.k.slowRuns()
		if n > 3 {
			runs, ansRuns = s.k.slowRuns(), 1
		}
		f := formingFigures{n: n}
		for i := range runs {
			if err := f.orchRun(b, n); err != nil {
				b.Errorf("forming %d hosts, run %d: %v", n, i+1, err)
				break
			}
			if ansErr == nil && i < ansRuns {
				if err := f.ansibleRun(b, n); err != nil {
					s.rep.Note("Ansible on %d hosts failed: %v", n, firstLine(err))
					b.Errorf("Ansible on %d hosts: %v", n, err)
					ansErr = err
				}
			}
		}
		f.rows(s, ansErr)
	}
}

// formingFigures are the samples of one host count.
type formingFigures struct {
	n                               int
	up, rerun, scp, ansUp, ansRerun []time.Duration
}

func (f *formingFigures) orchRun(b *testing.B, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l := newLab(b, n)
	defer closeLab(b, l)
	took, err := scpFloor(ctx, l, bins.agent)
	if err != nil {
		return err
	}
	f.scp = append(f.scp, took)
	e := newOrchEnv(b, l)
	r := e.up(ctx)
	if r.err != nil {
		return r.err
	}
	f.up = append(f.up, r.took)
	r = e.up(ctx)
	if r.err != nil {
		return r.err
	}
	if !strings.Contains(r.stdout, "nothing changed") {
		return fmt.Errorf("orch up re-run changed something:\n%s", tailOf(r.stdout, 20))
	}
	f.rerun = append(f.rerun, r.took)
	return nil
}

func (f *formingFigures) ansibleRun(b *testing.B, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l := newLab(b, n)
	defer closeLab(b, l)
	a := newAnsible(b, l)
	defer a.closeMasters()
	r := a.play(ctx, "form.yml", ansibleForm(bins.agent))
	if r.err != nil {
		return r.err
	}
	f.ansUp = append(f.ansUp, r.took)
	r = a.play(ctx, "form.yml", ansibleForm(bins.agent))
	if r.err != nil {
		return r.err
	}
	if !strings.Contains(r.stdout, "changed=0") {
		return fmt.Errorf("ansible re-run changed something:\n%s", tailOf(r.stdout, 20))
	}
	f.ansRerun = append(f.ansRerun, r.took)
	return nil
}

func (f *formingFigures) rows(s *suite, ansErr error) {
	once := "push, start, wait: no clustering"
	if f.n > 3 {
		once += "; once: slow"
	}
	ans := func(d []time.Duration) Peer {
		p := Peer{Name: "Ansible", Stat: Summarise("s", Seconds(d)), Note: once}
		if len(d) == 0 && ansErr != nil {
			p.Note = firstLine(ansErr)
		}
		return p
	}
	up := s.rep.Add(&Row{Section: "Forming", Measure: fmt.Sprintf("orch up, %d fresh hosts (push, start, bootstrap, join)", f.n),
		Orch: Summarise("s", Seconds(f.up)),
		Peers: []Peer{{Name: "scp floor", Stat: Summarise("s", Seconds(f.scp)), Note: "parallel OpenSSH scp of the agent"},
			ans(f.ansUp)}})
	if f.n == 3 {
		up.Below(2)
	} else {
		up.WithinOf(1.5, "scp floor")
	}
	up.FasterThan(8, "Ansible")
	re := s.rep.Add(&Row{Section: "Forming", Measure: fmt.Sprintf("converged re-run, %d hosts", f.n),
		Orch: Summarise("s", Seconds(f.rerun)), Peers: []Peer{ans(f.ansRerun)}})
	if f.n == 3 {
		re.Below(0.4)
	}
	re.FasterThan(8, "Ansible")
}

// firstLine is the first line of an error, for table notes.
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
