package daemon

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestProcsHalvesTheCPUs: the daemon runs Go code on half the CPUs (rounded up) unless the
// operator's GOMAXPROCS says otherwise.
func TestProcsHalvesTheCPUs(t *testing.T) {
	for _, c := range []struct {
		cpus int
		env  string
		want int
	}{
		{1, "", 1}, {2, "", 1}, {3, "", 2}, {4, "", 2}, {16, "", 8},
		{2, "2", 2}, {3, "3", 3}, // the runtime's default already is the operator's GOMAXPROCS
	} {
		if got := Procs(c.cpus, c.env); got != c.want {
			t.Errorf("Procs(%d, %q) = %d, want %d", c.cpus, c.env, got, c.want)
		}
	}
}

// TestSysmonThreadSleepsInNanosleep: the thread sysmonThread picks is the runtime's monitor,
// the one thread that sleeps in nanosleep while goroutines keep making system calls (every
// other thread parks on a futex or waits in epoll).
func TestSysmonThreadSleepsInNanosleep(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("reads Linux's /proc/PID/task/TID/syscall numbers of amd64 and arm64")
	}
	tid, err := sysmonThread(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 2 { // short system calls and pauses keep sysmon at its 20 µs sleeps
		wg.Go(func() {
			for ctx.Err() == nil {
				syscall.Getppid()
				time.Sleep(50 * time.Microsecond)
			}
		})
	}
	defer wg.Wait()
	counts := map[int]int{}
	for ctx.Err() == nil {
		for _, th := range threadsIn(t, unix.SYS_NANOSLEEP) {
			counts[th]++
		}
	}
	most := 0
	for th, n := range counts {
		if n > counts[most] {
			most = th
		}
	}
	if most != tid {
		t.Fatalf("sysmonThread picked thread %d; the one in nanosleep most often is %d (samples per thread: %v)", tid, most, counts)
	}
}

// threadsIn lists this process's threads blocked in system call nr now.
func threadsIn(t *testing.T, nr int) []int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%s/syscall", task.Name()))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) > 0 && f[0] == strconv.Itoa(nr) {
			tid, _ := strconv.Atoi(task.Name())
			out = append(out, tid)
		}
	}
	return out
}

// TestTuneRuntimeSlowsSysmon: TuneRuntime gives the sysmon thread SysmonSlack of timer
// slack (root: CAP_SYS_NICE) and leaves the other threads' alone.
func TestTuneRuntimeSlowsSysmon(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("setting another thread's timer slack needs CAP_SYS_NICE (run as root)")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	if err := TuneRuntime(""); err != nil {
		t.Fatal(err)
	}
	tid, err := sysmonThread(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if got := slackOf(t, tid); got != int64(SysmonSlack) {
		t.Errorf("sysmon thread %d: timer slack %d ns, want %d", tid, got, int64(SysmonSlack))
	}
	if got := slackOf(t, os.Getpid()); got == int64(SysmonSlack) {
		t.Errorf("main thread: timer slack %d ns, changed too", got)
	}
}

func slackOf(t *testing.T, tid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/timerslack_ns", tid))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
