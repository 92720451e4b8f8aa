package jepsen

import (
	"math"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

// op builds a history entry for the model tests.
func op(client int, call, ret int64, in opInput, out opOutput) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret}
}

// read is a read's output; etag "eN" stands for an ETag of version N.
func read(r0, etag string) opOutput {
	return opOutput{Outcome: outOK, Values: map[string]string{"user.r0": r0}, ETag: tag(etag)}
}

func tag(e string) string { return `"` + strings.TrimPrefix(e, "e") + `-h"` }

// TestModel checks the specification on small histories: what it must accept and refuse.
func TestModel(t *testing.T) {
	w := func(v string) opInput { return opInput{Kind: opWrite, Key: "user.r0", Value: v} }
	u := func(k, v string) opInput { return opInput{Kind: opWrite, Key: k, Value: v} }
	cas := func(v, etag string) opInput { return opInput{Kind: opCAS, Key: "user.r0", Value: v, ETag: tag(etag)} }
	r := opInput{Kind: opRead}
	ok, fail, unknown := opOutput{Outcome: outOK}, opOutput{Outcome: outFail}, opOutput{Outcome: outUnknown}
	inf := int64(math.MaxInt64)
	cases := []struct {
		name string
		ops  []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"sequential", []porcupine.Operation{op(0, 0, 1, w("a"), ok), op(1, 2, 3, r, read("a", "e1"))}, porcupine.Ok},
		{"stale read", []porcupine.Operation{op(0, 0, 1, w("a"), ok), op(1, 2, 3, r, read("", "e0"))}, porcupine.Illegal},
		{"concurrent read may miss", []porcupine.Operation{op(0, 0, 5, w("a"), ok), op(1, 1, 2, r, read("", "e0"))}, porcupine.Ok},
		{"unknown write never seen", []porcupine.Operation{op(0, 0, inf, w("a"), unknown), op(1, 2, 3, r, read("", "e0"))}, porcupine.Ok},
		{"unknown write seen", []porcupine.Operation{op(0, 0, inf, w("a"), unknown), op(1, 2, 3, r, read("a", "e1"))}, porcupine.Ok},
		{"cas on fresh etag succeeds", []porcupine.Operation{op(0, 0, 1, r, read("", "e0")), op(0, 2, 3, cas("b", "e0"), ok), op(1, 4, 5, r, read("b", "e1"))}, porcupine.Ok},
		{"cas on fresh etag cannot fail", []porcupine.Operation{op(0, 0, 1, r, read("", "e0")), op(0, 2, 3, cas("b", "e0"), fail)}, porcupine.Illegal},
		{"cas after another key's write must fail", []porcupine.Operation{op(0, 0, 1, r, read("", "e0")), op(1, 2, 3, u("user.u.x", "1"), ok), op(0, 4, 5, cas("b", "e0"), ok)}, porcupine.Illegal},
		{"cas fails after a write", []porcupine.Operation{op(0, 0, 1, r, read("", "e0")), op(1, 2, 3, w("a"), ok), op(0, 4, 5, cas("b", "e0"), fail)}, porcupine.Ok},
		{"unknown write explains a cas failure", []porcupine.Operation{op(0, 0, 1, r, read("", "e0")), op(1, 0, inf, u("user.u.x", "1"), unknown), op(0, 4, 5, cas("b", "e0"), fail)}, porcupine.Ok},
		{"lost acknowledged write", []porcupine.Operation{op(0, 0, 1, w("a"), ok), op(0, 2, 3, w("b"), ok), op(1, 4, 5, r, read("a", "e1"))}, porcupine.Illegal},
	}
	for _, c := range cases {
		m := newModel(map[string]string{"user.r0": ""}, 0, 0)
		if got := porcupine.CheckOperations(m, c.ops); (got && c.want != porcupine.Ok) || (!got && c.want == porcupine.Ok) {
			t.Errorf("%s: linearizable=%v, want %v", c.name, got, c.want)
		}
	}
}

// TestInvisibleUpdates checks the budget of invisible updates: a read may see the version
// moved by at most that many updates nobody saw, and only forward.
func TestInvisibleUpdates(t *testing.T) {
	r := opInput{Kind: opRead}
	w := opInput{Kind: opWrite, Key: "user.r0", Value: "a"}
	ok, fail, unknown := opOutput{Outcome: outOK}, opOutput{Outcome: outFail}, opOutput{Outcome: outUnknown}
	casOn := func(etag string) opInput { return opInput{Kind: opCAS, Key: "user.r0", Value: "a", ETag: tag(etag)} }
	cases := []struct {
		name    string
		pending int64
		ops     []porcupine.Operation
		want    bool
	}{
		{"one invisible update explains a skipped version", 1, []porcupine.Operation{op(0, 0, 1, r, read("", "e0")), op(0, 2, 3, r, read("", "e1"))}, true},
		{"one is not two", 1, []porcupine.Operation{op(0, 0, 1, r, read("", "e2"))}, false},
		{"none: the version may not move", 0, []porcupine.Operation{op(0, 0, 1, r, read("", "e1"))}, false},
		{"spent before a write", 1, []porcupine.Operation{op(0, 0, 1, w, ok), op(0, 2, 3, r, read("a", "e2"))}, true},
		{"never backwards", 1, []porcupine.Operation{op(0, 0, 1, r, read("", "e1")), op(0, 2, 3, r, read("", "e0"))}, false},
		{"a refused compare-and-set on the current version spends one", 1, []porcupine.Operation{op(0, 0, 1, r, read("", "e0")), op(0, 2, 3, casOn("e0"), fail), op(0, 4, 5, r, read("", "e1"))}, true},
		{"which it must have", 0, []porcupine.Operation{op(0, 0, 1, r, read("", "e0")), op(0, 2, 3, casOn("e0"), fail)}, false},
		{"a refused one leaves the rest for later", 2, []porcupine.Operation{op(0, 0, 1, casOn("e0"), fail), op(0, 2, 3, r, read("", "e2"))}, true},
		{"a compare-and-set that took effect after one", 1, []porcupine.Operation{op(0, 0, 1, casOn("e1"), ok), op(0, 2, 3, r, read("a", "e2"))}, true},
		{"an ambiguous one after one", 1, []porcupine.Operation{op(0, 0, 1, casOn("e1"), unknown), op(0, 2, 3, r, read("a", "e2"))}, true},
		{"an ambiguous one never ahead of its version", 1, []porcupine.Operation{op(0, 0, 1, casOn("e2"), unknown), op(0, 2, 3, r, read("a", "e2"))}, false},
	}
	for _, c := range cases {
		m := newModel(map[string]string{"user.r0": ""}, 0, c.pending)
		if got := porcupine.CheckOperations(m, c.ops); got != c.want {
			t.Errorf("%s: linearizable=%v, want %v", c.name, got, c.want)
		}
	}
}

// TestRegisterModel checks the per-key projection on a history with a stale read.
func TestRegisterModel(t *testing.T) {
	w := opInput{Kind: opWrite, Key: "user.r0", Value: "a"}
	good := []porcupine.Operation{op(0, 0, 1, w, opOutput{Outcome: outOK}), op(1, 2, 3, opInput{Kind: opRead}, read("a", "e1"))}
	stale := []porcupine.Operation{op(0, 0, 1, w, opOutput{Outcome: outOK}), op(1, 2, 3, opInput{Kind: opRead}, read("", "e0"))}
	init := map[string]string{"user.r0": ""}
	if !porcupine.CheckOperations(registerModel(), registerHistory(init, good)) {
		t.Error("a fresh read was refused")
	}
	if porcupine.CheckOperations(registerModel(), registerHistory(init, stale)) {
		t.Error("a stale read was accepted")
	}
}

// TestStaleReads checks the version-order check: a read may not return an older version
// than a read that ended before it began; overlapping reads may.
func TestStaleReads(t *testing.T) {
	v := func(e string) (int64, error) { return etagVersion(e) }
	r := opInput{Kind: opRead}
	rd := func(ver string) opOutput { return opOutput{Outcome: outOK, ETag: `"` + ver + `-abc"`} }
	ordered := []porcupine.Operation{op(0, 0, 1, r, rd("5")), op(1, 2, 3, r, rd("4"))}
	if got := staleReads(ordered, v); len(got) != 1 || got[0].Version != 4 || got[0].Seen != 5 {
		t.Errorf("a read of version 4 after one of version 5 ended: got %v, want one stale read", got)
	}
	overlapping := []porcupine.Operation{op(0, 0, 3, r, rd("5")), op(1, 2, 4, r, rd("4"))}
	if got := staleReads(overlapping, v); len(got) != 0 {
		t.Errorf("overlapping reads: got %v, want none", got)
	}
}

// TestPruneRefusedCAS checks which refused compare-and-sets may leave a history: those a
// read that ended before they returned shows stale, not the others.
func TestPruneRefusedCAS(t *testing.T) {
	r := opInput{Kind: opRead}
	cas := func(etag string) opInput { return opInput{Kind: opCAS, Key: "user.r0", Value: "x", ETag: tag(etag)} }
	fail := opOutput{Outcome: outFail}
	ops := []porcupine.Operation{
		op(0, 0, 1, r, read("a", "e1")),
		op(1, 2, 5, cas("e0"), fail), // a read saw version 1 before it returned: prunable
		op(2, 0, 1, cas("e1"), fail), // nothing newer than 1 seen before it returned: kept
		op(3, 6, 9, r, read("b", "e2")),
		op(4, 7, 8, cas("e1"), fail), // the read of version 2 ended after it: kept
	}
	got := pruneRefusedCAS(ops)
	if len(got) != 4 || got[1].ClientId != 2 || got[3].ClientId != 4 {
		t.Errorf("kept clients %v, want 0 2 3 4", clients(got))
	}
	// The pruned history keeps what it decides: a refused CAS on the current version.
	bad := []porcupine.Operation{op(0, 0, 1, r, read("", "e0")), op(0, 2, 3, cas("e0"), fail)}
	if porcupine.CheckOperations(newModel(map[string]string{"user.r0": ""}, 0, 0), pruneRefusedCAS(bad)) {
		t.Error("a CAS refused on the current version was pruned away")
	}
}

func clients(ops []porcupine.Operation) []int {
	var out []int
	for _, op := range ops {
		out = append(out, op.ClientId)
	}
	return out
}
