package daemon

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Procs is how many Ps (GOMAXPROCS) a daemon process runs Go code on, given the runtime's
// default (the CPUs it may use) and the GOMAXPROCS environment variable: half the CPUs,
// rounded up, unless the variable sets it.
//
// A daemon's work is short bursts (a request, a raft RPC, an fdatasync, a SQLite commit)
// handed between goroutines. When one becomes runnable while a P is idle, the runtime wakes
// a thread to look for it (a spinning M), and every such wake-up is a context switch: on
// this 2-core VM about 20 µs, more than the work it hands over. With one P per two CPUs
// there are far fewer idle Ps to wake: 16 API clients PATCHing /1.0 on 2 CPUs, the three
// daemons' context switches per write fell by about a third and their CPU per write by
// 10-15% (integration/bench's api section, nodeagent/daemon/DESIGN.md). The other CPUs are
// left to the node's containers and to threads blocked in system calls. Setting it stops
// the runtime's own updates of GOMAXPROCS from a changed cgroup CPU limit: the daemon
// halves the limit it starts with.
func Procs(runtimeDefault int, env string) int {
	if env != "" {
		return runtimeDefault // the runtime already applied the operator's GOMAXPROCS
	}
	return max(1, (runtimeDefault+1)/2)
}

// SysmonSlack is the timer slack of the Go runtime's monitor thread (sysmon) in a daemon.
//
// Sysmon sleeps 20 µs at a time while the process is busy (for at least 1 ms after it last
// took a P from a thread blocked in a system call or a cgo call, and after every wake from
// an idle spell); with Linux's default 50 µs slack that is ~14,000 wake-ups a second, each
// a context switch, and the Ps it takes from every fdatasync and longer SQLite call wake
// another thread to run what was queued. With 1 ms of slack it wakes at most ~1,000 times a
// second, and most fdatasyncs end before it looks. Its other duties bear the delay: it
// preempts goroutines that ran 10 ms and polls the network when no thread has for 10 ms.
// 16 clients PATCHing /1.0 (DESIGN.md): the daemons' context switches per write 4.1-4.5 →
// 1.9-2.1, their CPU per write about a quarter less.
const SysmonSlack = time.Millisecond

// ErrNoSysmon is returned when the runtime's monitor thread cannot be told apart.
var ErrNoSysmon = errors.New("no thread of this process looks like the runtime's sysmon")

// TuneRuntime sets GOMAXPROCS to Procs and the sysmon thread's timer slack to SysmonSlack
// for this process (the daemon command calls it once at start, with
// os.Getenv("GOMAXPROCS")). The slack needs CAP_SYS_NICE (root); its error is for a log
// line, the daemon runs as well without it.
func TuneRuntime(env string) error {
	if cur := runtime.GOMAXPROCS(0); Procs(cur, env) != cur {
		runtime.GOMAXPROCS(Procs(cur, env))
	}
	tid, err := sysmonThread(os.Getpid())
	if err != nil {
		return err
	}
	slack := strconv.FormatInt(int64(SysmonSlack/time.Nanosecond), 10)
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/timerslack_ns", tid), []byte(slack), 0); err != nil {
		return fmt.Errorf("timer slack of the runtime's sysmon thread %d: %w", tid, err)
	}
	return nil
}

// sysmonThread finds the runtime's sysmon thread of process pid: the first thread the
// runtime starts after the main one (runtime.main starts it before anything else runs),
// so the earliest started of the others, the lower thread ID between two started in the
// same clock tick.
func sysmonThread(pid int) (int, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNoSysmon, err)
	}
	best, bestStart := 0, uint64(0)
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil || tid == pid {
			continue
		}
		start, err := threadStart(pid, tid)
		if err != nil {
			continue // the thread exited meanwhile
		}
		if best == 0 || start < bestStart || (start == bestStart && tid < best) {
			best, bestStart = tid, start
		}
	}
	if best == 0 {
		return 0, ErrNoSysmon
	}
	return best, nil
}

// threadStart is when thread tid of process pid started, in clock ticks since boot
// (field 22 of /proc/PID/task/TID/stat).
func threadStart(pid, tid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 20 {
		return 0, fmt.Errorf("/proc/%d/task/%d/stat: %d fields after the name", pid, tid, len(fields))
	}
	return strconv.ParseUint(fields[19], 10, 64)
}
