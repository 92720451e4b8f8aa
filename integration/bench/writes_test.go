package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/store"
)

// storeCluster is three in-process stores on loopback TCP: the raft + SQLite code the
// daemon runs, with the production timings and fsync on.
type storeCluster struct{ nodes []*store.Store }

func newStoreCluster(b testing.TB) *storeCluster {
	b.Helper()
	c := &storeCluster{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 3 {
		stream, err := store.NewTCPLayer("127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		s, err := store.Open(store.Config{Dir: filepath.Join(b.TempDir(), "s"), ID: fmt.Sprintf("s%d", i),
			Address: stream.Addr().String(), Stream: stream, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		c.nodes = append(c.nodes, s)
		if i == 0 {
			err = s.Bootstrap(ctx)
		} else {
			err = c.nodes[0].AddVoter(ctx, fmt.Sprintf("s%d", i), stream.Addr().String())
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	return c
}

// exec applies one request on the leader (node 0, the bootstrapper).
func (c *storeCluster) exec(ctx context.Context, req store.Request) error {
	_, err := c.nodes[0].Exec(ctx, req)
	return err
}

// read queries one row: linearizably on the leader (read index, then wait until applied)
// or locally on a follower's replica.
func (c *storeCluster) read(ctx context.Context, linearizable bool, id int) error {
	s := c.nodes[1]
	if linearizable {
		s = c.nodes[0]
		idx, err := s.ReadIndex(ctx)
		if err != nil {
			return err
		}
		if err := s.WaitApplied(ctx, idx); err != nil {
			return err
		}
	}
	var payload string
	return s.DB().QueryRowContext(ctx, "SELECT payload FROM bench WHERE id = ?", id).Scan(&payload)
}

// writes measures replicated writes and reads through the store (1 and 16 clients, batched);
// the "api" section measures them through real daemons.
func (s *suite) writes(b *testing.B) {
	s.storeLoads(b)
}

func (s *suite) storeLoads(b *testing.B) {
	ctx := context.Background()
	c := newStoreCluster(b)
	if err := c.exec(ctx, store.Request{{SQL: "CREATE TABLE bench (id INTEGER PRIMARY KEY, client INTEGER, payload TEXT)"}}); err != nil {
		b.Fatal(err)
	}
	insert := store.Statement{SQL: "INSERT INTO bench (client, payload) VALUES (?, ?)", Args: []any{0, "0123456789abcdef0123456789abcdef"}}
	batch := make(store.Request, 10)
	for i := range batch {
		batch[i] = insert
	}
	shapes := []struct {
		measure        string
		clients, total int
		req            store.Request
		target         float64
	}{
		{"store writes, 1 client, one INSERT each (3 voters, fsync on)", 1, 1500, store.Request{insert}, 0},
		{"store writes, 16 clients, one INSERT each", 16, 16000, store.Request{insert}, 5000},
		{"store writes, 16 clients, batches of 10 INSERTs", 16, 3000, batch, 0},
	}
	bare := s.bareRaftRates(b)
	for _, sh := range shapes {
		var f loadFigures
		for range s.k.runs {
			r, err := load(sh.clients, sh.total, func(int) error { return c.exec(ctx, sh.req) })
			if err != nil {
				b.Fatalf("%s: %v", sh.measure, err)
			}
			f.add(r)
		}
		row := f.row("Writes", sh.measure, "writes/s")
		if len(sh.req) > 1 {
			row.Orch.Unit = "requests/s"
			row.OrchNote += fmt.Sprintf("; %s statements/s", num(row.Orch.Median*float64(len(sh.req))))
		}
		if len(sh.req) == 1 {
			row.Peers = []Peer{{Name: "bare hashicorp/raft (raft-wal, no-op FSM)", Stat: Summarise("writes/s", bare[sh.clients].rate),
				Note: "p50 " + num(Summarise("", bare[sh.clients].p50).Median) + " ms, p99 " + num(Summarise("", bare[sh.clients].p99).Median) + " ms"}}
		}
		s.rep.Add(row)
		if sh.target > 0 {
			row.Above(sh.target)
		}
	}
	for _, rd := range []struct {
		measure string
		lin     bool
	}{{"store reads, linearizable (leader, read index), 1 client", true}, {"store reads, local replica (follower), 1 client", false}} {
		var f loadFigures
		for range s.k.runs {
			r, err := load(1, 3000, func(int) error { return c.read(ctx, rd.lin, 1+int(time.Now().UnixNano()%1000)) })
			if err != nil {
				b.Fatalf("%s: %v", rd.measure, err)
			}
			f.add(r)
		}
		s.rep.Add(f.row("Reads", rd.measure, "reads/s"))
	}
}

// bareRaftRates measures bare raft with 1 and 16 clients, one Apply per write.
func (s *suite) bareRaftRates(b *testing.B) map[int]*loadFigures {
	br := newBareRaft(b)
	out := map[int]*loadFigures{1: {}, 16: {}}
	data := make([]byte, 64)
	for _, clients := range []int{1, 16} {
		for range s.k.runs {
			l, err := br.leader()
			if err != nil {
				b.Fatal(err)
			}
			r, err := load(clients, 1000*clients/max(1, clients/4), func(int) error { return l.Apply(data, 10*time.Second).Error() })
			if err != nil {
				b.Fatalf("bare raft: %v", err)
			}
			out[clients].add(r)
		}
	}
	return out
}

// apiReadsWrites is the "api" section: a 3-member cluster of daemons driven through their
// unix sockets (HTTP, JSON, the daemon's handlers and its database access on top of the
// store), for config PATCH /1.0 on the leader and GET /1.0 (a linearizable config read) on
// the leader and on a follower.
func (s *suite) apiReadsWrites(b *testing.B) {
	ns := newNetns(b)
	o := orchDaemons{newProcs(b, ns, "orch-bench-api-", 3)}
	for i := range 3 {
		if err := o.start(i); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := form3(o); err != nil {
		b.Fatal(err)
	}
	li, err := leaderIndex(o)
	if err != nil {
		b.Fatal(err)
	}
	leader := api.NewUnixClient(filepath.Join(o.dir(li), "unix.socket"))
	follower := api.NewUnixClient(filepath.Join(o.dir((li+1)%3), "unix.socket"))
	defer leader.Close()
	defer follower.Close()
	prof, err := newAPIProfiles(context.Background(), o, li)
	if err != nil {
		b.Fatal(err)
	}
	s.apiWrites(b, o, leader, li, prof)
	if os.Getenv("ORCH_BENCH_API_WRITES_ONLY") != "" {
		return
	}
	s.apiReads(b, o, leader, follower, prof)
}

// usage is a daemon's CPU time (its threads' on-CPU time, seconds) and its threads'
// context switches so far.
type usage struct{ cpu, switches float64 }

func (u usage) since(u0 usage) usage { return usage{u.cpu - u0.cpu, u.switches - u0.switches} }

// memberUsage reads each member's usage: the daemons' CPU per write split between the
// leader and the followers, and how often their threads were switched out (each switch
// costs CPU of its own on this VM, more than much of the work handed between goroutines).
func memberUsage(o orchDaemons) []usage {
	out := make([]usage, len(o.procs.procs))
	for i := range out {
		out[i].cpu = readCPU(o.pid(i)).threads
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", o.pid(i)))
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue
			}
			for line := range strings.SplitSeq(string(b), "\n") {
				if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "voluntary_ctxt_switches") {
					n, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
					out[i].switches += n
				}
			}
		}
	}
	return out
}

// daemonsCPU is the CPU time the members' daemons used so far, in seconds.
func daemonsCPU(o orchDaemons) float64 {
	var sum float64
	for i := range o.procs.procs {
		sum += cpuSeconds(o.pid(i))
	}
	return sum
}

// selfCPU is the CPU time this process (the bench client) used so far, in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// cpuLoad runs load and adds the daemons' CPU time per operation to f's cpu figures, and
// the bench client's (this process) to its client figures: on this shared machine,
// throughput moves with the other load while the work each request costs does not.
func cpuLoad(o orchDaemons, f *loadFigures, clients, total int, op func(client int) error) error {
	cpu0, self0 := daemonsCPU(o), selfCPU()
	r, err := load(clients, total, op)
	if err != nil {
		return err
	}
	f.add(r)
	f.cpu = append(f.cpu, (daemonsCPU(o)-cpu0)*1e6/float64(total))
	f.clientCPU = append(f.clientCPU, (selfCPU()-self0)*1e6/float64(total))
	return nil
}

// apiTargets are issue 19's: API writes at 16 clients, GET /1.0 on a follower at 16 clients.
const (
	apiWritesTarget    = 8000
	followerReadTarget = 5000
)

func (s *suite) apiWrites(b *testing.B, o orchDaemons, leader *api.Client, li int, prof *apiProfiles) {
	ctx := context.Background()
	for _, clients := range []int{1, 16} {
		var f loadFigures
		patch := func(c int) error {
			return leader.PatchConfig(ctx, map[string]string{fmt.Sprintf("user.bench%d", c): time.Now().String()}, "")
		}
		var perEntry, leaderCPU, followerCPU, switches []float64
		for range s.k.runs {
			idx0, err := appliedIndex(ctx, leader)
			if err != nil {
				b.Fatal(err)
			}
			m0 := memberUsage(o)
			if err := cpuLoad(o, &f, clients, 300*clients, patch); err != nil {
				b.Fatalf("PATCH /1.0: %v", err)
			}
			idx1, err := appliedIndex(ctx, leader)
			if err != nil {
				b.Fatal(err)
			}
			perEntry = append(perEntry, float64(300*clients)/float64(max(1, idx1-idx0)))
			m1, ops := memberUsage(o), float64(300*clients)
			var fcpu, sw float64
			for i := range m1 {
				d := m1[i].since(m0[i])
				sw += d.switches / ops
				if i == li {
					leaderCPU = append(leaderCPU, d.cpu*1e6/ops)
				} else {
					fcpu += d.cpu * 1e6 / ops / float64(len(m1)-1)
				}
			}
			followerCPU, switches = append(followerCPU, fcpu), append(switches, sw)
		}
		if err := prof.take(fmt.Sprintf("patch-%d", clients), clients, patch); err != nil {
			b.Errorf("profiling PATCH /1.0: %v", err)
		}
		row := s.rep.Add(f.row("Writes", fmt.Sprintf("API config PATCH /1.0 on the leader, %d client(s)", clients), "writes/s"))
		row.OrchNote += ", " + num(Summarise("", perEntry).Median) + " writes per raft entry; leader " +
			num(Summarise("", leaderCPU).Median) + " µs, each follower " + num(Summarise("", followerCPU).Median) + " µs, " +
			num(Summarise("", switches).Median) + " context switches per write"
		if clients == 16 {
			row.Above(apiWritesTarget)
		}
	}
}

func (s *suite) apiReads(b *testing.B, o orchDaemons, leader, follower *api.Client, prof *apiProfiles) {
	ctx := context.Background()
	for _, rd := range []struct {
		who     string
		cl      *api.Client
		clients int
		target  float64
	}{
		{"leader", leader, 1, 0},
		{"follower (read index from the leader, read on the follower)", follower, 1, 0},
		{"leader", leader, 16, 0},
		{"follower (read index from the leader, read on the follower)", follower, 16, followerReadTarget},
	} {
		var f loadFigures
		get := func(int) error { _, _, err := rd.cl.Server(ctx); return err }
		for range s.k.runs {
			if err := cpuLoad(o, &f, rd.clients, 500*rd.clients, get); err != nil {
				b.Fatalf("GET /1.0 on the %s: %v", rd.who, err)
			}
		}
		if err := prof.take(fmt.Sprintf("get-%s-%d", strings.Fields(rd.who)[0], rd.clients), rd.clients, get); err != nil {
			b.Errorf("profiling GET /1.0 on the %s: %v", rd.who, err)
		}
		row := s.rep.Add(f.row("Reads", fmt.Sprintf("API GET /1.0 (linearizable config read) on the %s, %d client(s)", rd.who, rd.clients), "reads/s"))
		if rd.target > 0 {
			row.Above(rd.target)
		}
	}
}

// appliedIndex is the raft index a member's replica has applied (its
// orch_raft_applied_index metric): the entries a load used are the difference.
func appliedIndex(ctx context.Context, c *api.Client) (uint64, error) {
	resp, err := c.Raw(ctx, "GET", "/1.0/metrics", nil, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "orch_raft_applied_index "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64) // OpenMetrics' 'g' format
			return uint64(f), err
		}
	}
	return 0, fmt.Errorf("GET /1.0/metrics: no orch_raft_applied_index in %d bytes", len(body))
}

// leaderIndex is the member that holds database-leader.
func leaderIndex(d daemons) (int, error) {
	ms, err := listVia(d, 0, 10*time.Second)
	if err != nil {
		return 0, err
	}
	for i := range 3 {
		if m, ok := find(ms, name(i)); ok && m.leader() {
			return i, nil
		}
	}
	return 0, fmt.Errorf("no leader in %+v", ms)
}
