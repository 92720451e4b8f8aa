package serve

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/store"
)

// WriteError marks exactly the refusals that happen before a write enters the log.
func TestWriteErrorNotAppliedMark(t *testing.T) {
	s := New(Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	cases := []struct {
		err    error
		marked bool
	}{
		{&store.NotLeaderError{}, true},
		{rest.ErrNotInitialised, true},
		{rest.ErrStarting, true},
		{fmt.Errorf("reading: %w", rest.ErrStopping), true},
		{rest.NotApplied(rest.Unavailable("no database leader known")), true},
		{rest.Unavailable("forwarding to x: EOF (the request may or may not have been applied)"), false},
		{store.ErrClosed, false},
		{store.ErrLeadershipLost, false},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		s.WriteError(rec, httptest.NewRequest(http.MethodPost, "/internal/db/exec", nil), c.err)
		if rest.NoDatabase(c.err) && rec.Code != http.StatusServiceUnavailable {
			t.Errorf("%v: status %d, want 503", c.err, rec.Code)
		}
		if got := rec.Header().Get(rest.NotAppliedHeader) != ""; got != c.marked {
			t.Errorf("%v: marked %v, want %v (status %d)", c.err, got, c.marked, rec.Code)
		}
	}
}
