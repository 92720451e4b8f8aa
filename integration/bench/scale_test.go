package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"orch/integration/lab"
	"orch/nodeagent/api"
)

// defaultThreshold is cluster.offline_threshold when nothing sets it (seconds), the one the
// members section holds OFFLINE detection to.
const defaultThreshold = 20 * time.Second

// scaleFigures are the samples of one large-cluster run.
type scaleFigures struct {
	up time.Duration
	// upHosts and upOrch are the CPU time `orch up` cost the hosts (every process of the
	// lab) and orch itself: the figures that do not depend on what else loads the machine.
	upHosts, upOrch time.Duration
	idle            float64 // CPU of every agent together, in % of one core
	leader          float64 // the leader's CPU, ms per idle minute
	follower        float64 // the busiest other member's CPU, ms per idle minute
	median          float64 // the median member's CPU, ms per idle minute
	window          time.Duration
	list            []time.Duration
	apiList         []time.Duration
	failover        []time.Duration // one per kill of the leader's host (ORCH_BENCH_RUNS kills)
	late            time.Duration   // OFFLINE seen after last heartbeat + threshold
	offline         bool
}

// members is the large cluster of issue 19: `orch up` of ORCH_BENCH_MEMBERS (default 200)
// fresh namespace hosts, the idle CPU of every agent together, `orch cluster list` through a
// follower, kill -9 of the leader's host until a survivor answers naming a new leader, and
// when the killed member shows OFFLINE against its last heartbeat plus the threshold.
func (s *suite) members(b *testing.B) {
	n := s.k.members
	var f scaleFigures
	if err := f.measure(b, n, s.k.idle, s.k.runs); err != nil {
		b.Errorf("%d members: %v", n, err)
	}
	f.rows(s, n)
}

func (f *scaleFigures) measure(b *testing.B, n int, idle time.Duration, runs int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	l := newLab(b, n)
	defer closeLab(b, l)
	e := newOrchEnv(b, l)
	formingProfiled, err := profileForming(ctx, e)
	if err != nil {
		return err
	}
	hostsBefore, cpuErr := l.CPUTime()
	r := e.upStamped(ctx)
	saveOutput("orch-up.out", r.stdout+r.stderr)
	if r.err != nil {
		return fmt.Errorf("%w\nfirst failures:\n%s", r.err, firstFailures(r.stdout+r.stderr, 5))
	}
	f.up, f.upOrch = r.took, r.cpu
	if hostsAfter, err := l.CPUTime(); cpuErr == nil && err == nil {
		f.upHosts = hostsAfter - hostsBefore
	}
	hosts := l.Hosts()
	ms, err := waitSettled(ctx, e, hosts[len(hosts)-1].Name, n)
	if err != nil {
		return err
	}
	hold(e)
	li := leaderHost(hosts, ms)
	if li < 0 {
		return fmt.Errorf("no leader in the member list")
	}
	via := hosts[(li+1)%n].Name
	<-formingProfiled // one CPU profile at a time
	stop, err := startProfiles(ctx, e, hosts[li], hosts[spareHost(hosts, ms)], idle)
	if err != nil {
		return err
	}
	err = f.idleCPU(hosts, li, idle)
	if perr := stop(); err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	for range 10 {
		r := e.list(ctx, via)
		if r.err != nil {
			return r.err
		}
		f.list = append(f.list, r.took)
	}
	if err := f.apiLists(ctx, hosts[(li+1)%n], n); err != nil {
		return err
	}
	if err := f.failoverAndOffline(ctx, e, hosts, li, via); err != nil {
		return err
	}
	return f.moreFailovers(ctx, e, hosts, via, runs-1, []string{hosts[li].Name})
}

// medianOf is the median of xs (0 when empty).
func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// hold, for development, keeps the formed cluster while the file ORCH_BENCH_HOLD names
// exists (its inventory and state directory are written into it), so that one can look at
// it with orch by hand.
func hold(e *orchEnv) {
	f := os.Getenv("ORCH_BENCH_HOLD")
	if f == "" {
		return
	}
	if err := os.WriteFile(f, []byte(fmt.Sprintf("ORCH_CONFIG=%s orch -i %s --known-hosts %s\n", e.state, e.inv, e.lab.KnownHostsFile())), 0o644); err != nil {
		return
	}
	for {
		if _, err := os.Stat(f); err != nil {
			return
		}
		time.Sleep(time.Second) // a person is looking at the cluster
	}
}

// saveOutput writes text to name in the ORCH_BENCH_PROFILE directory, when set.
func saveOutput(name, text string) {
	if dir := os.Getenv("ORCH_BENCH_PROFILE"); dir != "" {
		_ = os.MkdirAll(dir, 0o755)
		_ = os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644)
	}
}

// firstLineOf is err's last two lines (a command's output), "ok" for nil.
func firstLineOf(err error) string {
	if err == nil {
		return "ok"
	}
	return strings.ReplaceAll(tailOf(err.Error(), 2), "\n", " | ")
}

// firstFailures are the first n lines of a play's output that report a failed task.
func firstFailures(out string, n int) string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, " failed: [") || strings.Contains(l, " unreachable: [") {
			lines = append(lines, l)
			if len(lines) == n {
				break
			}
		}
	}
	return strings.Join(lines, "\n")
}

// upStamped is `orch up` whose stdout lines start with the seconds since it started, so
// that the time each task took shows in the saved output; the first line says when it
// started (wall clock), to line it up with the agents' logs and a system-wide profile.
func (e *orchEnv) upStamped(ctx context.Context) run {
	full := []string{"-i", e.inv, "--known-hosts", e.lab.KnownHostsFile(), "up", "--agent", bins.agent}
	if os.Getenv("ORCH_BENCH_PROFILE") != "" {
		full = append([]string{"-v"}, full...) // each command's host, time and duration, in the saved output
	}
	cmd := exec.CommandContext(ctx, bins.orch, full...)
	cmd.Env = append(os.Environ(), "ORCH_CONFIG="+e.state)
	var errb strings.Builder
	cmd.Stderr = &errb
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return run{err: err}
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return run{err: err}
	}
	var out strings.Builder
	fmt.Fprintf(&out, "  0.000 started at %s (unix %.3f)\n", start.UTC().Format(time.RFC3339Nano), float64(start.UnixNano())/1e9)
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		fmt.Fprintf(&out, "%7.3f %s\n", time.Since(start).Seconds(), sc.Text())
	}
	err = cmd.Wait()
	r := run{took: time.Since(start), stdout: out.String(), stderr: errb.String()}
	if ps := cmd.ProcessState; ps != nil {
		r.cpu = ps.UserTime() + ps.SystemTime()
	}
	if err != nil {
		r.err = fmt.Errorf("orch up: %w\n%s", err, tailOf(r.stdout+r.stderr, 30))
	}
	return r
}

// apiLists times GET /1.0/cluster/members through a follower's local socket (the request
// forwarded to the leader, 200 member views built and sent back), without starting a
// process: what `cluster list` costs the cluster.
func (f *scaleFigures) apiLists(ctx context.Context, via *lab.Host, n int) error {
	sock, ok := via.Path("/var/lib/nodeagent/unix.socket")
	if !ok {
		return fmt.Errorf("%s: no agent directory", via.Name)
	}
	cl := api.NewUnixClient(sock)
	defer cl.Close()
	for range 20 {
		start := time.Now()
		ms, err := cl.Members(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", via.Name, err)
		}
		if len(ms) != n {
			return fmt.Errorf("%s listed %d members, want %d", via.Name, len(ms), n)
		}
		f.apiList = append(f.apiList, time.Since(start))
	}
	return nil
}

// list is `orch cluster list --format json` through host via (--limit).
func (e *orchEnv) list(ctx context.Context, via string) run {
	return e.orch(ctx, "cluster", "list", "--format", "json", "--limit", via)
}

// listMembers decodes list's output.
func (e *orchEnv) listMembers(ctx context.Context, via string) ([]scaleMember, error) {
	r := e.list(ctx, via)
	if r.err != nil {
		return nil, r.err
	}
	var ms []scaleMember
	if err := json.Unmarshal([]byte(r.stdout), &ms); err != nil {
		return nil, fmt.Errorf("cluster list output: %w: %.200s", err, r.stdout)
	}
	return ms, nil
}

// scaleMember is a member as `cluster list --format json` shows it, with its heartbeat.
type scaleMember struct {
	memberView
	LastHeartbeat time.Time `json:"last_heartbeat"`
}

// waitSettled waits until the n members are ONLINE with 3 voters (one leading) and 2
// stand-bys, as seen through via.
func waitSettled(ctx context.Context, e *orchEnv, via string, n int) ([]scaleMember, error) {
	var ms []scaleMember
	_, err := waitFor(2*time.Minute, fmt.Sprintf("%d ONLINE members, 3 voters, 2 stand-bys", n), func() error {
		var err error
		if ms, err = e.listMembers(ctx, via); err != nil {
			return err
		}
		return settled(ms, n)
	})
	return ms, err
}

func settled(ms []scaleMember, n int) error {
	count := map[string]int{}
	for _, m := range ms {
		if !m.online() {
			return fmt.Errorf("%s is %s: %w", m.Name, m.Status, errCondition)
		}
		for _, r := range m.Roles {
			count[r]++
		}
	}
	if len(ms) != n || count["database"] != 3 || count["database-leader"] != 1 || count["database-standby"] != 2 {
		return fmt.Errorf("%d members, roles %v: %w", len(ms), count, errCondition)
	}
	return nil
}

// leaderHost is the index in hosts of the leading member (member names are host names).
func leaderHost(hosts []*lab.Host, ms []scaleMember) int {
	for i, h := range hosts {
		for _, m := range ms {
			if m.Name == h.Name && m.leader() {
				return i
			}
		}
	}
	return -1
}

// spareHost is the index in hosts of the last member that holds no database role (most
// members of a large cluster are spares), or the last host.
func spareHost(hosts []*lab.Host, ms []scaleMember) int {
	roles := map[string]int{}
	for _, m := range ms {
		roles[m.Name] = len(m.Roles)
	}
	for i := len(hosts) - 1; i >= 0; i-- {
		if roles[hosts[i].Name] == 0 {
			return i
		}
	}
	return len(hosts) - 1
}

// agentPID reads a host's agent pidfile (the lab's hosts share the machine's PID namespace).
func agentPID(h *lab.Host) (int, error) {
	p, ok := h.Path("/var/lib/nodeagent/nodeagent.pid")
	if !ok {
		return 0, fmt.Errorf("%s: the agent directory is not one of the lab's mounts", h.Name)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", h.Name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s: pidfile %s: %w", h.Name, p, err)
	}
	return pid, nil
}

// idleCPU measures every agent's CPU over the idle window.
func (f *scaleFigures) idleCPU(hosts []*lab.Host, leader int, window time.Duration) error {
	pids := make([]int, len(hosts))
	before := make([]float64, len(hosts))
	for i, h := range hosts {
		pid, err := agentPID(h)
		if err != nil {
			return err
		}
		pids[i], before[i] = pid, cpuSeconds(pid)
	}
	start := time.Now()
	time.Sleep(window) // the measurement itself: the cluster is left alone
	f.window = time.Since(start)
	perMin := func(used float64) float64 { return used * 1000 * float64(time.Minute) / float64(f.window) }
	var total float64
	used := make([]float64, len(pids))
	for i, pid := range pids {
		now := cpuSeconds(pid)
		if now == 0 {
			return fmt.Errorf("%s: the agent (PID %d) exited during the idle window", hosts[i].Name, pid)
		}
		used[i] = now - before[i]
		total += used[i]
		if i == leader {
			f.leader = perMin(used[i])
		} else {
			f.follower = max(f.follower, perMin(used[i]))
		}
	}
	f.idle = 100 * total / f.window.Seconds()
	f.median = perMin(medianOf(used))
	return nil
}

// failoverAndOffline kills the leader's host, times until via answers naming another
// leader, then waits until via lists the killed member OFFLINE and records how late that
// was against its last heartbeat plus the threshold.
func (f *scaleFigures) failoverAndOffline(ctx context.Context, e *orchEnv, hosts []*lab.Host, li int, via string) error {
	victim := hosts[li]
	took, err := killLeader(ctx, e, hosts, li, via, "failover-tries.txt")
	if err != nil {
		return err
	}
	f.failover = append(f.failover, took)
	_, err = waitFor(90*time.Second, victim.Name+" OFFLINE", func() error {
		ms, err := e.listMembers(ctx, via)
		if err != nil {
			return err
		}
		seen := time.Now()
		for _, m := range ms {
			if m.Name == victim.Name && !m.online() {
				f.late, f.offline = seen.Sub(m.LastHeartbeat)-defaultThreshold, true
				return nil
			}
		}
		return fmt.Errorf("%s not OFFLINE yet: %w", victim.Name, errCondition)
	})
	return err
}

// moreFailovers kills the leader's host n more times, each once the members killed before
// are OFFLINE and the roles have been rebalanced over the live members (three ONLINE
// voters, none of them killed), for the median.
func (f *scaleFigures) moreFailovers(ctx context.Context, e *orchEnv, hosts []*lab.Host, via string, n int, killed []string) error {
	for i := range n {
		var ms []scaleMember
		_, err := waitFor(2*time.Minute, "three ONLINE voters again", func() error {
			var err error
			if ms, err = e.listMembers(ctx, via); err != nil {
				return err
			}
			return liveVoters(ms, killed)
		})
		if err != nil {
			return err
		}
		li := leaderHost(hosts, ms)
		if li < 0 || hosts[li].Name == via {
			return fmt.Errorf("leader %d is the member asked (%s) or unknown", li, via)
		}
		took, err := killLeader(ctx, e, hosts, li, via, fmt.Sprintf("failover-%d-tries.txt", i+2))
		if err != nil {
			return err
		}
		f.failover = append(f.failover, took)
		killed = append(killed, hosts[li].Name)
	}
	return nil
}

// liveVoters is nil once no killed member is listed ONLINE or holding a database role
// (else a kill would take the quorum with it) and three ONLINE members hold the database
// role, one leading.
func liveVoters(ms []scaleMember, killed []string) error {
	voters, leaders := 0, 0
	for _, m := range ms {
		if slices.Contains(killed, m.Name) && (m.online() || len(m.Roles) > 0) {
			return fmt.Errorf("%s (killed) is %s with roles %v: %w", m.Name, m.Status, m.Roles, errCondition)
		}
		if !m.online() {
			continue
		}
		v, l := databaseRoles(m.Roles)
		voters, leaders = voters+v, leaders+l
	}
	if voters != 3 || leaders != 1 {
		return fmt.Errorf("%d ONLINE voters, %d leaders: %w", voters, leaders, errCondition)
	}
	return nil
}

// killLeader kills the host hosts[li] (the leader's) and returns how long until via
// answers naming another leader. With ORCH_BENCH_PROFILE it saves every attempt (tries)
// and a CPU profile of the other database members over the failover.
func killLeader(ctx context.Context, e *orchEnv, hosts []*lab.Host, li int, via, tries string) (time.Duration, error) {
	victim := hosts[li]
	profiled := profileFailover(ctx, e, hosts, victim, tries)
	start := time.Now()
	if err := victim.Kill(); err != nil {
		return 0, err
	}
	sock, ok := e.lab.Host(via).Path("/var/lib/nodeagent/unix.socket")
	if !ok {
		return 0, fmt.Errorf("%s: no agent directory", via)
	}
	cl := api.NewUnixClient(sock)
	defer cl.Close()
	var log strings.Builder
	_, err := waitFor(30*time.Second, "a new leader", func() error {
		t0 := time.Now()
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ms, err := cl.Members(actx)
		cancel()
		fmt.Fprintf(&log, "%6.3f s +%5.3f s: %v\n", t0.Sub(start).Seconds(), time.Since(t0).Seconds(), firstLineOf(err))
		if err != nil {
			return err
		}
		for _, m := range ms {
			if m.ServerName != victim.Name && slices.Contains(m.Roles, api.RoleDatabaseLeader) {
				return nil
			}
		}
		return fmt.Errorf("no other leader: %w", errCondition)
	})
	took := time.Since(start)
	<-profiled
	saveOutput(tries, log.String())
	return took, err
}

// profileFailover, with ORCH_BENCH_PROFILE, takes a 3 s CPU profile of every other
// database member (the new leader is one of them) starting now; the channel is closed when
// they are saved (at once without the knob).
func profileFailover(ctx context.Context, e *orchEnv, hosts []*lab.Host, victim *lab.Host, name string) <-chan struct{} {
	done := make(chan struct{})
	dir := os.Getenv("ORCH_BENCH_PROFILE")
	if dir == "" {
		close(done)
		return done
	}
	ms, err := e.listMembers(ctx, victim.Name)
	if err != nil {
		close(done)
		return done
	}
	var wg sync.WaitGroup
	for _, m := range ms {
		h := e.lab.Host(m.Name)
		if h == nil || h == victim || len(m.Roles) == 0 {
			continue
		}
		if r := e.orch(ctx, "config", "set", "core.debug_address", h.Addr+":"+profilePort, "--limit", h.Name); r.err != nil {
			continue
		}
		wg.Go(func() {
			file := filepath.Join(dir, strings.TrimSuffix(name, "-tries.txt")+"-"+h.Name+"-cpu.pprof")
			_ = fetchProfile(ctx, h, "profile?seconds=3", file)
		})
	}
	go func() { wg.Wait(); close(done) }()
	return done
}

func (f *scaleFigures) rows(s *suite, n int) {
	one := func(unit string, v float64) Stat { return Summarise(unit, []float64{v}) }
	if f.up == 0 {
		return
	}
	cpu := ""
	if f.upHosts > 0 {
		cpu = fmt.Sprintf("; CPU: hosts %.1f s, orch %.1f s", f.upHosts.Seconds(), f.upOrch.Seconds())
	}
	s.rep.Add(&Row{Section: "Scale", Measure: fmt.Sprintf("orch up, %d fresh namespace hosts (push, start, bootstrap, join; all ONLINE%s)", n, cpu),
		Orch: one("s", f.up.Seconds())}).Below(20)
	if f.window == 0 {
		return
	}
	s.rep.Add(&Row{Section: "Scale", Measure: fmt.Sprintf("idle CPU of all %d agents together, %% of one core (over %v; leader %.0f ms/min, busiest other member %.0f, median member %.0f)",
		n, f.window.Round(time.Second), f.leader, f.follower, f.median), Orch: one("%", f.idle)}).Below(20)
	if len(f.list) == 0 {
		return
	}
	s.rep.Add(&Row{Section: "Scale", Measure: fmt.Sprintf("`cluster list` of %d members through a follower: GET /1.0/cluster/members on its local socket", n),
		Orch:  Summarise("ms", Millis(f.apiList)),
		Peers: []Peer{{Name: "orch CLI", Stat: Summarise("ms", Millis(f.list)), Note: "`orch cluster list` through the same follower: process start, inventory, TLS included"}}}).Below(30)
	if len(f.failover) == 0 {
		return
	}
	s.rep.Add(&Row{Section: "Scale", Measure: fmt.Sprintf("kill -9 of the leader's host, %d members → a survivor answers naming a new leader (GET /1.0/cluster/members on its local socket)", n),
		Orch: Summarise("s", Seconds(f.failover))}).Below(1)
	if !f.offline {
		return
	}
	late := s.rep.Add(&Row{Section: "Scale", Measure: fmt.Sprintf("killed member listed OFFLINE: seen − (last heartbeat + %v threshold), %d members", defaultThreshold, n),
		Orch: one("s", f.late.Seconds())})
	late.target("within ±1 s", true, f.late >= -time.Second && f.late <= time.Second)
}

// profilePort is where members serve pprof (core.debug_address) when ORCH_BENCH_PROFILE is set.
const profilePort = "6060"

// startProfiles, when ORCH_BENCH_PROFILE names a directory, sets core.debug_address on the
// leader and on a spare and takes a CPU profile of each over the idle window; stop waits
// for them and adds each one's allocation profile. Without the knob it does nothing.
func startProfiles(ctx context.Context, e *orchEnv, leader, spare *lab.Host, window time.Duration) (stop func() error, err error) {
	dir := os.Getenv("ORCH_BENCH_PROFILE")
	if dir == "" {
		return func() error { return nil }, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	who := map[string]*lab.Host{"leader": leader, "spare": spare}
	for _, h := range who {
		if r := e.orch(ctx, "config", "set", "core.debug_address", h.Addr+":"+profilePort, "--limit", h.Name); r.err != nil {
			return nil, r.err
		}
	}
	secs := max(int(window.Seconds())-1, 1)
	errs := make(chan error, len(who))
	for role, h := range who {
		go func() {
			errs <- fetchProfile(ctx, h, fmt.Sprintf("profile?seconds=%d", secs), filepath.Join(dir, role+"-idle-cpu.pprof"))
		}()
	}
	return func() error {
		var first error
		for range who {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		for role, h := range who {
			if err := fetchProfile(ctx, h, "allocs", filepath.Join(dir, role+"-allocs.pprof")); err != nil && first == nil {
				first = err
			}
		}
		return first
	}, nil
}

// profileForming, when ORCH_BENCH_PROFILE is set, has the first host (the bootstrap member)
// serve pprof from its preseed on and takes a CPU profile of it while the others join; done
// is closed when that profile is taken (at once without the knob).
func profileForming(ctx context.Context, e *orchEnv) (done <-chan struct{}, err error) {
	ch := make(chan struct{})
	dir := os.Getenv("ORCH_BENCH_PROFILE")
	if dir == "" {
		close(ch)
		return ch, nil
	}
	first := e.lab.Hosts()[0]
	if err := e.lab.WriteInventory(e.inv, map[string]string{"config": fmt.Sprintf("{'core.debug_address': '%s:%s'}", first.Addr, profilePort)}); err != nil {
		return nil, err
	}
	go func() {
		defer close(ch)
		_, err := waitFor(5*time.Minute, "pprof on "+first.Name, func() error {
			return fetchProfile(ctx, first, "profile?seconds=25", filepath.Join(dir, "leader-forming-cpu.pprof"))
		})
		if err != nil {
			saveOutput("leader-forming-cpu.err", err.Error())
		}
	}()
	return ch, nil
}

// fetchProfile saves /debug/pprof/<what> of host h to file.
func fetchProfile(ctx context.Context, h *lab.Host, what, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+h.Addr+":"+profilePort+"/debug/pprof/"+what, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: pprof %s: %w", h.Name, what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: pprof %s: %s", h.Name, what, resp.Status)
	}
	out, err := os.Create(file)
	if err != nil {
		return err
	}
	defer out.Close()
	_, err = io.Copy(out, resp.Body)
	return err
}
