package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// resources measures the agent binary's size, and the idle RSS and CPU per idle minute of
// each member of a 3-member cluster, for orch and LXD side by side in the same window.
func (s *suite) resources(b *testing.B) {
	ns := newNetns(b)
	o := orchDaemons{newProcs(b, ns, "orch-bench-idle-", 3)}
	clusters := []struct {
		name string
		d    daemons
		p    *procs
	}{{"orch", o, o.procs}}
	_, lxdErr := lxdVersion()
	if lxdErr == nil {
		l := lxdDaemons{newProcs(b, ns, "orch-bench-lxdidle-", 3)}
		clusters = append(clusters, struct {
			name string
			d    daemons
			p    *procs
		}{"LXD", l, l.procs})
	}
	for _, c := range clusters {
		err := startAndForm(c.d)
		if err != nil && c.name == "orch" {
			b.Fatalf("orch cluster: %v", err)
		}
		if err != nil {
			lxdErr = err
			clusters = clusters[:1]
		}
	}
	// Let joins, role changes and first heartbeats settle before measuring "idle".
	time.Sleep(3 * time.Second)
	rss := map[string][]float64{}
	cpu0 := map[string][]cpuReading{}
	for _, c := range clusters {
		for i := range 3 {
			rss[c.name] = append(rss[c.name], vmRSSMB(c.p.pid(i)))
			cpu0[c.name] = append(cpu0[c.name], readCPU(c.p.pid(i)))
		}
	}
	start := time.Now()
	time.Sleep(s.k.idle)
	window := time.Since(start)
	cpu := map[string][]float64{}
	for _, c := range clusters {
		for i := range 3 {
			used := readCPU(c.p.pid(i)).since(cpu0[c.name][i])
			cpu[c.name] = append(cpu[c.name], used*1000*float64(time.Minute)/float64(window))
		}
	}
	s.resourceRows(rss, cpu, window, lxdErr)
}

func (s *suite) resourceRows(rss, cpu map[string][]float64, window time.Duration, lxdErr error) {
	size := func(path string) []float64 {
		st, err := os.Stat(path)
		if err != nil {
			return nil
		}
		return []float64{float64(st.Size()) / 1e6}
	}
	lxdPath, _ := exec.LookPath("lxd")
	peer := func(st Stat, note string) []Peer {
		p := Peer{Name: "LXD", Stat: st, Note: note}
		if st.N == 0 && lxdErr != nil {
			p.Note = firstLine(lxdErr)
		}
		return []Peer{p}
	}
	s.rep.Add(&Row{Section: "Resources", Measure: "agent binary size (static, stripped)", Orch: Summarise("MB", size(bins.agent)), Words: smaller,
		Peers: peer(Summarise("MB", size(lxdPath)), "/usr/bin/lxd alone; it also needs liblxc, dqlite, raft and more")})
	s.rep.Add(&Row{Section: "Resources", Measure: "idle RSS per member of a 3-member cluster (VmRSS)", Orch: Summarise("MB", rss["orch"]), Words: smaller,
		Peers: peer(Summarise("MB", rss["LXD"]), "")}).Below(40)
	s.rep.Add(&Row{Section: "Resources", Measure: fmt.Sprintf("CPU per idle minute per member (threads' on-CPU time over %v, scaled)", window.Round(time.Second)),
		Orch: Summarise("ms", cpu["orch"]), Words: [2]string{"less", "more"}, Peers: peer(Summarise("ms", cpu["LXD"]), "")}).WithinOf(0.5, "LXD")
}

// smaller are the ratio words of sizes.
var smaller = [2]string{"smaller", "larger"}

// startAndForm starts three daemons and forms a cluster of them.
func startAndForm(d daemons) error {
	for i := range 3 {
		if err := d.start(i); err != nil {
			return err
		}
	}
	_, err := form3(d)
	return err
}

// vmRSSMB is /proc/PID/status's VmRSS in MB (0 when unreadable).
func vmRSSMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb * 1024 / 1e6
		}
	}
	return 0
}

// clockTicks is sysconf(_SC_CLK_TCK) (getconf CLK_TCK), 100 when unknown.
var clockTicks = func() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if n, perr := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && perr == nil && n > 0 {
		return n
	}
	return 100
}()

// cpuSeconds is utime+stime of a process from /proc/PID/stat.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(fields[11], 64)
	st, _ := strconv.ParseFloat(fields[12], 64)
	return (ut + st) / clockTicks
}

// cpuReading is a process's CPU time so far, in seconds, read two ways: utime+stime
// (/proc/PID/stat, in 10 ms ticks: over a 25 s window one tick is 24 ms per minute, a
// quarter of an idle member's figure) and the sum of its threads' on-CPU time
// (/proc/PID/task/*/schedstat, in nanoseconds), which loses the time of threads that exit.
type cpuReading struct{ ticks, threads float64 }

func readCPU(pid int) cpuReading {
	r := cpuReading{ticks: cpuSeconds(pid)}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			ns, _ := strconv.ParseFloat(f[0], 64)
			r.threads += ns / 1e9
		}
	}
	return r
}

// since is the CPU time used between r0 and r: the threads' sum, unless the ticks say more
// by over two ticks (a thread exited meanwhile, taking its time out of the sum).
func (r cpuReading) since(r0 cpuReading) float64 {
	precise, coarse := r.threads-r0.threads, r.ticks-r0.ticks
	if coarse-precise > 2/clockTicks {
		return coarse
	}
	return precise
}
