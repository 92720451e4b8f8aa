package metrics

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Kind is a metric family's type.
type Kind string

// The metric types LXD serves.
const (
	Counter Kind = "counter"
	Gauge   Kind = "gauge"
)

// Labels are a sample's labels.
type Labels map[string]string

// sample is one value of a family.
type sample struct {
	labels Labels
	value  float64
}

// family is one metric: its help, its type and its samples.
type family struct {
	name, help string
	kind       Kind
	samples    []sample
}

// Set is a scrape's metrics in the order families were first added.
type Set struct {
	order    []string
	families map[string]*family
}

// NewSet is an empty set.
func NewSet() *Set { return &Set{families: map[string]*family{}} }

// Add adds a sample of the family name (created with help and kind on first use).
func (s *Set) Add(name, help string, kind Kind, labels Labels, value float64) {
	f := s.families[name]
	if f == nil {
		f = &family{name: name, help: help, kind: kind}
		s.families[name] = f
		s.order = append(s.order, name)
	}
	f.samples = append(f.samples, sample{labels: labels, value: value})
}

// addAll adds every sample of src, its families first in src's order.
func (s *Set) addAll(src *Set) {
	for _, name := range src.order {
		f := src.families[name]
		for _, smp := range f.samples {
			s.Add(f.name, f.help, f.kind, smp.labels, smp.value)
		}
	}
}

// WriteTo writes the set in the text exposition format LXD serves: per family a HELP and a
// TYPE line then its samples, labels sorted by name, and "# EOF" at the end (OpenMetrics).
func (s *Set) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	for _, name := range s.order {
		f := s.families[name]
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", f.name, escapeHelp(f.help), f.name, f.kind)
		for _, smp := range f.samples {
			b.WriteString(f.name)
			writeLabels(&b, smp.labels)
			b.WriteByte(' ')
			b.WriteString(strconv.FormatFloat(smp.value, 'g', -1, 64))
			b.WriteByte('\n')
		}
	}
	b.WriteString("# EOF\n")
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// String is the set as WriteTo writes it.
func (s *Set) String() string {
	var b strings.Builder
	_, _ = s.WriteTo(&b)
	return b.String()
}

func writeLabels(b *strings.Builder, l Labels) {
	if len(l) == 0 {
		return
	}
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(b, "%s=\"%s\"", k, escapeLabel(l[k]))
	}
	b.WriteByte('}')
}

var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

func escapeLabel(v string) string { return labelEscaper.Replace(v) }
func escapeHelp(v string) string  { return helpEscaper.Replace(v) }
