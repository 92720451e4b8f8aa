package jepsen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"

	"orch/internal/wait"
	"orch/nodeagent/api"
)

// registers are the keys read, written and compare-and-set by every client; the first is
// the hot key most updates go to, so that concurrent compare-and-sets race on one version.
var registers = []string{"user.r0", "user.r1", "user.r2"}

// hotKeyPercent is the share of register updates that go to registers[0].
const hotKeyPercent = 70

// thinkTime paces each client between operations: with several clients per member it
// keeps a window's history small enough for porcupine to check in seconds.
const thinkTime = 30 * time.Millisecond

// opTimeout bounds one client request; a request that times out is ambiguous.
const opTimeout = 3 * time.Second

// history is a concurrent recorder of porcupine operations and acknowledged unique writes.
type history struct {
	start time.Time

	mu    sync.Mutex
	ops   []porcupine.Operation
	acked map[string]string // unique key → value, for writes acknowledged to a client

	okOps, failOps, unknownOps, droppedOps atomic.Int64
	unknownErrs                            map[string]int // why outcomes were ambiguous
}

// unknownUpdates returns the inputs of this window's ambiguous writes and compare-and-sets.
func (h *history) unknownUpdates() []opInput {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.unknownUpdatesLocked()
}

func (h *history) unknownUpdatesLocked() []opInput {
	var out []opInput
	for _, op := range h.ops {
		if in := op.Input.(opInput); in.Kind != opRead && op.Output.(opOutput).Outcome == outUnknown && op.Metadata == nil {
			out = append(out, in)
		}
	}
	return out
}

// seen returns every key=value a read of this window returned.
func (h *history) seen() map[string]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]bool{}
	for _, op := range h.ops {
		if op.Input.(opInput).Kind == opRead {
			for k, v := range op.Output.(opOutput).Values {
				out[k+"="+v] = true
			}
		}
	}
	return out
}

// noteUnknown counts an ambiguous outcome's error (its first words) for the window's log.
func (h *history) noteUnknown(err error) {
	msg := err.Error()
	if len(msg) > 70 {
		msg = msg[:70]
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unknownErrs[msg]++
}

func newHistory() *history {
	return &history{start: time.Now(), acked: map[string]string{}, unknownErrs: map[string]int{}}
}

func (h *history) now() int64 { return int64(time.Since(h.start)) }

func (h *history) record(client int, in opInput, out opOutput, call, ret int64) {
	switch out.Outcome {
	case outOK:
		h.okOps.Add(1)
	case outFail:
		h.failOps.Add(1)
	case outUnknown:
		h.unknownOps.Add(1)
		ret = math.MaxInt64 // it may take effect at any later time, or never
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret})
	if out.Outcome == outOK && in.Kind == opWrite && !isRegister(in.Key) {
		h.acked[in.Key] = in.Value
	}
}

func isRegister(k string) bool {
	for _, r := range registers {
		if r == k {
			return true
		}
	}
	return false
}

// worker is one client bound to one member.
type worker struct {
	id   int
	tag  string // makes values unique across windows
	cl   *api.Client
	h    *history
	rng  *rand.Rand
	seq  int
	etag string // the ETag of this worker's last successful read
}

// run issues operations until stop is closed; the operation in progress then finishes.
// A compare-and-set follows its read at once, so that the clients of a member (and of the
// others) race on one version; plain writes are rarer than compare-and-sets, so that many
// of those succeed.
func (w *worker) run(stop <-chan struct{}) {
	ctx := context.Background()
	for {
		select {
		case <-stop:
			return
		case <-time.After(thinkTime):
		}
		w.seq++
		p := w.rng.IntN(100)
		switch {
		case p < 30:
			w.read(ctx)
		case p < 70:
			if w.read(ctx) {
				w.cas(ctx, w.register())
			}
		case p < 88:
			w.write(ctx, w.register())
		default:
			w.write(ctx, fmt.Sprintf("user.u.%sc%d.%d", w.tag, w.id, w.seq))
		}
	}
}

// register picks the hot key most of the time.
func (w *worker) register() string {
	if w.rng.IntN(100) < hotKeyPercent {
		return registers[0]
	}
	return registers[1+w.rng.IntN(len(registers)-1)]
}

func (w *worker) value() string { return fmt.Sprintf("%sc%d-%d", w.tag, w.id, w.seq) }

// read reads the configuration and keeps its ETag; it reports whether the read succeeded.
func (w *worker) read(ctx context.Context) bool {
	in := opInput{Kind: opRead}
	call := w.h.now()
	rctx, cancel := context.WithTimeout(ctx, opTimeout)
	s, etag, err := w.cl.Server(rctx)
	cancel()
	ret := w.h.now()
	if err == nil {
		err = consistent(s, etag)
	}
	if err != nil {
		w.h.droppedOps.Add(1) // a failed read has no effect: nothing to check
		sleepCtx(ctx, 100*time.Millisecond)
		return false
	}
	w.etag = etag
	w.h.record(w.id, in, opOutput{Outcome: outOK, Values: registerValues(s.Config), ETag: etag}, call, ret)
	return true
}

// consistent refuses GET /1.0's degraded answer: without quorum a member answers with its
// own settings only (api_status "degraded", no ETag), which is not a read of the
// configuration.
func consistent(s *api.Server, etag string) error {
	if s.APIStatus != "stable" || etag == "" {
		return fmt.Errorf("degraded answer (api_status %q, etag %q): %s", s.APIStatus, etag, s.Environment.Message)
	}
	return nil
}

func registerValues(cfg map[string]string) map[string]string {
	out := make(map[string]string, len(registers))
	for _, k := range registers {
		out[k] = cfg[k]
	}
	return out
}

func (w *worker) write(ctx context.Context, key string) {
	w.update(ctx, opInput{Kind: opWrite, Key: key, Value: w.value()})
}

func (w *worker) cas(ctx context.Context, key string) {
	w.update(ctx, opInput{Kind: opCAS, Key: key, Value: w.value(), ETag: w.etag})
	w.etag = "" // read again before the next CAS
}

func (w *worker) update(ctx context.Context, in opInput) {
	call := w.h.now()
	rctx, cancel := context.WithTimeout(ctx, opTimeout)
	err := w.cl.PatchConfig(rctx, map[string]string{in.Key: in.Value}, in.ETag)
	cancel()
	ret := w.h.now()
	out := classify(in, err)
	if out == outUnknown {
		w.h.noteUnknown(err)
	}
	if out == 0 {
		w.h.droppedOps.Add(1)
		sleepCtx(ctx, 100*time.Millisecond) // the member is down: pace the retries
		return
	}
	w.h.record(w.id, in, opOutput{Outcome: out}, call, ret)
}

// classify maps a write's error to its outcome: 0 means it certainly had no effect and is
// left out of the history: the request never left (dial error), or the daemon answered 503
// without saying the outcome is unknown — its contract is that a 503 means "not applied"
// (not the leader, no leader reachable) unless the message says "may or may not have been
// applied". A 403 is refused at the door too: the member checks the client certificate
// before it handles anything (a member restarted a moment ago can refuse it until its
// replica is open), and requests between members carry the cluster certificate. If the
// daemon broke that contract, the write's value would be read although the history lacks
// it, and porcupine would report the violation.
func classify(in opInput, err error) outcome {
	var ae *api.Error
	var op *net.OpError
	switch {
	case err == nil:
		return outOK
	case in.Kind == opCAS && errors.As(err, &ae) && ae.Code == http.StatusPreconditionFailed:
		return outFail
	case errors.As(err, &op) && op.Op == "dial":
		return 0
	case errors.As(err, &ae) && ae.Code == http.StatusServiceUnavailable && !strings.Contains(ae.Message, "may or may not"):
		return 0
	case errors.As(err, &ae) && ae.Code == http.StatusForbidden:
		return 0
	}
	return outUnknown
}

// finalReads reads the registers through every member (linearizable reads, added to the
// history), then waits until every member's own replica holds the same configuration
// version and compares them: replicas that differ at one version diverged, and every
// acknowledged unique write (acked, from every window so far) must be in every replica.
// It returns how many acknowledged writes are missing somewhere, a description of the
// first few problems, and the converged configuration.
func finalReads(c *cluster, h *history, acked map[string]string) (lost int, details []string, converged replica) {
	for i, m := range c.members {
		cl := c.client(m)
		wait.For(c.t, 30*time.Second, "a final read through "+m.name, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			defer cancel()
			call := h.now()
			s, etag, err := cl.Server(ctx)
			if err == nil {
				err = consistent(s, etag)
			}
			if err == nil {
				h.record(1000+i, opInput{Kind: opRead}, opOutput{Outcome: outOK, Values: registerValues(s.Config), ETag: etag}, call, h.now())
			}
			return err
		})
		cl.Close()
	}
	replicas, diverged := c.converge(time.Minute)
	details = append(details, diverged...)
	missing := map[string]bool{}
	for _, m := range c.members {
		for k, v := range acked {
			if got := replicas[m.name].config[k]; got != v && !missing[k] {
				missing[k] = true
				if len(details) < 5 {
					details = append(details, fmt.Sprintf("%s's own replica: %s=%q, acknowledged %q", m.name, k, got, v))
				}
			}
		}
	}
	return len(missing), details, replicas[c.members[0].name]
}

// initialState reads the configuration and its version before a window, through the first
// member (a linearizable read).
func initialState(c *cluster) (config map[string]string, version int64) {
	cl := c.client(c.members[0])
	defer cl.Close()
	wait.For(c.t, 30*time.Second, "the initial read", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		s, etag, err := cl.Server(ctx)
		if err == nil {
			err = consistent(s, etag)
		}
		if err == nil {
			config = s.Config
			version, err = etagVersion(etag)
		}
		return err
	})
	return config, version
}

// describeHistory counts a history's operations by kind and outcome.
func describeHistory(ops []porcupine.Operation) string {
	n := map[string]int{}
	for _, op := range ops {
		if op.Metadata != nil {
			n["carried"]++
			continue
		}
		in, out := op.Input.(opInput), op.Output.(opOutput)
		k := map[opKind]string{opRead: "read", opWrite: "write", opCAS: "cas"}[in.Kind]
		o := map[outcome]string{outOK: "ok", outFail: "fail", outUnknown: "unknown"}[out.Outcome]
		n[k+"/"+o]++
	}
	var parts []string
	for _, k := range []string{"read/ok", "write/ok", "write/unknown", "cas/ok", "cas/fail", "cas/unknown", "carried"} {
		parts = append(parts, fmt.Sprintf("%s %d", k, n[k]))
	}
	return strings.Join(parts, ", ")
}
