package bench

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult is one load run: operations per second and each operation's latency.
type loadResult struct {
	rate float64
	lat  []time.Duration
}

// load runs total operations spread over clients goroutines; it stops at the first error.
func load(clients, total int, op func(client int) error) (loadResult, error) {
	var next atomic.Int64
	lats := make([][]time.Duration, clients)
	errs := make([]error, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			for next.Add(1) <= int64(total) {
				t0 := time.Now()
				if err := op(c); err != nil {
					errs[c] = err
					return
				}
				lats[c] = append(lats[c], time.Since(t0))
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	for _, err := range errs {
		if err != nil {
			return loadResult{}, err
		}
	}
	all := slices.Concat(lats...)
	slices.Sort(all)
	return loadResult{rate: float64(len(all)) / secs, lat: all}, nil
}

// pct is the p-th percentile latency in milliseconds.
func (r loadResult) pct(p int) float64 {
	if len(r.lat) == 0 {
		return 0
	}
	return float64(r.lat[min(len(r.lat)-1, len(r.lat)*p/100)].Microseconds()) / 1000
}

// loadFigures collects the runs of one load shape.
type loadFigures struct {
	rate, p50, p99 []float64
	cpu            []float64 // µs of the daemons' CPU per operation, when measured
	clientCPU      []float64 // µs of the bench client's CPU per operation, when measured
}

func (f *loadFigures) add(r loadResult) {
	f.rate = append(f.rate, r.rate)
	f.p50 = append(f.p50, r.pct(50))
	f.p99 = append(f.p99, r.pct(99))
}

// row is the figures as a throughput row with the latencies in its note.
func (f *loadFigures) row(section, measure, unit string) *Row {
	return &Row{Section: section, Measure: measure, HigherBetter: true, Orch: Summarise(unit, f.rate),
		OrchNote: "p50 " + num(Summarise("", f.p50).Median) + " ms, p99 " + num(Summarise("", f.p99).Median) + " ms" + f.cpuNote()}
}

// cpuNote is the daemons' CPU per operation, when it was measured.
func (f *loadFigures) cpuNote() string {
	if len(f.cpu) == 0 {
		return ""
	}
	note := ", daemons' CPU " + num(Summarise("", f.cpu).Median) + " µs/op"
	if len(f.clientCPU) > 0 {
		note += " (client " + num(Summarise("", f.clientCPU).Median) + " µs/op)"
	}
	return note
}
