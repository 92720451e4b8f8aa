package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/store"
)

// Rows is a query result: one []any per row, values int64, float64, string or nil.
type Rows = db.Rows

// str and i64 read a column value of Rows.
func str(v any) string { return db.Str(v) }

func i64(v any) int64 { return db.I64(v) }

// execRequest and queryRequest are the bodies of the internal database endpoints.
type execRequest struct {
	Request store.Request `json:"request"`
}

type queryRequest struct {
	SQL  string `json:"sql"`
	Args []any  `json:"args,omitempty"`
}

// UnmarshalJSON keeps integer arguments exact.
func (q *queryRequest) UnmarshalJSON(b []byte) error {
	var st store.Statement
	if err := json.Unmarshal(b, &st); err != nil {
		return err
	}
	q.SQL, q.Args = st.SQL, st.Args
	return nil
}

// exec applies one atomic request through raft, forwarding it to the leader when this
// member is not the leader.
func (d *Daemon) exec(ctx context.Context, stmts ...store.Statement) ([]store.Result, error) {
	st := d.store()
	if st == nil {
		return nil, ErrNotInitialised
	}
	res, err := st.Exec(ctx, store.Request(stmts))
	if !errors.Is(err, store.ErrNotLeader) {
		return res, err
	}
	var out []store.Result
	err = d.toLeader(ctx, "/internal/db/exec", execRequest{Request: stmts}, &out)
	return out, err
}

// query runs a linearizable read: on the leader after confirming leadership, otherwise on
// the leader through the internal API.
func (d *Daemon) query(ctx context.Context, sql string, args ...any) (Rows, error) {
	st := d.store()
	if st == nil {
		return nil, ErrNotInitialised
	}
	idx, err := st.ReadIndex(ctx)
	if errors.Is(err, store.ErrNotLeader) {
		var rows Rows
		err = d.toLeader(ctx, "/internal/db/query", queryRequest{SQL: sql, Args: args}, &rows)
		return normaliseRows(rows), err
	}
	if err != nil {
		return nil, err
	}
	if err := st.WaitApplied(ctx, idx); err != nil {
		return nil, err
	}
	return d.queryLocal(ctx, sql, args...)
}

// queryLocal reads this member's replica without any consistency check.
func (d *Daemon) queryLocal(ctx context.Context, sql string, args ...any) (Rows, error) {
	st := d.store()
	if st == nil {
		return nil, ErrNotInitialised
	}
	rows, err := st.DB().QueryContext(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return db.Scan(rows)
}

// normaliseRows turns JSON numbers back into int64/float64.
func normaliseRows(rows Rows) Rows {
	for _, r := range rows {
		for i, v := range r {
			if n, ok := v.(json.Number); ok {
				if x, err := n.Int64(); err == nil {
					r[i] = x
				} else if f, err := n.Float64(); err == nil {
					r[i] = f
				}
			}
		}
	}
	return rows
}

const hopsHeader = "X-Orch-Hops"
const maxHops = 3

// queryPath is the internal read endpoint: a read may be retried on any member.
const queryPath = "/internal/db/query"

func (d *Daemon) postExec(w http.ResponseWriter, r *http.Request) error {
	var req execRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	st := d.store()
	if st == nil {
		return ErrNotInitialised
	}
	res, err := st.Exec(r.Context(), req.Request)
	if errors.Is(err, store.ErrNotLeader) {
		if res, err = nil, d.forwardOnce(r, "/internal/db/exec", req, &res); err != nil {
			return err
		}
	}
	if err != nil {
		return err
	}
	return writeOK(w, res, "")
}

func (d *Daemon) postQuery(w http.ResponseWriter, r *http.Request) error {
	var req queryRequest
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&req); err != nil {
		return badRequest("request body: %v", err)
	}
	st := d.store()
	if st == nil {
		return ErrNotInitialised
	}
	idx, err := st.ReadIndex(r.Context())
	if errors.Is(err, store.ErrNotLeader) {
		var rows Rows
		if err := d.forwardOnce(r, queryPath, req, &rows); err != nil {
			return err
		}
		return writeOK(w, rows, "")
	}
	if err != nil {
		return err
	}
	if err := st.WaitApplied(r.Context(), idx); err != nil {
		return err
	}
	rows, err := d.queryLocal(r.Context(), req.SQL, req.Args...)
	if err != nil {
		return badRequest("%v", err)
	}
	return writeOK(w, rows, "")
}

// forwardOnce re-sends an internal request to the leader, counting hops so that a
// confused view of leadership cannot loop.
func (d *Daemon) forwardOnce(r *http.Request, path string, body, out any) error {
	hops, _ := strconv.Atoi(r.Header.Get(hopsHeader))
	if hops >= maxHops {
		return notApplied(unavailable("no leader reachable (forwarded %d times)", hops))
	}
	return d.toLeaderHops(r.Context(), path, body, out, hops+1)
}

func (d *Daemon) toLeader(ctx context.Context, path string, body, out any) error {
	return d.toLeaderHops(ctx, path, body, out, 1)
}

// toLeaderHops posts body to the leader (or, when the leader is unknown, to a database
// member, which forwards it).
func (d *Daemon) toLeaderHops(ctx context.Context, path string, body, out any, hops int) error {
	if c := d.cutOffState(); c != nil {
		return notApplied(unavailable("%s: %s", d.memberName(), c.Error()))
	}
	addrs := d.leaderCandidates()
	if len(addrs) == 0 {
		return d.noLeader(addrs, notApplied(unavailable("no database leader known")))
	}
	err := d.postFirst(ctx, addrs, path, body, out, hops)
	if err != nil && knownNotApplied(err) {
		return d.noLeader(addrs, err)
	}
	return err
}

// noLeader explains a request that found no leader: when this member knows of none
// either, quorum is lost (or an election is under way), and the error says what to do
// rather than blaming the dead member it last tried.
func (d *Daemon) noLeader(tried []string, last error) error {
	if st := d.store(); st == nil || d.cutOffState() != nil {
		return last
	} else if id, _ := st.Leader(); id != "" {
		return last
	}
	return notApplied(unavailable("%s: no database leader: quorum is lost, or an election is under way (the other database members %s did not answer: %v). "+
		"See `nodeagent cluster list-database`; if the lost members are gone for good, stop this daemon and run `nodeagent cluster recover-from-quorum-loss`, or run `orch recover` from the control machine",
		d.memberName(), strings.Join(tried, ", "), last))
}

// postFirst posts body to the first of addrs that takes it. A write moves on to the next
// address only when it certainly was not applied: the connection could not be made, or
// the member answered with an error marked not applied (notAppliedHeader). Any other
// failure ends the search, because the next member could apply the write a second time:
// an error answer is returned as is, a connection lost after sending becomes a 503 saying
// the outcome is unknown. A read (queryPath) moves on after any 503 or transport error.
func (d *Daemon) postFirst(ctx context.Context, addrs []string, path string, body, out any, hops int) error {
	var lastErr error
	for _, addr := range addrs {
		err := d.peers.post(ctx, addr, path, body, out, hops)
		var ae *api.Error
		isAPI := errors.As(err, &ae)
		switch {
		case err == nil:
			return nil
		case notSent(err):
			lastErr = notApplied(unavailable("forwarding to %s: %v", addr, err))
		case knownNotApplied(err):
			lastErr = err
		case path == queryPath && (!isAPI || ae.Code == http.StatusServiceUnavailable):
			lastErr = err
		case isAPI:
			return mapRemoteError(err)
		default:
			return unavailable("forwarding to %s: %v (the request may or may not have been applied)", addr, err)
		}
	}
	return mapRemoteError(lastErr)
}

// notSent reports whether a forwarding error happened before the request could reach the
// other member (connection refused, unreachable, TLS handshake), so that trying another
// member cannot apply it twice.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// mapRemoteError turns a forwarded conflict back into store.ErrConflict.
func mapRemoteError(err error) error {
	var ae *api.Error
	if errors.As(err, &ae) && ae.Code == http.StatusPreconditionFailed {
		return fmt.Errorf("%w: %s", store.ErrConflict, ae.Message)
	}
	return err
}

// leaderCandidates lists where to send leader-only work: the raft leader if known, then
// the last leader announced by a heartbeat, then the database members recorded locally.
func (d *Daemon) leaderCandidates() []string {
	var out []string
	seen := map[string]bool{d.clusterAddress(): true}
	add := func(a string) {
		if a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	if st := d.store(); st != nil {
		_, a := st.Leader()
		add(a)
	}
	add(d.health.leaderHint())
	nodes, _ := d.local.RaftNodes()
	for _, n := range nodes {
		add(n.Address)
	}
	return out
}

// peerPool caches one HTTPS client per member address, using the cluster certificate.
type peerPool struct {
	d       *Daemon
	mu      sync.Mutex
	fp      string
	clients map[string]*api.Client
}

func newPeerPool(d *Daemon) *peerPool { return &peerPool{d: d, clients: map[string]*api.Client{}} }

func (p *peerPool) client(addr string) (*api.Client, error) {
	cid := p.d.cluster.Load()
	if cid == nil {
		return nil, ErrNotInitialised
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fp != cid.fingerprint {
		for _, c := range p.clients {
			c.Close()
		}
		p.clients, p.fp = map[string]*api.Client{}, cid.fingerprint
	}
	c := p.clients[addr]
	if c == nil {
		c = api.NewTLSClient(addr, p.d.peerTLS(cid))
		c.WrapTransport(func(next http.RoundTripper) http.RoundTripper { return p.d.fence.Transport(next) })
		p.clients[addr] = c
	}
	return c, nil
}

// post sends body to addr's internal endpoint path and decodes the answer into out. An
// error answer carrying notAppliedHeader comes back wrapped by notApplied.
func (p *peerPool) post(ctx context.Context, addr, path string, body, out any, hops int) error {
	c, err := p.client(addr)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	hdr := http.Header{hopsHeader: {strconv.Itoa(hops)}, "Content-Type": {"application/json"},
		clockHeader: {strconv.FormatInt(p.d.now().UnixMilli(), 10)}}
	resp, err := c.Raw(ctx, http.MethodPost, path, bytes.NewReader(raw), hdr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	err = decodeAnswer(resp, out)
	if err != nil && resp.Header.Get(notAppliedHeader) != "" {
		return notApplied(err)
	}
	return err
}

func (p *peerPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.clients {
		c.Close()
	}
	p.clients = map[string]*api.Client{}
}

// storeStmt builds one statement.
func storeStmt(sql string, args ...any) store.Statement { return db.Stmt(sql, args...) }
