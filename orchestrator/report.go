package orchestrator

import (
	"fmt"
	"io"
	"os"
	"time"

	"orch/playbooks"
	"orch/playbooks/builtin"
)

// reporter returns the run's reporter for the chosen format. With ORCH_PROFILE_TASKS set
// (like Ansible's profile_tasks callback) each task's wall time goes to stderr as it ends.
func (s *session) reporter() (playbooks.Reporter, func()) {
	var rep playbooks.Reporter
	if s.opts.Format == "json" {
		rep = playbooks.NewJSONReporter(s.opts.Out)
	} else {
		rep = playbooks.NewTextReporter(s.opts.Out, playbooks.TextOptions{Diff: s.opts.Diff})
	}
	if os.Getenv("ORCH_PROFILE_TASKS") != "" {
		rep = &taskTimer{next: rep, w: os.Stderr, start: time.Now()}
	}
	return rep, func() {}
}

// taskTimer passes events on and prints each task's wall time when the next one starts.
type taskTimer struct {
	next    playbooks.Reporter
	w       io.Writer
	start   time.Time
	task    string
	started time.Time
}

// Report implements playbooks.Reporter.
func (t *taskTimer) Report(e playbooks.Event) {
	if e.Kind == playbooks.EventTaskStart || e.Kind == playbooks.EventPlaybookEnd {
		now := time.Now()
		if t.task != "" {
			fmt.Fprintf(t.w, "profile: %-40s %8.1f ms (at %.1f ms)\n", t.task,
				float64(now.Sub(t.started).Microseconds())/1000, float64(now.Sub(t.start).Microseconds())/1000)
		}
		t.task, t.started = e.Task, now
	}
	t.next.Report(e)
}

func builtinSource(name string) ([]byte, error) { return builtin.Read(name) }
