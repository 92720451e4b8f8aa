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
var sections = []section{
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

// section is one part of a run.
type section struct {
	name string
	run  func(*suite, *testing.B)
}

// BenchmarkSideBySide is `make bench`: every section once (run it with -benchtime 1x),
// then the table on stdout and results.json next to this file.
func BenchmarkSideBySide(b *testing.B) { runSections(b, sections, "results.json") }

// scaleSections are `make bench-scale`: the large cluster and the WAN raft timings, too long
// for `make bench`'s 20 minutes.
var scaleSections = []section{
	{"members", (*suite).members},
	{"wan", (*suite).wan},
}

// BenchmarkScale is `make bench-scale` (run it with -benchtime 1x): the table on stdout and
// results-scale.json next to this file.
func BenchmarkScale(b *testing.B) { runSections(b, scaleSections, "results-scale.json") }

// runSections runs the sections ORCH_BENCH_ONLY picks (all by default) once each, then
// prints the table and writes it as JSON to jsonFile.
func runSections(b *testing.B, secs []section, jsonFile string) {
	s := &suite{k: readKnobs(), rep: &Report{Date: time.Now().UTC(), Machine: ThisMachine()}}
	for _, sec := range secs {
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
	if err := s.rep.WriteJSON(jsonFile); err != nil {
		b.Fatal(err)
	}
}
