package serve

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
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/store"
)

// ExecRequest is the body of the internal write endpoint.
type ExecRequest struct {
	Request store.Request `json:"request"`
}

// Exec applies one atomic request through raft, forwarding it to the leader when this
// member is not the leader.
func (s *Server) Exec(ctx context.Context, stmts ...store.Statement) ([]store.Result, error) {
	st := s.Members.Store()
	if st == nil {
		return nil, s.Members.NoStore()
	}
	res, err := st.Exec(ctx, store.Request(stmts))
	if !errors.Is(err, store.ErrNotLeader) {
		return res, err
	}
	var out []store.Result
	err = s.toLeaderWaiting(ctx, "/internal/db/exec", ExecRequest{Request: stmts}, nil, &out)
	if errors.Is(err, errBecameLeader) {
		return st.Exec(ctx, store.Request(stmts))
	}
	return out, err
}

// errBecameLeader is toLeaderWaiting's answer when this member became the leader while it
// waited (nothing was applied elsewhere): the caller does the work itself.
var errBecameLeader = errors.New("this member became the database leader")

// electionWait bounds how long a database request from this member waits out a leader
// election (no leader known, or the one it knew stepped down): elections take well under
// a second here, and a client should not see them, as LXD's database layer retries too.
const electionWait = 2 * time.Second

// toLeaderWaiting is toLeaderHops for this member's own database requests (writes,
// forwarded reads, read indexes): an answer that certainly changed nothing and says the
// database is unavailable is asked again, with a growing pause, until electionWait has
// passed, ctx ends, or this member is cut off.
func (s *Server) toLeaderWaiting(ctx context.Context, path string, body any, extra http.Header, out any) error {
	w := s.electionWaiter(ctx)
	for {
		if s.leads() {
			return errBecameLeader // this member won the election it was waiting out
		}
		err := s.toLeaderHops(ctx, path, body, extra, out, 1)
		if !w.again(err) {
			return err
		}
	}
}

// leads reports whether this member is the database leader now.
func (s *Server) leads() bool {
	st := s.Members.Store()
	return st != nil && st.IsLeader()
}

// electionWaiter paces a request from this member that waits out a leader election
// (toLeaderWaiting, proxyOrRun).
type electionWaiter struct {
	s        *Server
	ctx      context.Context
	deadline time.Time
	pause    time.Duration
}

func (s *Server) electionWaiter(ctx context.Context) *electionWaiter {
	return &electionWaiter{s: s, ctx: ctx, deadline: time.Now().Add(electionWait), pause: 20 * time.Millisecond}
}

// again reports whether to ask again after err, having paused: only an answer that
// certainly changed nothing and says the database is unavailable, until electionWait has
// passed, ctx ends, or this member is cut off. The pause doubles up to 250 ms.
func (w *electionWaiter) again(err error) bool {
	if err == nil || !KnownNotApplied(err) || !unavailable(err) || w.s.Members.CutOff() != nil || time.Now().Add(w.pause).After(w.deadline) {
		return false
	}
	t := time.NewTimer(w.pause)
	defer t.Stop()
	w.pause = min(2*w.pause, 250*time.Millisecond)
	select {
	case <-w.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// unavailable reports a 503 answer (no leader, an election, no database yet).
func unavailable(err error) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Code == http.StatusServiceUnavailable
}

// QueryLocal reads this member's replica without any consistency check.
func (s *Server) QueryLocal(ctx context.Context, sql string, args ...any) (db.Rows, error) {
	st := s.Members.Store()
	if st == nil {
		return nil, s.Members.NoStore()
	}
	rows, err := st.DB().QueryContext(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return db.Scan(rows)
}

// normaliseRows turns JSON numbers back into int64/float64.
func normaliseRows(rows db.Rows) db.Rows {
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

func (s *Server) postExec(w http.ResponseWriter, r *http.Request) error {
	var req ExecRequest
	if err := rest.DecodeBody(r, &req); err != nil {
		return err
	}
	st := s.Members.Store()
	if st == nil {
		return s.Members.NoStore()
	}
	res, err := st.Exec(r.Context(), req.Request)
	if errors.Is(err, store.ErrNotLeader) {
		if res, err = nil, s.forwardOnce(r, "/internal/db/exec", req, &res); err != nil {
			return err
		}
	}
	if err != nil {
		return err
	}
	return rest.WriteOK(w, res, "")
}

// forwardOnce re-sends an internal request to the leader, counting hops so that a
// confused view of leadership cannot loop.
func (s *Server) forwardOnce(r *http.Request, path string, body, out any) error {
	hops, _ := strconv.Atoi(r.Header.Get(hopsHeader))
	if hops >= maxHops {
		return rest.NotApplied(rest.Unavailable("no leader reachable (forwarded %d times)", hops))
	}
	return s.toLeaderHops(r.Context(), path, body, nil, out, hops+1)
}

// ToLeader posts body to the leader's internal endpoint path and decodes the answer into out.
func (s *Server) ToLeader(ctx context.Context, path string, body, out any) error {
	return s.toLeaderHops(ctx, path, body, nil, out, 1)
}

// toLeaderHops posts body, with the extra request headers, to the leader (or, when the
// leader is unknown, to a database member, which forwards it without them).
func (s *Server) toLeaderHops(ctx context.Context, path string, body any, extra http.Header, out any, hops int) error {
	if c := s.Members.CutOff(); c != nil {
		return rest.NotApplied(rest.Unavailable("%s: %s", s.Members.Name(), c.Error()))
	}
	addrs := s.leaderCandidates()
	if len(addrs) == 0 {
		return s.noLeader(addrs, rest.NotApplied(rest.Unavailable("no database leader known")))
	}
	actx, done := s.untilLeaderMoves(ctx, isRead(path))
	defer done()
	err := s.postFirst(actx, addrs, path, body, extra, out, hops)
	if moved := s.movedAnswer(ctx, actx, err, isRead(path), strings.Join(addrs, ", ")); moved != nil {
		return moved
	}
	if err != nil && KnownNotApplied(err) {
		return s.noLeader(addrs, err)
	}
	return err
}

// movedAnswer is the answer to a request to the leader at addrs that failed because the
// leader this member knows changed meanwhile (untilLeaderMoves ended actx, not the
// caller's ctx), nil otherwise: a read is asked again of the next leader (not applied); a
// write's outcome is unknown.
func (s *Server) movedAnswer(ctx, actx context.Context, err error, read bool, addrs string) error {
	if err == nil || ctx.Err() != nil || !errors.Is(context.Cause(actx), errLeaderMoved) {
		return nil
	}
	if read {
		return rest.NotApplied(rest.Unavailable("%s: the database leader changed while %s answered: ask the next one", s.Members.Name(), addrs))
	}
	return rest.Unavailable("%s: the database leader changed and %s did not answer within %v (the request may or may not have been applied)",
		s.Members.Name(), addrs, movedWriteGrace)
}

// errLeaderMoved ends a request to the leader once this member knows of another one.
var errLeaderMoved = errors.New("the database leader changed")

// movedWriteGrace is how long a write forwarded to a leader may still take once this
// member knows of a change of leader: a leader that lost its office answers by then (it
// steps down within its lease); one that does not is frozen or cut off, and the write's
// outcome is unknown.
const movedWriteGrace = 2 * time.Second

// untilLeaderMoves returns ctx, ended as well (cause errLeaderMoved) when the leader this
// member knows changes while the request waits: a read (or a safe method) at once (it is asked again of the
// next leader: a frozen or cut-off leader never answers), a write movedWriteGrace later.
// done releases it.
func (s *Server) untilLeaderMoves(ctx context.Context, read bool) (context.Context, func()) {
	st := s.Members.Store()
	if st == nil {
		return ctx, func() {}
	}
	moved := st.LeaderMoved()
	actx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-moved:
		case <-actx.Done():
			return
		}
		if !read {
			t := time.NewTimer(movedWriteGrace)
			defer t.Stop()
			select {
			case <-t.C:
			case <-actx.Done():
				return
			}
		}
		cancel(errLeaderMoved)
	}()
	return actx, func() { cancel(nil) }
}

// noLeader explains a request that found no leader: when this member knows of none
// either, quorum is lost (or an election is under way), and the error says what to do
// rather than blaming the dead member it last tried.
func (s *Server) noLeader(tried []string, last error) error {
	if st := s.Members.Store(); st == nil || s.Members.CutOff() != nil {
		return last
	} else if id, _ := st.Leader(); id != "" {
		return last
	}
	return rest.NotApplied(rest.Unavailable("%s: no database leader: quorum is lost, or an election is under way (the other database members %s did not answer: %v). "+
		"See `nodeagent cluster list-database`; if the lost members are gone for good, stop this daemon and run `nodeagent cluster recover-from-quorum-loss`, or run `orch recover` from the control machine",
		s.Members.Name(), strings.Join(tried, ", "), last))
}

// PostFirst posts body to the first of addrs that takes it. A write moves on to the next
// address only when it certainly was not applied: the connection could not be made, or
// the member answered with an error marked not applied (rest.NotAppliedHeader). Any other
// failure ends the search, because the next member could apply the write a second time:
// an error answer is returned as is, a connection lost after sending becomes a 503 saying
// the outcome is unknown. A read (QueryPath, ReadIndexPath) moves on after any 503 or
// transport error, which it marks not applied (the caller may wait out an election).
func (s *Server) PostFirst(ctx context.Context, addrs []string, path string, body, out any, hops int) error {
	return s.postFirst(ctx, addrs, path, body, nil, out, hops)
}

// postFirst is PostFirst with extra request headers.
func (s *Server) postFirst(ctx context.Context, addrs []string, path string, body any, extra http.Header, out any, hops int) error {
	var lastErr error
	for _, addr := range addrs {
		err := s.peers.post(ctx, addr, path, body, extra, out, hops)
		var ae *api.Error
		isAPI := errors.As(err, &ae)
		switch {
		case err == nil:
			return nil
		case notSent(err):
			lastErr = rest.NotApplied(rest.Unavailable("forwarding to %s: %v", addr, err))
		case KnownNotApplied(err):
			lastErr = err
		case isRead(path) && !isAPI:
			// A read changes nothing: one cut off by a leader that died is asked again.
			lastErr = rest.NotApplied(rest.Unavailable("forwarding to %s: %v", addr, err))
		case isRead(path) && ae.Code == http.StatusServiceUnavailable:
			lastErr = rest.NotApplied(err)
		case isAPI:
			return mapRemoteError(err)
		default:
			return rest.Unavailable("forwarding to %s: %v (the request may or may not have been applied)", addr, err)
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
func (s *Server) leaderCandidates() []string {
	var out []string
	seen := map[string]bool{s.Members.ClusterAddress(): true}
	add := func(a string) {
		if a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	if st := s.Members.Store(); st != nil {
		_, a := st.Leader()
		add(a)
	}
	add(s.Members.LeaderHint())
	for _, a := range s.Members.DatabaseAddresses() {
		add(a)
	}
	return out
}

// Post sends body to addr's internal endpoint path (hops counting this request) and
// decodes the answer into out. An error answer carrying rest.NotAppliedHeader comes back
// wrapped by rest.NotApplied.
func (s *Server) Post(ctx context.Context, addr, path string, body, out any, hops int) error {
	return s.peers.post(ctx, addr, path, body, nil, out, hops)
}

// Client is the pooled client of the member at addr.
func (s *Server) Client(addr string) (*api.Client, error) { return s.peers.client(addr) }

// peerPool caches one HTTPS client per member address, using the cluster certificate.
type peerPool struct {
	s       *Server
	mu      sync.Mutex
	fp      string
	clients map[string]*api.Client
}

func newPeerPool(s *Server) *peerPool { return &peerPool{s: s, clients: map[string]*api.Client{}} }

func (p *peerPool) client(addr string) (*api.Client, error) {
	cid := p.s.Certs.Cluster()
	if cid == nil {
		return nil, rest.ErrNotInitialised
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fp != cid.Fingerprint {
		for _, c := range p.clients {
			c.Close()
		}
		p.clients, p.fp = map[string]*api.Client{}, cid.Fingerprint
	}
	c := p.clients[addr]
	if c == nil {
		c = api.NewTLSClient(addr, PeerTLS(cid))
		c.WrapTransport(func(next http.RoundTripper) http.RoundTripper { return p.s.Fence.Transport(next) })
		p.clients[addr] = c
	}
	return c, nil
}

func (p *peerPool) post(ctx context.Context, addr, path string, body any, extra http.Header, out any, hops int) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	_, err = p.exchange(ctx, addr, path, raw, extra, out, hops)
	return err
}

// Exchange is Post with a body encoded once by the caller (a heartbeat round sends the
// same body to every member), extra request headers, and the answer's headers returned.
func (s *Server) Exchange(ctx context.Context, addr, path string, body []byte, extra http.Header, out any) (http.Header, error) {
	return s.peers.exchange(ctx, addr, path, body, extra, out, 1)
}

func (p *peerPool) exchange(ctx context.Context, addr, path string, raw []byte, extra http.Header, out any, hops int) (http.Header, error) {
	c, err := p.client(addr)
	if err != nil {
		return nil, err
	}
	hdr := http.Header{hopsHeader: {strconv.Itoa(hops)}, "Content-Type": {"application/json"},
		ClockHeader: {strconv.FormatInt(p.s.Members.Now().UnixMilli(), 10)}}
	for k, v := range extra {
		hdr[k] = v
	}
	resp, err := c.Raw(ctx, http.MethodPost, path, bytes.NewReader(raw), hdr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	err = DecodeAnswer(resp, out)
	if err != nil && resp.Header.Get(rest.NotAppliedHeader) != "" {
		return resp.Header, rest.NotApplied(err)
	}
	return resp.Header, err
}

func (p *peerPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.clients {
		c.Close()
	}
	p.clients = map[string]*api.Client{}
}
