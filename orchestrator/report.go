package orchestrator

import (
	"orch/playbooks"
	"orch/playbooks/builtin"
)

// reporter returns the run's reporter for the chosen format.
func (s *session) reporter() (playbooks.Reporter, func()) {
	if s.opts.Format == "json" {
		return playbooks.NewJSONReporter(s.opts.Out), func() {}
	}
	return playbooks.NewTextReporter(s.opts.Out, playbooks.TextOptions{Diff: s.opts.Diff}), func() {}
}

func builtinSource(name string) ([]byte, error) { return builtin.Read(name) }
