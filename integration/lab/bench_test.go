package lab

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// BenchmarkCreate measures bringing up a lab (bridge, netns, veths, keys, sshd answering
// on every host) of 3 and of 30 hosts; close-ms reports tearing it down again.
func BenchmarkCreate(b *testing.B) {
	for _, n := range []int{3, 30} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			Require(b)
			var closing time.Duration
			for range b.N {
				closing += createAndClose(b, n)
			}
			b.ReportMetric(float64(closing.Milliseconds())/float64(b.N), "close-ms")
		})
	}
}

func createAndClose(b *testing.B, n int) time.Duration {
	b.StopTimer()
	dir, err := os.MkdirTemp("", "orch-lab-test-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b.StartTimer()
	l, err := Create(ctx, dir, n)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}
