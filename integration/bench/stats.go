package bench

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Stat summarises the samples of one figure: median, min and max in Unit.
type Stat struct {
	// Median is the median of the samples.
	Median float64 `json:"median"`
	// Min is the smallest sample.
	Min float64 `json:"min"`
	// Max is the largest sample.
	Max float64 `json:"max"`
	// N is the number of samples.
	N int `json:"n"`
	// Unit is what the numbers count: "s", "ms", "writes/s", "MB", "%".
	Unit string `json:"unit"`
	// Samples are the raw samples, in the order measured.
	Samples []float64 `json:"samples,omitempty"`
}

// Summarise computes the Stat of samples; an empty slice gives N == 0.
func Summarise(unit string, samples []float64) Stat {
	s := Stat{Unit: unit, N: len(samples), Samples: slices.Clone(samples)}
	if len(samples) == 0 {
		return s
	}
	sorted := slices.Sorted(slices.Values(samples))
	s.Min, s.Max = sorted[0], sorted[len(sorted)-1]
	if n := len(sorted); n%2 == 1 {
		s.Median = sorted[n/2]
	} else {
		s.Median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	return s
}

// Seconds converts durations to seconds.
func Seconds(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

// Millis converts durations to milliseconds.
func Millis(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d.Microseconds()) / 1000
	}
	return out
}

// String renders "1.23 s [1.10–1.40] ×5", or the single value when there is one sample.
func (s Stat) String() string {
	if s.N == 0 {
		return "—"
	}
	if s.N == 1 {
		return num(s.Median) + " " + s.Unit
	}
	return fmt.Sprintf("%s %s [%s–%s] ×%d", num(s.Median), s.Unit, num(s.Min), num(s.Max), s.N)
}

// num formats with three significant digits and thousands separators for large values.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 10000:
		return thousands(int64(math.Round(v)))
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
	}
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
