package playbooks

import (
	"sort"
	"sync"
)

// Status is the outcome of a task on one host.
type Status string

// Task outcomes, as Ansible prints them.
const (
	StatusOK          Status = "ok"
	StatusChanged     Status = "changed"
	StatusFailed      Status = "failed"
	StatusSkipped     Status = "skipped"
	StatusUnreachable Status = "unreachable"
)

// EventKind says what an Event reports.
type EventKind int

// Event kinds, in the order they occur.
const (
	// EventPlayStart: a play (batch) starts; Play and Hosts are set.
	EventPlayStart EventKind = iota
	// EventTaskStart: a task starts on the batch; Task and Handler are set.
	EventTaskStart
	// EventItemResult: one loop item finished on Host; Item is its label.
	EventItemResult
	// EventHostResult: the task finished on Host; Status and Result are set.
	EventHostResult
	// EventWarning: Message is a warning.
	EventWarning
	// EventNoHostsLeft: every host of the batch failed; the play stops.
	EventNoHostsLeft
	// EventPlaybookEnd: the run ended; Recap is set.
	EventPlaybookEnd
)

// Event is one progress report. Results of no_log tasks are already censored.
type Event struct {
	// Kind of event.
	Kind EventKind
	// Play is the current play's name.
	Play string
	// Hosts are the hosts of the play (EventPlayStart).
	Hosts []string
	// Task is the current task's display name.
	Task string
	// Handler is set when the task is a handler.
	Handler bool
	// Host the result is for.
	Host string
	// Delegate is the host the task ran on, if delegated.
	Delegate string
	// Item is the loop item's label (EventItemResult).
	Item string
	// Status of the task or item on Host.
	Status Status
	// Ignored is set when a failure was ignored (ignore_errors).
	Ignored bool
	// Result is the module's result; for a loop, Data["results"] holds the items.
	Result Result
	// Message is the warning text (EventWarning).
	Message string
	// Recap is the final tally (EventPlaybookEnd).
	Recap *Recap
}

// Reporter receives progress events. The engine serialises calls.
type Reporter interface {
	Report(e Event)
}

// ReporterFunc adapts a function to Reporter.
type ReporterFunc func(e Event)

// Report calls f.
func (f ReporterFunc) Report(e Event) { f(e) }

// MultiReporter sends every event to each reporter in turn.
func MultiReporter(rs ...Reporter) Reporter {
	return ReporterFunc(func(e Event) {
		for _, r := range rs {
			r.Report(e)
		}
	})
}

// syncReporter serialises events from concurrent hosts.
type syncReporter struct {
	mu sync.Mutex
	r  Reporter
}

func (s *syncReporter) Report(e Event) {
	if s.r == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.r.Report(e)
}

// Stats are one host's counters, as in Ansible's PLAY RECAP.
type Stats struct {
	Ok          int `json:"ok"`
	Changed     int `json:"changed"`
	Unreachable int `json:"unreachable"`
	Failed      int `json:"failures"`
	Skipped     int `json:"skipped"`
	Rescued     int `json:"rescued"`
	Ignored     int `json:"ignored"`
}

// Recap is the result of a run.
type Recap struct {
	// Hosts maps each host that took part to its counters.
	Hosts map[string]*Stats
	// Aborted is set when any_errors_fatal, max_fail_percentage or a fully
	// failed batch stopped the run early.
	Aborted bool

	mu sync.Mutex
}

func newRecap() *Recap { return &Recap{Hosts: map[string]*Stats{}} }

func (r *Recap) add(host string, fn func(s *Stats)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.Hosts[host]
	if s == nil {
		s = &Stats{}
		r.Hosts[host] = s
	}
	fn(s)
}

// HostNames returns the hosts in the recap, sorted.
func (r *Recap) HostNames() []string {
	names := make([]string, 0, len(r.Hosts))
	for h := range r.Hosts {
		names = append(names, h)
	}
	sort.Strings(names)
	return names
}

// Exit codes, as ansible-playbook's.
const (
	ExitOK          = 0
	ExitError       = 1
	ExitFailed      = 2
	ExitUnreachable = 4
)

// ExitCode returns ansible-playbook's exit code for a run: 1 if err is set
// and there is no recap, 4 if any host was unreachable, 2 if any host
// failed or the run was aborted, else 0.
func ExitCode(r *Recap, err error) int {
	if r == nil {
		if err != nil {
			return ExitError
		}
		return ExitOK
	}
	failed := r.Aborted
	for _, s := range r.Hosts {
		if s.Unreachable > 0 {
			return ExitUnreachable
		}
		failed = failed || s.Failed > 0
	}
	if failed {
		return ExitFailed
	}
	if err != nil {
		return ExitError
	}
	return ExitOK
}
