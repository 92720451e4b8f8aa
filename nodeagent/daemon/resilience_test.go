package daemon

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/serve"
	"orch/nodeagent/version"
)

var (
	v1 = version.Info{Version: "1", Schema: 1, APILevel: 1}
	v2 = version.Info{Version: "2", Schema: 2, APILevel: 1}
)

func rows(vs ...version.Info) []memberRow {
	out := make([]memberRow, len(vs))
	for i, v := range vs {
		out[i] = memberRow{name: string(rune('a' + i)), ver: v, heartbeat: time.Now()}
	}
	return out
}

func TestMemberStatus(t *testing.T) {
	ms := rows(v2, v1, v1)
	ms[2].heartbeat = time.Now().Add(-time.Minute)
	want := []struct{ status, msg string }{
		{api.StatusBlocked, "Waiting for b, c to be upgraded"},
		{api.StatusOnline, "Fully operational"},
		{api.StatusOffline, "No heartbeat for 1m0s"},
	}
	for i, m := range ms {
		st, msg := memberStatus(m, ms, time.Now(), 20*time.Second, v1)
		if st != want[i].status || msg != want[i].msg {
			t.Errorf("%s: %s %q; want %s %q", m.name, st, msg, want[i].status, want[i].msg)
		}
	}
	// After the migration, a member restarted on the old binary must be upgraded; the
	// others are not held back by it.
	ms = rows(v2, v2, v1)
	for i, m := range ms {
		st, msg := memberStatus(m, ms, time.Now(), 20*time.Second, v2)
		wantBlocked := i == 2
		if (st == api.StatusBlocked) != wantBlocked || wantBlocked && !strings.HasPrefix(msg, "Upgrade required") {
			t.Errorf("after migration %s: %s %q", m.name, st, msg)
		}
	}
}

func TestOfflineAmong(t *testing.T) {
	ms := rows(v1, v1, v1)
	ms[1].heartbeat = time.Now().Add(-30 * time.Second)
	ms[2].heartbeat = time.Now().Add(-40 * time.Second)
	if err := offlineAmong(ms, time.Now(), 20*time.Second, []string{"a"}); err != nil {
		t.Fatalf("online member refused: %v", err)
	}
	err := offlineAmong(ms, time.Now(), 20*time.Second, nil)
	if !errors.Is(err, ErrMemberOffline) || !strings.Contains(err.Error(), "members b (no heartbeat for 30s), c (no heartbeat for 40s) are offline") {
		t.Fatalf("every member: %v", err)
	}
	if got := serve.New(serve.Deps{Conflicts: conflicts}).ErrorCode(err); got != http.StatusConflict {
		t.Errorf("status %d, want 409", got)
	}
	wrapped := errors.Join(errors.New("ctx"), offlineAmong(ms, time.Now(), 20*time.Second, []string{"b"}))
	if !errors.Is(wrapped, ErrMemberOffline) || !strings.Contains(wrapped.Error(), "member b (no heartbeat for 30s) is offline") {
		t.Fatalf("one member: %v", wrapped)
	}
	if err := offlineAmong(ms, time.Now(), 20*time.Second, []string{"zz"}); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("unknown member: %v", err)
	}
}
