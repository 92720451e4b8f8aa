package daemon

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"orch/internal/wait"
	"orch/nodeagent/api"
)

// threeMembers starts an in-process cluster of three voters (real raft over loopback) and
// returns their daemons and the clients of their local sockets, the bootstrap member first.
func threeMembers(t *testing.T) ([]*recoveryMember, []*api.Client) {
	t.Helper()
	ctx := context.Background()
	var ms []*recoveryMember
	var cs []*api.Client
	for range 3 {
		dir := t.TempDir()
		ms = append(ms, runMember(t, dir))
		c := api.NewUnixClient(SocketPath(dir))
		t.Cleanup(c.Close)
		cs = append(cs, c)
	}
	if err := cs[0].Init(ctx, api.InitPost{Preseed: api.Preseed{
		// heartbeat rounds, which give joiners their roles, every 250 ms
		Config:  map[string]string{"core.https_address": freeLoopback(t), "cluster.offline_threshold": "1"},
		Cluster: &api.ClusterPut{Enabled: true, ServerName: "c1"},
	}}); err != nil {
		t.Fatalf("bootstrapping c1: %v", err)
	}
	for i := 1; i < 3; i++ {
		name := fmt.Sprintf("c%d", i+1)
		tok, err := cs[0].CreateToken(ctx, name)
		if err != nil {
			t.Fatalf("join token for %s: %v", name, err)
		}
		if err := cs[i].Init(ctx, api.InitPost{Preseed: api.Preseed{Cluster: &api.ClusterPut{
			Enabled: true, ServerName: name, ServerAddress: freeLoopback(t), ClusterToken: tok.Token,
		}}}); err != nil {
			t.Fatalf("joining %s: %v", name, err)
		}
	}
	wait.For(t, 20*time.Second, "every member to hold a replica the leader feeds", func() error {
		for i, m := range ms {
			st, name := m.d.store(), fmt.Sprintf("c%d", i+1)
			if st == nil {
				return fmt.Errorf("%s has no store", name)
			}
			if !st.HoldsReplica(name) || !st.IsLeader() && !st.FedByLeader() {
				return fmt.Errorf("%s holds a replica: %v, fed by the leader: %v", name, st.HoldsReplica(name), st.FedByLeader())
			}
		}
		return nil
	})
	return ms, cs
}

// GET /1.0 answers the configuration from a cache (serverconfig's State, the encoded
// answer) while nothing was written; a write through another member must show in the very
// next GET /1.0 on this one, a member-local write on this member too. Without the replica
// state in the cache's key, the follower answers its first answer for ever. A request that
// fails while leadership moves (the in-process cluster's timings are short) is sent again:
// any answer that succeeds must show the write.
func TestServerCacheSeesWritesThroughOtherMembers(t *testing.T) {
	ms, cs := threeMembers(t)
	leader, follower := cs[0], cs[1]
	for i, m := range ms {
		if m.d.store().IsLeader() {
			leader, follower = cs[i], cs[(i+1)%3]
		}
	}
	for i := range 5 {
		for range 3 { // warm the cache: the same answer three times
			getServer(t, follower)
		}
		want := fmt.Sprintf("v%d", i)
		patch(t, leader, "user.cache", want)
		s, etag := getServer(t, follower)
		if got := s.Config["user.cache"]; got != want {
			t.Fatalf("GET /1.0 on the follower right after the leader wrote user.cache=%s: %q (a stale cache)", want, got)
		}
		ls, letag := getServer(t, leader)
		if ls.Config["user.cache"] != want {
			t.Fatalf("GET /1.0 on the leader: %q, want %s", ls.Config["user.cache"], want)
		}
		if etagVersion(etag) != etagVersion(letag) {
			t.Errorf("ETags name different config versions: follower %s, leader %s", etag, letag)
		}
		// and the other way round: written on the follower (forwarded), read on the leader
		back := want + "-back"
		patch(t, follower, "user.cache", back)
		if s, _ := getServer(t, leader); s.Config["user.cache"] != back {
			t.Fatalf("GET /1.0 on the leader right after the follower wrote %s: %q", back, s.Config["user.cache"])
		}
	}
	// A member-local key changes only the node-local database: its own cache must see it.
	addr := freeLoopback(t)
	patch(t, follower, "core.debug_address", addr)
	if s, _ := getServer(t, follower); s.Config["core.debug_address"] != addr {
		t.Errorf("GET /1.0 after setting core.debug_address=%s: %q", addr, s.Config["core.debug_address"])
	}
}

// getServer is GET /1.0, sent again while it fails.
func getServer(t *testing.T, c *api.Client) (*api.Server, string) {
	t.Helper()
	var s *api.Server
	var etag string
	wait.For(t, 10*time.Second, "GET /1.0", func() error {
		var err error
		s, etag, err = c.Server(context.Background())
		return err
	})
	return s, etag
}

// patch sets key=value with PATCH /1.0, sent again while it fails (it is idempotent).
func patch(t *testing.T, c *api.Client, key, value string) {
	t.Helper()
	wait.For(t, 10*time.Second, "PATCH /1.0 "+key+"="+value, func() error {
		return c.PatchConfig(context.Background(), map[string]string{key: value}, "")
	})
}

// etagVersion is the global config version an ETag names.
func etagVersion(etag string) string {
	v, _, _ := strings.Cut(strings.Trim(etag, `"`), "-")
	return v
}
