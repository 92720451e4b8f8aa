package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/nodeagent/api"
)

// TestConfigEverywhere checks that a write on any member (voter, leader or stand-by) is at
// once visible on every member: `config get` right after `config set` elsewhere, no waiting.
func TestConfigEverywhere(t *testing.T) {
	ms := agenttest.FormCluster(t, 4)
	for i, w := range ms {
		key, val := fmt.Sprintf("user.k%d", i+1), fmt.Sprintf("written-on-%s", w.Name)
		w.MustRun("config", "set", key, val)
		// The same key overwritten from every member in turn: each read sees the last write.
		w.MustRun("config", "set", "user.shared="+val)
		for _, r := range ms {
			if got := strings.TrimSpace(r.MustRun("config", "get", key)); got != val {
				t.Errorf("%s: config get %s = %q after it was set on %s; want %q", r.Name, key, got, w.Name, val)
			}
			if got := strings.TrimSpace(r.MustRun("config", "get", "user.shared")); got != val {
				t.Errorf("%s: config get user.shared = %q after %s set it; want %q", r.Name, got, w.Name, val)
			}
		}
	}
	ms[3].MustRun("config", "unset", "user.k1")
	for _, r := range ms {
		if got := strings.TrimSpace(r.MustRun("config", "get", "user.k1")); got != "" {
			t.Errorf("%s: user.k1 = %q after node4 unset it", r.Name, got)
		}
	}
}

// TestConfigCompareAndSet checks user.* compare-and-set with ETags, through the leader and
// through a follower: a stale If-Match is refused with 412 and changes nothing, a fresh one
// succeeds, and a change made through another member makes an ETag stale.
func TestConfigCompareAndSet(t *testing.T) {
	ms := agenttest.FormCluster(t, 3)
	leader := agenttest.LeaderOf(t, ms)
	follower := ms[0]
	if follower == leader {
		follower = ms[1]
	}
	for _, a := range []*agenttest.Agent{leader, follower} {
		t.Run(a.Name, func(t *testing.T) { checkCAS(t, a, otherThan(ms, a)) })
	}
}

func checkCAS(t *testing.T, a, other *agenttest.Agent) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := a.Client()
	key := "user.cas-" + a.Name
	_, e1 := agenttest.Server(t, a)
	if e1 == "" {
		t.Fatalf("%s: GET /1.0 gave no ETag", a.Name)
	}
	if err := cl.PatchConfig(ctx, map[string]string{key: "1"}, e1); err != nil {
		t.Fatalf("PATCH with the fresh ETag: %v", err)
	}
	s2, e2 := agenttest.Server(t, a)
	if s2.Config[key] != "1" || e2 == e1 {
		t.Fatalf("after PATCH: %s=%q, ETag %s (was %s)", key, s2.Config[key], e2, e1)
	}
	stale := map[string]func() error{
		"PATCH stale":   func() error { return cl.PatchConfig(ctx, map[string]string{key: "2"}, e1) },
		"PUT stale":     func() error { return cl.UpdateConfig(ctx, withKey(s2.Config, key, "2"), e1) },
		"PATCH garbage": func() error { return cl.PatchConfig(ctx, map[string]string{key: "2"}, `"not-an-etag"`) },
	}
	for name, call := range stale {
		err := call()
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != 412 || !errors.Is(err, api.ErrPrecondition) {
			t.Errorf("%s: got %v; want 412 Precondition Failed", name, err)
		}
		if s, e := agenttest.Server(t, a); s.Config[key] != "1" || e != e2 {
			t.Errorf("%s changed the configuration: %s=%q, ETag %s (want 1, %s)", name, key, s.Config[key], e, e2)
		}
	}
	// A write through another member makes this member's ETag stale: the check is cluster-wide.
	other.MustRun("config", "set", "user.elsewhere-"+a.Name, "x")
	if err := cl.PatchConfig(ctx, map[string]string{key: "2"}, e2); !errors.Is(err, api.ErrPrecondition) {
		t.Errorf("PATCH with an ETag made stale by a write on %s: got %v; want 412", other.Name, err)
	}
	s3, e3 := agenttest.Server(t, a)
	if s3.Config[key] != "1" {
		t.Errorf("after the refused PATCH %s=%q, want 1", key, s3.Config[key])
	}
	if err := cl.UpdateConfig(ctx, withKey(s3.Config, key, "3"), e3); err != nil {
		t.Fatalf("PUT with the fresh ETag: %v", err)
	}
	for _, m := range []*agenttest.Agent{a, other} {
		if got := strings.TrimSpace(m.MustRun("config", "get", key)); got != "3" {
			t.Errorf("%s: %s = %q after the PUT, want 3", m.Name, key, got)
		}
	}
	if got := strings.TrimSpace(a.MustRun("config", "get", "core.trust_password")); got != "true" {
		t.Errorf("core.trust_password = %q after a PUT that showed it masked; want it kept (shown as true)", got)
	}
}

// withKey returns a copy of cfg with key set to v.
func withKey(cfg map[string]string, key, v string) map[string]string {
	out := maps.Clone(cfg)
	out[key] = v
	return out
}

// otherThan returns the first member of ms that is not a.
func otherThan(ms []*agenttest.Agent, a *agenttest.Agent) *agenttest.Agent {
	for _, m := range ms {
		if m != a {
			return m
		}
	}
	return nil
}
