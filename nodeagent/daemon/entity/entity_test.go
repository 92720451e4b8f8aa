package entity

import (
	"errors"
	"net/http"
	"reflect"
	"testing"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
)

// The cluster-wide flow itself (define with --target, the final create fanned out and
// rolled back, deletes, volumes, bridges) runs on real members in integration/storage and
// integration/instances; these pin the pieces that decide what a member sees and what the
// API answers.

func sampleRow() *entityRow {
	return &entityRow{
		id: 3, name: "p1", typ: "dir", state: api.StatusCreated,
		global: map[string]string{"size": "1GB"},
		members: map[string]*memberPart{
			"m1": {state: api.StatusCreated, config: map[string]string{"source": "/srv/m1"}},
			"m2": {state: api.StatusErrored, message: "disk full", config: map[string]string{}},
		},
		order: []string{"m1", "m2"},
	}
}

func TestEntityViewPerMember(t *testing.T) {
	e := sampleRow()
	status, cfg, locs, err := e.info("")
	if err != nil || status != api.StatusCreated || !reflect.DeepEqual(cfg, map[string]string{"size": "1GB"}) || !reflect.DeepEqual(locs, []string{"m1", "m2"}) {
		t.Errorf("cluster view: %s %v %v %v", status, cfg, locs, err)
	}
	status, cfg, _, err = e.info("m1")
	if err != nil || status != api.StatusCreated || cfg["source"] != "/srv/m1" || cfg["size"] != "1GB" {
		t.Errorf("m1's view: %s %v %v", status, cfg, err)
	}
	if e.global["source"] != "" {
		t.Error("a member's view wrote its node-specific key into the global keys")
	}
	var ae *api.Error
	if _, _, _, err = e.info("m9"); !errors.As(err, &ae) || ae.Code != http.StatusNotFound {
		t.Errorf("view on a member without the pool: %v; want 404", err)
	}
	r := Row{e: e}
	if !r.CreatedOn("m1") || r.CreatedOn("m2") || r.CreatedOn("m9") || r.ID() != 3 {
		t.Errorf("Row: created on m1 %v, m2 %v, m9 %v, id %d", r.CreatedOn("m1"), r.CreatedOn("m2"), r.CreatedOn("m9"), r.ID())
	}
}

func TestUndefinedOn(t *testing.T) {
	members := []db.Member{{Name: "m1"}, {Name: "m2"}, {Name: "m3"}}
	if got := undefinedOn(sampleRow(), members); !reflect.DeepEqual(got, []string{"m3"}) {
		t.Errorf("undefined on %v, want [m3]", got)
	}
}

// The statements entering the raft log must not depend on map order.
func TestDefineStatementsAreDeterministic(t *testing.T) {
	cfg := map[string]string{"b": "2", "a": "1", "c": "3", "d": "4"}
	first := defineStatements(poolKind, "p1", "dir", "", cfg, "m1")
	for range 20 {
		if again := defineStatements(poolKind, "p1", "dir", "", cfg, "m1"); !reflect.DeepEqual(first, again) {
			t.Fatalf("define statements differ between two calls:\n%v\n%v", first, again)
		}
	}
	if got := first[len(first)-4].Args[2]; got != "a" {
		t.Errorf("first key written %v, want a", got)
	}
}
