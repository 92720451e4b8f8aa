package daemon

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"orch/nodeagent/api"
)

// A launch reads its profiles, then writes the instance row; a profile deleted in between
// must not end up referenced by the new instance. The test runs the launch's steps around
// a real DELETE of the profile on a one-member cluster (real raft and SQLite).
func TestProfileDeletedDuringLaunch(t *testing.T) {
	d := newFuzzDaemon(t)
	h := d.routes()
	ctx := context.Background()
	for _, p := range []string{"p1", "p2"} {
		if code, resp := serve(d, h, fuzzCaller{}, http.MethodPost, "/1.0/profiles", []byte(`{"name":"`+p+`"}`), nil); code != http.StatusOK {
			t.Fatalf("creating profile %s: %d %s", p, code, resp.Error)
		}
	}

	if _, err := d.expandProfiles(ctx, []string{"p1"}); err != nil {
		t.Fatalf("launch reading p1: %v", err)
	}
	if code, resp := serve(d, h, fuzzCaller{}, http.MethodDelete, "/1.0/profiles/p1", nil, nil); code != http.StatusOK {
		t.Fatalf("deleting p1: %d %s", code, resp.Error)
	}
	_, err := d.placeInstance(ctx, "c1", "img", []string{"p1"}, []string{d.memberName()}, nil)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != http.StatusNotFound {
		t.Fatalf("placing c1 with the deleted profile p1: err = %v, want 404 naming p1", err)
	}
	if rows, err := d.queryLocal(ctx, `SELECT name FROM instances`); err != nil || len(rows) != 0 {
		t.Fatalf("instances after the refused launch: %v (err %v), want none", rows, err)
	}

	if _, err := d.placeInstance(ctx, "c2", "img", []string{"p2", "p2"}, []string{d.memberName()}, nil); err != nil {
		t.Fatalf("placing c2 with p2: %v", err)
	}
	if code, resp := serve(d, h, fuzzCaller{}, http.MethodDelete, "/1.0/profiles/p2", nil, nil); code != http.StatusConflict {
		t.Fatalf("deleting p2 used by c2: %d %s, want 409", code, resp.Error)
	}
	if code, _ := serve(d, h, fuzzCaller{}, http.MethodDelete, "/1.0/profiles/nope", nil, nil); code != http.StatusNotFound {
		t.Fatalf("deleting a missing profile: %d, want 404", code)
	}
}
