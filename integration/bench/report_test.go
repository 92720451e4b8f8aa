package bench

import (
	"bytes"
	"strings"
	"testing"
)

func TestSummarise(t *testing.T) {
	s := Summarise("s", []float64{3, 1, 2, 10})
	if s.Median != 2.5 || s.Min != 1 || s.Max != 10 || s.N != 4 {
		t.Fatalf("%+v", s)
	}
	if got := s.String(); got != "2.50 s [1.00–10.0] ×4" {
		t.Fatalf("String() = %q", got)
	}
	if got := Summarise("ms", nil).String(); got != "—" {
		t.Fatalf("empty: %q", got)
	}
	if got := num(12345.6); got != "12,346" {
		t.Fatalf("num = %q", got)
	}
}

func TestTargetsAndTable(t *testing.T) {
	r := &Report{Machine: Machine{CPUs: 2, CPUModel: "X", Kernel: "6"}}
	r.Add(&Row{Section: "Forming", Measure: "up 3", Orch: Summarise("s", []float64{1.5}),
		Peers: []Peer{{Name: "Ansible", Stat: Summarise("s", []float64{15})}, {Name: "LXD", Note: "not installed"}}}).
		Below(2).FasterThan(8, "Ansible").FasterThan(2, "LXD")
	r.Add(&Row{Section: "Writes", Measure: "16 clients", HigherBetter: true, Orch: Summarise("writes/s", []float64{4000}),
		Peers: []Peer{{Name: "bare raft", Stat: Summarise("writes/s", []float64{2000})}}}).Above(5000)
	want := [][]string{{Pass, Pass, NotMeasured}, {Miss}}
	for i, row := range r.Rows {
		for j, tg := range row.Targets {
			if tg.Verdict != want[i][j] {
				t.Errorf("row %d target %q: %s, want %s", i, tg.Text, tg.Verdict, want[i][j])
			}
		}
	}
	var b bytes.Buffer
	if err := r.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"orch 10.0× faster", "orch 2.00× higher", "LXD: not measured — not installed", "**MISS**"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, b.String())
		}
	}
}
