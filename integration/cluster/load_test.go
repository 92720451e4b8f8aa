package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// counterKey is the key the compare-and-set writers increment; each increment also writes
// the mark casMark(n) = its token in the same PATCH, so every applied increment is visible.
const counterKey = "user.counter"

func casMark(n int) string { return fmt.Sprintf("user.cas.%d", n) }

// load writes distinct user.* keys through every member, and increments counterKey with
// compare-and-set (If-Match), recording what was acknowledged. Its goroutines never touch
// testing.T.
type load struct {
	stopping atomic.Bool // set by stop: writers finish the request in flight, then return
	wg       sync.WaitGroup

	mu       sync.Mutex
	sent     map[string]string // every key a writer sent, with its value
	acked    map[string]string // keys whose PATCH succeeded
	ackedVia map[string]int    // successful writes (keys and increments) per member
	cas      []casOp           // every increment attempt that got an answer or an error
	failures map[string]int    // failed requests per member
	lastErr  map[string]string // last failure per member
}

// casOp is one compare-and-set increment attempt: counter n-1 → n with mark token.
type casOp struct {
	n       int
	token   string
	outcome casOutcome
}

type casOutcome int

const (
	casAcked   casOutcome = iota // 200: applied
	casRefused                   // 412: nothing changed
	casUnknown                   // any other error: applied or not
)

// keyPace is the least time between two writes of one key writer: unpaced writers would
// bump the configuration version so often that no compare-and-set could ever succeed.
const keyPace = 25 * time.Millisecond

// startLoad starts writersPerMember key writers and one compare-and-set writer per member.
func startLoad(ms []*agenttest.Agent, writersPerMember int) *load {
	l := &load{sent: map[string]string{}, acked: map[string]string{},
		ackedVia: map[string]int{}, failures: map[string]int{}, lastErr: map[string]string{}}
	id := 0
	for _, a := range ms {
		for range writersPerMember {
			id++
			l.wg.Add(1)
			go func(a *agenttest.Agent, id int) { defer l.wg.Done(); l.writeKeys(a, id) }(a, id)
		}
		l.wg.Add(1)
		go func(a *agenttest.Agent) { defer l.wg.Done(); l.increment(a) }(a)
	}
	return l
}

// stop ends the writers once their requests in flight are answered (so that no write they
// sent is applied later) and waits for them; it may be called more than once.
func (l *load) stop() {
	l.stopping.Store(true)
	l.wg.Wait()
}

// writeKeys PATCHes user.wID.SEQ keys through a until ctx ends.
func (l *load) writeKeys(a *agenttest.Agent, id int) {
	for seq := 0; !l.stopping.Load(); seq++ {
		next := time.Now().Add(keyPace)
		key, val := fmt.Sprintf("user.w%d.%d", id, seq), fmt.Sprintf("%s/%d", a.Name, seq)
		l.mu.Lock()
		l.sent[key] = val
		l.mu.Unlock()
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := a.Client().PatchConfig(cctx, map[string]string{key: val}, "")
		cancel()
		if err != nil {
			l.failed(a, err)
			continue
		}
		l.mu.Lock()
		l.acked[key] = val
		l.ackedVia[a.Name]++
		l.mu.Unlock()
		time.Sleep(time.Until(next)) // pacing, not waiting for a condition
	}
}

// increment reads counterKey and its ETag through a and writes counter+1 with If-Match.
func (l *load) increment(a *agenttest.Agent) {
	for seq := 0; !l.stopping.Load(); seq++ {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s, etag, err := a.Client().Server(cctx)
		if err != nil {
			cancel()
			l.failed(a, err)
			continue
		}
		n, _ := strconv.Atoi(s.Config[counterKey])
		op := casOp{n: n + 1, token: fmt.Sprintf("%s/%d", a.Name, seq)}
		err = a.Client().PatchConfig(cctx, map[string]string{counterKey: strconv.Itoa(op.n), casMark(op.n): op.token}, etag)
		cancel()
		switch {
		case err == nil:
			op.outcome = casAcked
		case errors.Is(err, api.ErrPrecondition):
			op.outcome = casRefused
		default:
			op.outcome = casUnknown
		}
		l.mu.Lock()
		l.cas = append(l.cas, op)
		if err == nil {
			l.ackedVia[a.Name]++
		}
		l.mu.Unlock()
		if op.outcome == casUnknown {
			l.failed(a, err)
		}
	}
}

// failed records a failed request and pauses briefly so a dead member is not spun on.
func (l *load) failed(a *agenttest.Agent, err error) {
	l.mu.Lock()
	l.failures[a.Name]++
	l.lastErr[a.Name] = err.Error()
	l.mu.Unlock()
	time.Sleep(20 * time.Millisecond) // back-off, not waiting for a condition
}

// ackedCount is the number of acknowledged writes, through via when via is not nil.
func (l *load) ackedCount(via *agenttest.Agent) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if via != nil {
		return l.ackedVia[via.Name]
	}
	n := 0
	for _, c := range l.ackedVia {
		n += c
	}
	return n
}

// waitProgress waits until n more writes are acknowledged (through via, if not nil).
func (l *load) waitProgress(t *testing.T, via *agenttest.Agent, n int, what string) {
	t.Helper()
	start := l.ackedCount(via)
	wait.For(t, 30*time.Second, what, func() error {
		if got := l.ackedCount(via) - start; got < n {
			l.mu.Lock()
			defer l.mu.Unlock()
			return fmt.Errorf("%d of %d acknowledged; failures %v, last errors %v", got, n, l.failures, l.lastErr)
		}
		return nil
	})
}

// TestKillUnderWriteLoad kills one of three members with SIGKILL while writers go through
// every member, restarts it and lets the writers go on; then every acknowledged write must
// be on every member (linearizable reads through each socket, and each replica's own
// SQLite file), every member must hold the same configuration, and the compare-and-set
// counter must equal the number of increments that were applied, none twice.
func TestKillUnderWriteLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 under write load takes ~20s; run without -short")
	}
	for _, target := range []string{"follower", "leader"} {
		t.Run(target, func(t *testing.T) { killUnderLoad(t, target == "leader") })
	}
}

func killUnderLoad(t *testing.T, killLeader bool) {
	ms := agenttest.FormCluster(t, 3)
	agenttest.WaitRoles(t, ms[0], 10*time.Second, "3 voters", agenttest.WantRoleCounts(3, 0, 0))
	baseline := settledReplicas(t, ms, nil).version
	victim := agenttest.LeaderOf(t, ms)
	if !killLeader {
		victim = otherThan(ms, victim)
	}
	ld := startLoad(ms, 2)
	defer ld.stop()
	ld.waitProgress(t, nil, 60, "writes before the kill")
	victim.Kill()
	t.Logf("killed %s (leader: %v) after %d acknowledged writes", victim.Name, killLeader, ld.ackedCount(nil))
	ld.waitProgress(t, nil, 60, "writes while "+victim.Name+" is down")
	victim.Start()
	ld.waitProgress(t, victim, 20, "writes through the restarted "+victim.Name)
	ld.waitProgress(t, nil, 40, "writes after the restart")
	ld.stop()
	t.Logf("acknowledged writes per member %v; failed requests %v", ld.ackedVia, ld.failures)
	agenttest.WaitRoles(t, victim, 15*time.Second, "3 voters after the restart", agenttest.WantRoleCounts(3, 0, 0))
	settledReplicas(t, ms, nil)
	checkLoadResult(t, ms, ld, baseline)
}

// checkLoadResult checks the acknowledged writes and the counter on every member.
func checkLoadResult(t *testing.T, ms []*agenttest.Agent, ld *load, baseline int64) {
	t.Helper()
	var want map[string]string
	for _, a := range ms {
		s, _ := agenttest.Server(t, a)
		got := userKeys(s.Config)
		if want == nil {
			want = got
			continue
		}
		if k := firstDiff(want, got); k != "" {
			t.Errorf("linearizable reads differ: %s=%q on %s, %q on %s", k, want[k], ms[0].Name, got[k], a.Name)
		}
	}
	checkAcked(t, ld, want)
	counter := checkCounter(t, ld, want)
	final := settledReplicas(t, ms, want)
	writes := 0
	for k := range want {
		if strings.HasPrefix(k, "user.w") {
			writes++
		}
	}
	if applied := final.version - baseline; applied != int64(writes+counter) {
		t.Errorf("config_version advanced by %d but %d writes are present (%d keys + %d increments): a write was applied twice or lost",
			applied, writes+counter, writes, counter)
	}
	t.Logf("%d keys (%d acknowledged) and counter %d on every member and replica; config_version %d → %d",
		writes, len(ld.acked), counter, baseline, final.version)
}

// checkAcked checks every acknowledged key is present with its value, and every present
// key was sent with that value.
func checkAcked(t *testing.T, ld *load, cfg map[string]string) {
	t.Helper()
	lost := 0
	for k, v := range ld.acked {
		if cfg[k] != v {
			lost++
			if lost <= 10 {
				t.Errorf("acknowledged write %s=%q is missing (read %q)", k, v, cfg[k])
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged writes lost", lost, len(ld.acked))
	}
	for k, v := range cfg {
		if strings.HasPrefix(k, "user.w") && ld.sent[k] != v {
			t.Errorf("%s=%q was never written (sent %q)", k, v, ld.sent[k])
		}
	}
}

// checkCounter checks the counter against the increments and returns its value.
func checkCounter(t *testing.T, ld *load, cfg map[string]string) int {
	t.Helper()
	counter, _ := strconv.Atoi(cfg[counterKey])
	marks := 0
	for k := range cfg {
		if strings.HasPrefix(k, "user.cas.") {
			marks++
		}
	}
	for i := 1; i <= counter; i++ {
		if cfg[casMark(i)] == "" {
			t.Errorf("counter is %d but increment %d left no mark", counter, i)
		}
	}
	if marks != counter {
		t.Errorf("counter is %d but %d increments left a mark", counter, marks)
	}
	acked, unknown, unknownApplied := 0, 0, 0
	for _, op := range ld.cas {
		applied := cfg[casMark(op.n)] == op.token
		switch op.outcome {
		case casAcked:
			acked++
			if !applied {
				t.Errorf("acknowledged increment to %d (%s) is lost (mark %q)", op.n, op.token, cfg[casMark(op.n)])
			}
		case casRefused:
			if applied {
				t.Errorf("increment to %d (%s) was refused with 412 but applied", op.n, op.token)
			}
		case casUnknown:
			unknown++
			if applied {
				unknownApplied++
			}
		}
	}
	if counter != acked+unknownApplied {
		t.Errorf("counter is %d; want %d acknowledged + %d applied of %d with unknown outcome", counter, acked, unknownApplied, unknown)
	}
	if acked == 0 {
		t.Errorf("no compare-and-set increment succeeded")
	}
	t.Logf("counter %d = %d acknowledged increments + %d applied of %d with unknown outcome (%d attempts)",
		counter, acked, unknownApplied, unknown, len(ld.cas))
	return counter
}

// userKeys returns the user.* keys of a configuration.
func userKeys(cfg map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range cfg {
		if strings.HasPrefix(k, "user.") {
			out[k] = v
		}
	}
	return out
}

// firstDiff names the first key (sorted) whose value differs between a and b, or "".
func firstDiff(a, b map[string]string) string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		va, oka := a[k]
		vb, okb := b[k]
		if oka != okb || va != vb {
			return k
		}
	}
	return ""
}
