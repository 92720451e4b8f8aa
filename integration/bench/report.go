package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Verdicts of a target.
const (
	Pass = "PASS"
	Miss = "MISS"
	// NotMeasured means a figure the target needs is missing (a failed or skipped run).
	NotMeasured = "n/a"
)

// Peer is another tool's figure for the same measure, or why there is none.
type Peer struct {
	// Name is the tool: "scp floor", "Ansible", "LXD".
	Name string `json:"name"`
	// Stat is its figure (N == 0 when not measured).
	Stat Stat `json:"stat"`
	// Note says why it was not measured or what differs ("once: slow").
	Note string `json:"note,omitempty"`
}

// Target is a goal from the issues and whether the figure meets it.
type Target struct {
	// Text is the goal as the issue states it, e.g. "< 2.0 s".
	Text string `json:"text"`
	// Verdict is Pass, Miss or NotMeasured.
	Verdict string `json:"verdict"`
}

// Row is one measure: orch's figure, its peers' and the targets it is held to.
type Row struct {
	// Section groups rows: "Forming", "Cluster", "Writes", "Playbooks", "Resources".
	Section string `json:"section"`
	// Measure names what was measured.
	Measure string `json:"measure"`
	// Orch is orch's figure.
	Orch Stat `json:"orch"`
	// OrchNote says why orch's figure is missing or how it was taken.
	OrchNote string `json:"orch_note,omitempty"`
	// HigherBetter is true for throughputs (ratios are then orch ÷ peer).
	HigherBetter bool `json:"higher_better,omitempty"`
	// Words are the ratio's words when orch is better and worse; default "faster"/"slower"
	// (or "higher"/"lower" with HigherBetter).
	Words [2]string `json:"-"`
	// Peers are the other tools' figures.
	Peers []Peer `json:"peers,omitempty"`
	// Targets are the goals for this measure.
	Targets []Target `json:"targets,omitempty"`
}

// Peer returns the named peer's figure.
func (r *Row) Peer(name string) (Peer, bool) {
	for _, p := range r.Peers {
		if p.Name == name {
			return p, true
		}
	}
	return Peer{}, false
}

// Below adds the target "median < limit unit".
func (r *Row) Below(limit float64) *Row {
	return r.target(fmt.Sprintf("< %s %s", num(limit), r.Orch.Unit), r.Orch.N > 0, r.Orch.Median < limit)
}

// Above adds the target "median > limit unit".
func (r *Row) Above(limit float64) *Row {
	return r.target(fmt.Sprintf("> %s %s", num(limit), r.Orch.Unit), r.Orch.N > 0, r.Orch.Median > limit)
}

// WithinOf adds the target "orch ≤ k × peer" (times).
func (r *Row) WithinOf(k float64, peer string) *Row {
	p, ok := r.Peer(peer)
	ok = ok && p.Stat.N > 0 && r.Orch.N > 0
	return r.target(fmt.Sprintf("≤ %sx %s", num(k), peer), ok, r.Orch.Median <= k*p.Stat.Median)
}

// FasterThan adds the target "peer ÷ orch ≥ k" (times).
func (r *Row) FasterThan(k float64, peer string) *Row {
	p, ok := r.Peer(peer)
	ok = ok && p.Stat.N > 0 && r.Orch.N > 0
	return r.target(fmt.Sprintf("≥ %sx faster than %s", num(k), peer), ok, p.Stat.Median >= k*r.Orch.Median)
}

func (r *Row) target(text string, measured, pass bool) *Row {
	v := NotMeasured
	if measured {
		v = Miss
		if pass {
			v = Pass
		}
	}
	r.Targets = append(r.Targets, Target{Text: text, Verdict: v})
	return r
}

// Machine describes where the figures were taken.
type Machine struct {
	// CPUs is the number of online CPUs (nproc).
	CPUs int `json:"cpus"`
	// CPUModel is /proc/cpuinfo's "model name".
	CPUModel string `json:"cpu_model"`
	// Kernel is `uname -r`.
	Kernel string `json:"kernel"`
	// Go is the Go version the binaries were built with.
	Go string `json:"go"`
	// Peers are the versions of the peer tools found ("ansible-core 2.14.18", "LXD 5.0.2").
	Peers []string `json:"peers,omitempty"`
}

// ThisMachine reads the machine description.
func ThisMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Kernel: "?", CPUModel: "?"}
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// Report is every row of one run.
type Report struct {
	// Date is when the run started (UTC).
	Date time.Time `json:"date"`
	// Machine is where it ran.
	Machine Machine `json:"machine"`
	// Rows are the measures in the order taken.
	Rows []*Row `json:"rows"`
	// Notes are remarks about the run (a peer that could not be installed, a failed section).
	Notes []string `json:"notes,omitempty"`

	mu sync.Mutex
}

// Add appends a row and returns it so that targets can be chained.
func (r *Report) Add(row *Row) *Row {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Rows = append(r.Rows, row)
	return row
}

// Note records a remark printed under the table.
func (r *Report) Note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// WriteJSON writes the report as indented JSON to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// WriteMarkdown writes the table: one line per row, peers and verdicts in their cells.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "## orch side by side — %s\n\n", r.Date.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Machine: %d CPUs (nproc), %s, Linux %s, %s", m.CPUs, m.CPUModel, m.Kernel, m.Go)
	if len(m.Peers) > 0 {
		fmt.Fprintf(&b, "; peers: %s", strings.Join(m.Peers, ", "))
	}
	b.WriteString(".\nFigures: median [min–max] ×runs. Ratios compare medians.\n\n")
	b.WriteString("| Section | Measure | orch | Peers | Target | Result |\n|---|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", row.Section, cell(row.Measure), cell(row.orchCell()),
			cell(row.peersCell()), cell(row.targetsCell(false)), row.targetsCell(true))
	}
	if len(r.Notes) > 0 {
		b.WriteString("\nNotes:\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (row *Row) orchCell() string {
	if row.Orch.N == 0 {
		return "not measured: " + row.OrchNote
	}
	if row.OrchNote != "" {
		return row.Orch.String() + " (" + row.OrchNote + ")"
	}
	return row.Orch.String()
}

func (row *Row) peersCell() string {
	var parts []string
	for _, p := range row.Peers {
		switch {
		case p.Stat.N == 0:
			parts = append(parts, p.Name+": not measured — "+p.Note)
		default:
			s := p.Name + ": " + p.Stat.String()
			if ratio := row.ratio(p); ratio != "" {
				s += " → " + ratio
			}
			if p.Note != "" {
				s += " (" + p.Note + ")"
			}
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, "<br>")
}

// ratio says how orch compares with a peer: "orch 12× faster" / "orch 1.3× slower" for
// times, "orch 3.1× higher" for throughputs.
func (row *Row) ratio(p Peer) string {
	if row.Orch.N == 0 || p.Stat.N == 0 || row.Orch.Median == 0 || p.Stat.Median == 0 {
		return ""
	}
	k := p.Stat.Median / row.Orch.Median
	better, worse := "faster", "slower"
	if row.HigherBetter {
		k = 1 / k
		better, worse = "higher", "lower"
	}
	if row.Words[0] != "" {
		better, worse = row.Words[0], row.Words[1]
	}
	if k >= 1 {
		return fmt.Sprintf("orch %s× %s", num(k), better)
	}
	return fmt.Sprintf("orch %s× %s", num(1/k), worse)
}

func (row *Row) targetsCell(verdicts bool) string {
	var parts []string
	for _, t := range row.Targets {
		if verdicts {
			parts = append(parts, "**"+t.Verdict+"**")
		} else {
			parts = append(parts, t.Text)
		}
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, "<br>")
}

// cell escapes a table cell's pipes.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
