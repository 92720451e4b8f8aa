package daemon

import "runtime"

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
// left to the node's containers and to threads blocked in system calls.
func Procs(runtimeDefault int, env string) int {
	if env != "" {
		return runtimeDefault // the runtime already applied the operator's GOMAXPROCS
	}
	return max(1, (runtimeDefault+1)/2)
}

// SetProcs sets GOMAXPROCS to Procs for this process (the daemon command calls it once at
// start, with os.Getenv("GOMAXPROCS")).
func SetProcs(env string) {
	runtime.GOMAXPROCS(Procs(runtime.GOMAXPROCS(0), env))
}
