package playbooks

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkTaskOverhead measures the engine's cost per host per task with a
// module that does nothing: templated args, a when, a register, the
// linear strategy's fan-out and the recap. Reported as ns/host-task.
func BenchmarkTaskOverhead(b *testing.B) {
	const tasks = 50
	var src strings.Builder
	src.WriteString("- hosts: all\n  gather_facts: false\n  vars:\n    v: 1\n  tasks:\n")
	for i := range tasks {
		fmt.Fprintf(&src, "    - name: t%d\n      noop: { arg: \"{{ v + %d }}\" }\n      when: v == 1\n      register: r%d\n", i, i, i%5)
	}
	pb, err := Parse("bench.yml", []byte(src.String()))
	if err != nil {
		b.Fatal(err)
	}
	noop := ModuleFunc(func(context.Context, *TaskContext) (Result, error) { return Result{}, nil })
	for _, n := range []int{1, 10} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			hosts := make([]Host, n)
			for i := range hosts {
				hosts[i] = Host{Name: fmt.Sprintf("h%d", i), Vars: map[string]any{"x": i, "y": "z"}}
			}
			opts := Options{Hosts: hosts, Modules: Registry{"noop": noop}, NoFacts: true}
			start := time.Now()
			for b.Loop() {
				recap, err := Run(context.Background(), pb, opts)
				if err != nil || recap.Hosts["h0"].Ok != tasks {
					b.Fatalf("run: %v %+v", err, recap.Hosts["h0"])
				}
			}
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*tasks*n), "ns/host-task")
		})
	}
}
