package daemon

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/api/pki"
	"orch/nodeagent/config"
	"orch/nodeagent/daemon/serve"
	"orch/nodeagent/daemon/tokens"
	"orch/nodeagent/localdb"
	"orch/nodeagent/store"
	"orch/nodeagent/version"
)

// acceptRequest is what a joining member sends to any member (forwarded to the leader).
type acceptRequest struct {
	Name          string                `json:"name"`
	Address       string                `json:"address"`
	ClientAddress string                `json:"client_address"`
	Password      string                `json:"password,omitempty"`
	TokenSecret   string                `json:"token_secret,omitempty"`
	Pools         []api.StoragePool     `json:"pools,omitempty"`
	Networks      []api.Network         `json:"networks,omitempty"`
	MemberConfig  []api.MemberConfigKey `json:"member_config,omitempty"`
	Version       version.Info          `json:"version"`
	// Fingerprint is the joiner's TLS client certificate, recorded by the member that
	// received the request from the joiner (acceptRoute); the leader trusts it only from a
	// member. A retry of the same join presents the same certificate.
	Fingerprint string `json:"fingerprint,omitempty"`
}

// acceptResponse hands the joiner the cluster certificate and key over the pinned TLS
// connection, as LXD does, and the current members.
type acceptResponse struct {
	ClusterCert string            `json:"cluster_cert"`
	ClusterKey  string            `json:"cluster_key"`
	Members     []heartbeatMember `json:"members"`
	// Epoch is the cluster epoch the joiner enters (epoch.go).
	Epoch api.Epoch `json:"epoch"`
	// RaftTimings are the cluster's raft timings (formatRaftTimings), so that the joiner's
	// raft starts with them, the leader lease included. Joiner and leader run the same
	// version (checkJoiner), so the field is always understood.
	RaftTimings string `json:"raft_timings,omitempty"`
}

// completeResponse tells the joiner the role it was given.
type completeResponse struct {
	Role string `json:"role"`
}

type nameRequest struct {
	Name string `json:"name"`
}

// joinTarget says where and how to reach the cluster: addresses to try and the pinned
// fingerprint of the cluster certificate.
type joinTarget struct {
	addresses   []string
	fingerprint string
	secret      string
	// fromCertificate: the fingerprint is the preseed's cluster_certificate's (not only a
	// token's), so a mismatch is the operator's choice of file.
	fromCertificate bool
}

func targetOf(c *api.ClusterPut) (joinTarget, error) {
	var t joinTarget
	if c.ClusterToken != "" {
		tok, err := api.DecodeJoinToken(c.ClusterToken)
		if err != nil {
			return t, badRequest("cluster.cluster_token: %v", err)
		}
		if tok.ServerName != c.ServerName {
			return t, badRequest("cluster.cluster_token was issued for member %q, not %q", tok.ServerName, c.ServerName)
		}
		t.addresses, t.fingerprint, t.secret = tok.Addresses, tok.Fingerprint, tok.Secret
	}
	if c.ClusterCertificate != "" {
		fp, err := pki.FingerprintPEM([]byte(api.CertificatePEM(c.ClusterCertificate)))
		if err != nil {
			return t, badRequest("cluster.cluster_certificate: %v", err)
		}
		if t.fingerprint != "" && t.fingerprint != fp {
			return t, badRequest("cluster.cluster_certificate does not match the join token's fingerprint")
		}
		t.fingerprint, t.fromCertificate = fp, true
	}
	if c.ClusterAddress != "" {
		a, err := config.NormaliseAddress(c.ClusterAddress, false)
		if err != nil {
			return t, badRequest("cluster.cluster_address: %v", err)
		}
		t.addresses = append([]string{a}, t.addresses...)
	}
	switch {
	case t.fingerprint == "":
		return t, badRequest("joining needs cluster.cluster_certificate or cluster.cluster_token to verify the cluster")
	case len(t.addresses) == 0:
		return t, badRequest("joining needs cluster.cluster_address")
	case t.secret == "" && c.ClusterPassword == "":
		return t, badRequest("joining needs cluster.cluster_password or cluster.cluster_token")
	}
	return t, nil
}

// join makes this member join an existing cluster: ask to be accepted (password or token),
// take the cluster certificate, start the member, then ask the leader to complete the join
// (assign the role). On failure after acceptance it asks the leader to forget it.
func (d *Daemon) join(ctx context.Context, p api.Preseed) (err error) {
	c := p.Cluster
	if err := checkMemberConfig(c.MemberConfig); err != nil {
		return badRequest("cluster.%v", err)
	}
	target, err := targetOf(c)
	if err != nil {
		return err
	}
	global, local, addr, err := d.preseedAddresses(p, c.ServerAddress)
	if err != nil {
		return err
	}
	if len(global) > 0 {
		return badRequest("config: cluster-wide keys (%s) cannot be set by a joining member", strings.Join(sortedKeys(global), ", "))
	}
	req := acceptRequest{Name: c.ServerName, Address: addr, ClientAddress: local["core.https_address"],
		Password: c.ClusterPassword, TokenSecret: target.secret, Pools: p.StoragePools, Networks: p.Networks,
		MemberConfig: c.MemberConfig, Version: d.version}
	resp, via, err := d.askAccept(ctx, target, req)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			d.abortJoin(via, c.ServerName)
			d.undoMember()
		}
	}()
	kp := pki.KeyPair{CertPEM: []byte(resp.ClusterCert), KeyPEM: []byte(resp.ClusterKey)}
	if fp, ferr := kp.Fingerprint(); ferr != nil || fp != target.fingerprint {
		return errors.New("the cluster sent a certificate that does not match the pinned fingerprint")
	}
	if err := d.adoptEpoch(resp.Epoch); err != nil {
		return err
	}
	d.applyHeartbeatLocally(heartbeat{LeaderAddress: via, Members: resp.Members})
	if resp.RaftTimings != "" {
		local[localdb.KeyRaftTimings] = resp.RaftTimings
	}
	if err := d.becomeMember(kp, c.ServerName, local); err != nil {
		return err
	}
	done, err := d.completeJoin(ctx, c.ServerName)
	if err != nil {
		return fmt.Errorf("completing the join: %w", err)
	}
	d.log.Info("joined the cluster", "member", c.ServerName, "role", done.Role)
	return d.finishMember(ctx)
}

// completeJoin asks the leader to complete this member's join, and asks again while the
// cluster answers that it is between leaders (503, or a request known not applied): the
// leader may lose its role while it waits for the joiner to catch up before promoting it
// (make test saw it under load). Completing is idempotent: it marks the member seen and
// rebalances the roles.
func (d *Daemon) completeJoin(ctx context.Context, name string) (completeResponse, error) {
	var done completeResponse
	giveUp := time.Now().Add(acceptPatience)
	for pause := acceptPause; ; pause = min(2*pause, 2*time.Second) {
		err := d.srv.ToLeader(ctx, "/internal/cluster/complete", nameRequest{Name: name}, &done)
		if err == nil || !betweenLeaders(err) || time.Now().Add(pause).After(giveUp) {
			return done, err
		}
		d.log.Info("completing the join again: the cluster is between leaders", "member", name, "err", err)
		select {
		case <-ctx.Done():
			return done, ctx.Err()
		case <-time.After(pause):
		}
	}
}

// betweenLeaders reports an answer that means the leader changed under the request.
func betweenLeaders(err error) bool {
	var ae *api.Error
	return (errors.As(err, &ae) && ae.Code == http.StatusServiceUnavailable) || serve.KnownNotApplied(err)
}

// acceptPatience bounds how long a joiner keeps asking to be accepted while no member
// answers at all (a dial or TLS handshake that times out, a refused connection): at 200
// joiners on a loaded machine a SYN to the leader was lost often enough for a join to fail
// on one 5 s dial timeout. A member's answer, a refusal included, ends the asking at once;
// an accept applied whose answer was lost is answered again (retriedAccept).
const acceptPatience = 30 * time.Second

// acceptPause is the first pause between two rounds of asking; it doubles up to 2 s.
const acceptPause = 250 * time.Millisecond

// askAccept sends the accept request to each known address in turn over TLS pinned to the
// cluster certificate's fingerprint, presenting this member's own certificate, and again
// after a pause while none answers, for up to acceptPatience.
func (d *Daemon) askAccept(ctx context.Context, t joinTarget, req acceptRequest) (*acceptResponse, string, error) {
	cert, err := d.serverPair().TLS()
	if err != nil {
		return nil, "", err
	}
	giveUp := time.Now().Add(acceptPatience)
	for pause := acceptPause; ; pause = min(2*pause, 2*time.Second) {
		resp, addr, unreachable, err := askEach(ctx, t, req, cert)
		if err != nil || resp != nil {
			return resp, addr, err
		}
		if time.Now().Add(pause).After(giveUp) {
			return nil, "", unavailable("cannot reach the cluster: %v", unreachable)
		}
		d.log.Info("no cluster member answered the join; asking again", "member", req.Name, "err", unreachable, "in", pause)
		select {
		case <-ctx.Done():
			return nil, "", unavailable("cannot reach the cluster: %v", unreachable)
		case <-time.After(pause):
		}
	}
}

// askEach asks each address once. It returns the answer and who gave it, or the error that
// ends the join (a refusal, a certificate that is not the cluster's), or, when no member
// answered, why the last one did not (unreachable).
func askEach(ctx context.Context, t joinTarget, req acceptRequest, cert tls.Certificate) (resp *acceptResponse, via string, unreachable, err error) {
	for _, addr := range t.addresses {
		cl := api.NewTLSClient(addr, api.TLSConfig(cert, t.fingerprint))
		var r acceptResponse
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := cl.Call(cctx, http.MethodPost, "/internal/cluster/accept", req, &r, "")
		cancel()
		cl.Close()
		if err == nil {
			return &r, addr, nil, nil
		}
		var ae *api.Error
		if errors.As(err, &ae) {
			return nil, "", nil, api.Errorf(ae.Code, "join refused by %s: %s", addr, ae.Message)
		}
		if errors.Is(err, api.ErrFingerprintMismatch) {
			return nil, "", nil, mismatchError(t, addr, err)
		}
		unreachable = fmt.Errorf("contacting %s: %w", addr, err)
	}
	return nil, "", unreachable, nil
}

// mismatchError explains a member that presents another certificate than the preseed's:
// the cluster certificate is DIR/server.crt (the same as DIR/cluster.crt) on any member.
func mismatchError(t joinTarget, addr string, err error) error {
	what := "the join token's cluster fingerprint"
	if t.fromCertificate {
		what = "cluster.cluster_certificate"
	}
	return badRequest("%s is not the certificate of the cluster member at %s (%v): "+
		"use the cluster certificate, server.crt in the agent directory of a member (the same as its cluster.crt; "+
		"/var/lib/nodeagent/server.crt by default), e.g. `sed ':a;N;$!ba;s/\\n/\\n\\n/g' /var/lib/nodeagent/server.crt` "+
		"on the bootstrap member; `nodeagent cluster fingerprint` there prints its fingerprint", what, addr, pinError(err))
}

// pinError is the innermost error of err that says which fingerprints differ.
func pinError(err error) error {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if errors.Unwrap(e) == api.ErrFingerprintMismatch {
			return e
		}
	}
	return err
}

// abortJoin asks the leader to forget a member whose join failed half-way.
func (d *Daemon) abortJoin(via, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if d.cluster.Load() == nil {
		return
	}
	if err := d.srv.ToLeader(ctx, "/internal/cluster/abort", nameRequest{Name: name}, nil); err != nil {
		d.log.Warn("could not withdraw the failed join", "member", name, "via", via, "err", err)
	}
}

// acceptedPrefix, acceptedMarker and hashSecret are the tokens package's (see there).
const acceptedPrefix = tokens.AcceptedPrefix

func acceptedMarker(fingerprint, secretHash string) string {
	return tokens.AcceptedMarker(fingerprint, secretHash)
}

func hashSecret(s string) string { return tokens.HashSecret(s) }

// acceptRoute is POST /internal/cluster/accept on any member: the member the joiner
// reached records the joiner's certificate fingerprint from the TLS handshake, then
// handles the request when it leads or forwards it to the leader.
func (d *Daemon) acceptRoute(w http.ResponseWriter, r *http.Request) error {
	var req acceptRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if c := d.srv.CallerOf(r); !c.Member {
		req.Fingerprint = c.FP
	}
	st := d.store()
	if st == nil {
		return d.noStore()
	}
	if st.IsLeader() {
		return d.postAccept(r.Context(), w, req)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return d.srv.ProxyToLeader(w, r)
}

// postAccept (leader) authenticates a joiner and records it, Offline until it completes.
// The same joiner retrying a join that was accepted (its answer lost) gets the same answer.
func (d *Daemon) postAccept(ctx context.Context, w http.ResponseWriter, req acceptRequest) error {
	if req.Fingerprint == "" {
		return api.Errorf(http.StatusForbidden, "joining needs a client certificate")
	}
	if retried, err := d.retriedAccept(ctx, req); err != nil || retried {
		if err != nil {
			return err
		}
		d.log.Info("member accepted again (retry)", "member", req.Name, "address", req.Address)
		return d.writeAccepted(ctx, w)
	}
	guard, err := d.authenticateJoin(ctx, req)
	if err != nil {
		return err
	}
	if err := d.checkJoiner(ctx, req); err != nil {
		return err
	}
	stmts := append(guard, store.Statement{
		SQL:  `INSERT INTO members(name, address, client_address, version, schema, api_level, heartbeat, joined_at) VALUES(?, ?, ?, ?, ?, ?, 0, ?)`,
		Args: []any{req.Name, req.Address, req.ClientAddress, req.Version.Version, int64(req.Version.Schema), int64(req.Version.APILevel), d.now().UnixMilli()},
	})
	stmts = append(stmts, memberEntityStatements(api.Preseed{StoragePools: req.Pools, Networks: req.Networks}, req.Name, req.MemberConfig)...)
	if _, err := d.exec(ctx, stmts...); err != nil {
		switch {
		case errors.Is(err, store.ErrConflict):
			return api.Errorf(http.StatusForbidden, "join token for %q was already used", req.Name)
		case strings.Contains(err.Error(), "UNIQUE constraint failed: members"):
			return conflict("member %q cannot join: its name or address %s was taken meanwhile", req.Name, req.Address)
		}
		return err
	}
	d.log.Info("member accepted", "member", req.Name, "address", req.Address)
	return d.writeAccepted(ctx, w)
}

// retriedAccept reports whether req repeats an accepted join that has not completed: the
// same name, address, certificate and secret (token secret or trust password). A join of
// that name accepted for another certificate is refused.
func (d *Daemon) retriedAccept(ctx context.Context, req acceptRequest) (bool, error) {
	rows, err := d.query(ctx, `SELECT t.secret_hash, m.address, m.heartbeat FROM tokens t JOIN members m ON m.name = t.name
		WHERE t.name = ? AND t.secret_hash LIKE 'accepted:%'`, req.Name)
	if err != nil || len(rows) == 0 {
		return false, err
	}
	fp, hash, _ := strings.Cut(strings.TrimPrefix(str(rows[0][0]), acceptedPrefix), ":")
	if i64(rows[0][2]) != 0 {
		return false, nil // completed: the usual checks refuse the name
	}
	if subtle.ConstantTimeCompare([]byte(fp), []byte(req.Fingerprint)) != 1 || str(rows[0][1]) != req.Address {
		return false, conflict("member %q is being joined from another certificate or address", req.Name)
	}
	if hash != "" {
		if req.TokenSecret == "" || subtle.ConstantTimeCompare([]byte(hashSecret(req.TokenSecret)), []byte(hash)) != 1 {
			return false, api.Errorf(http.StatusForbidden, "invalid join token for %q", req.Name)
		}
		return true, nil
	}
	if _, err := d.authenticateJoin(ctx, acceptRequest{Name: req.Name, Password: req.Password, Fingerprint: req.Fingerprint}); err != nil {
		return false, err
	}
	return true, nil
}

// writeAccepted answers an accepted joiner with the cluster certificate and the members.
func (d *Daemon) writeAccepted(ctx context.Context, w http.ResponseWriter) error {
	cid := d.cluster.Load()
	members, err := d.membersLocal(ctx)
	if err != nil {
		return err
	}
	cfg, err := d.globalConfigLocal(ctx)
	if err != nil {
		return err
	}
	return writeOK(w, acceptResponse{ClusterCert: string(cid.pair.CertPEM), ClusterKey: string(cid.pair.KeyPEM),
		Members: d.buildHeartbeat(members).Members, Epoch: d.currentEpoch(), RaftTimings: formatRaftTimings(clusterTimings(cfg))}, "")
}

// authenticateJoin checks the trust password or the join token. For a token it returns
// the statement that consumes it, guarded so that a token is used once only.
func (d *Daemon) authenticateJoin(ctx context.Context, req acceptRequest) ([]store.Statement, error) {
	if req.TokenSecret != "" {
		return d.tokens.Check(ctx, req.Name, req.TokenSecret, req.Fingerprint)
	}
	rows, err := d.query(ctx, `SELECT value FROM config WHERE key = 'core.trust_password'`)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, api.Errorf(http.StatusForbidden, "the cluster has no trust password: join with a token (`nodeagent cluster add %s`)", req.Name)
	}
	if !config.CheckPassword(str(rows[0][0]), req.Password) {
		return nil, api.Errorf(http.StatusForbidden, "wrong trust password")
	}
	return []store.Statement{{SQL: `INSERT INTO tokens(name, secret_hash, expires_at) VALUES(?, ?, 0)
		ON CONFLICT(name) DO UPDATE SET secret_hash = excluded.secret_hash, expires_at = 0`,
		Args: []any{req.Name, acceptedMarker(req.Fingerprint, "")}}}, nil
}

// checkJoiner refuses a joiner whose name or address is taken, whose version differs, or
// whose pools and networks do not match the cluster's.
func (d *Daemon) checkJoiner(ctx context.Context, req acceptRequest) error {
	if err := checkMemberName(req.Name); err != nil {
		return badRequest("%v", err)
	}
	if err := checkMemberConfig(req.MemberConfig); err != nil {
		return badRequest("%v", err)
	}
	if version.Compare(req.Version, d.version) != 0 {
		return conflict("member %q runs schema %d API %d but the cluster runs schema %d API %d: install the same version",
			req.Name, req.Version.Schema, req.Version.APILevel, d.version.Schema, d.version.APILevel)
	}
	members, err := d.members(ctx)
	if err != nil {
		return err
	}
	for _, m := range members {
		if m.name == req.Name {
			return conflict("a member named %q already exists", req.Name)
		}
		if m.address == req.Address {
			return conflict("address %s is already used by member %q", req.Address, m.name)
		}
	}
	pools, nets, err := d.clusterEntities(ctx)
	if err != nil {
		return err
	}
	if err := compareEntities(pools, nets, req.Pools, req.Networks); err != nil {
		return conflict("member %q cannot join: %v", req.Name, err)
	}
	return nil
}

// postComplete (leader) marks the joiner online and gives it its role.
func (d *Daemon) postComplete(w http.ResponseWriter, r *http.Request) error {
	var req nameRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	res, err := d.exec(r.Context(),
		store.Statement{SQL: `UPDATE members SET heartbeat = ? WHERE name = ?`, Args: []any{d.now().UnixMilli(), req.Name}},
		storeStmt(`DELETE FROM tokens WHERE name = ? AND secret_hash LIKE 'accepted:%'`, req.Name))
	if err != nil {
		return err
	}
	if len(res) == 0 || res[0].RowsAffected != 1 {
		return notFound("member %q is not being joined", req.Name)
	}
	if err := d.rebalance(r.Context()); err != nil {
		return err
	}
	servers, err := d.store().Servers()
	if err != nil {
		return err
	}
	role := currentRoles(servers)[req.Name]
	if role == "" {
		role = roleSpare
	}
	return writeOK(w, completeResponse{Role: role}, "")
}

// postAbort (leader) forgets a member whose join failed.
func (d *Daemon) postAbort(w http.ResponseWriter, r *http.Request) error {
	var req nameRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	d.roleMu.Lock()
	err := d.forgetMember(r.Context(), req.Name)
	d.roleMu.Unlock()
	if err != nil {
		return err
	}
	return writeOK(w, nil, "")
}
