package bench

import (
	"os"
	"testing"
	"time"
)

// suite is one run of the side-by-side benchmark.
type suite struct {
	k   knobs
	rep *Report
}

// peer records a peer tool's version for the table header.
func (s *suite) peer(version string) {
	s.rep.mu.Lock()
	defer s.rep.mu.Unlock()
	s.rep.Machine.Peers = append(s.rep.Machine.Peers, version)
}

// sections are the parts of the run, in order; ORCH_BENCH_ONLY picks some.
var sections = []struct {
	name string
	run  func(*suite, *testing.B)
}{
	{"forming", (*suite).forming},
	{"cluster", (*suite).cluster},
	{"upgrade", (*suite).upgrade},
	{"writes", (*suite).writes},
	{"api", (*suite).apiReadsWrites},
	{"playbook", (*suite).playbook},
	{"facts", (*suite).facts},
	{"resources", (*suite).resources},
	{"realhosts", (*suite).realHosts},
	{"slowlink", (*suite).slowLink},
}

// BenchmarkSideBySide is `make bench`: every section once (run it with -benchtime 1x),
// then the table on stdout and results.json next to this file.
func BenchmarkSideBySide(b *testing.B) {
	s := &suite{k: readKnobs(), rep: &Report{Date: time.Now().UTC(), Machine: ThisMachine()}}
	for _, sec := range sections {
		if s.k.only != nil && !s.k.only[sec.name] {
			continue
		}
		start := time.Now()
		if !b.Run(sec.name, func(b *testing.B) { sec.run(s, b) }) {
			s.rep.Note("section %s failed (see the log above); its figures may be incomplete", sec.name)
		}
		b.Logf("section %s took %v", sec.name, time.Since(start).Round(time.Second))
	}
	if err := s.rep.WriteMarkdown(os.Stdout); err != nil {
		b.Fatal(err)
	}
	if err := s.rep.WriteJSON("results.json"); err != nil {
		b.Fatal(err)
	}
}
