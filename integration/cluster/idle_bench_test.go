package cluster

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
)

// idleWindow is how long BenchmarkIdleCPU watches the idle cluster ($IDLE_WINDOW overrides,
// e.g. IDLE_WINDOW=60s).
const idleWindow = 30 * time.Second

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const clockTicks = 100

// BenchmarkIdleCPU is the CPU an idle three-member cluster (production raft timings,
// default offline threshold) burns: user+system time of each daemon from /proc over a
// window after the cluster settled, reported per idle minute. Run it with -benchtime=1x.
func BenchmarkIdleCPU(b *testing.B) {
	window := idleWindow
	if v := os.Getenv("IDLE_WINDOW"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("IDLE_WINDOW: %v", err)
		}
		window = d
	}
	ms := formDefaultRaft(b, 3)
	leader := agenttest.LeaderOf(b, ms)
	// Let joins, role changes and the first rounds settle before measuring.
	settle := time.Now().Add(5 * time.Second)
	wait.For(b, 10*time.Second, "the cluster to settle", func() error {
		if time.Now().Before(settle) {
			return fmt.Errorf("settling")
		}
		return threeOnlineVoters(ms[0])
	})
	for range b.N {
		before := make([]time.Duration, len(ms))
		for i, m := range ms {
			before[i] = cpuTime(b, m.PID())
		}
		start := time.Now()
		time.Sleep(window) // the measurement itself: the cluster is left alone
		elapsed := time.Since(start)
		var total, worst time.Duration
		for i, m := range ms {
			used := cpuTime(b, m.PID()) - before[i]
			perMin := time.Duration(float64(used) * float64(time.Minute) / float64(elapsed))
			role := "follower"
			if m == leader {
				role = "leader"
				b.ReportMetric(float64(perMin.Milliseconds()), "leader-ms/min")
			}
			b.Logf("%s (%s): %v CPU in %v = %d ms per idle minute", m.Name, role, used, elapsed.Round(time.Second), perMin.Milliseconds())
			total += perMin
			worst = max(worst, perMin)
		}
		b.ReportMetric(float64(total.Milliseconds())/float64(len(ms)), "ms/min/member")
		b.ReportMetric(float64(worst.Milliseconds()), "worst-ms/min")
		if err := threeOnlineVoters(ms[0]); err != nil {
			b.Fatalf("after the idle window: %v", err)
		}
	}
}

// cpuTime is the user+system CPU time of process pid so far.
func cpuTime(tb testing.TB, pid int) time.Duration {
	tb.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	// Fields after the command name (which may hold spaces) start at state (field 3);
	// utime and stime are fields 14 and 15.
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		tb.Fatalf("/proc/%d/stat: %q", pid, s)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks
}
