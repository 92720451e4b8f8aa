// Package jepsen is a Jepsen-style test of the cluster's client API: several clients per
// member, each talking HTTPS to its member with a trusted client certificate, read (GET
// /1.0), write (PATCH user.*) and compare-and-set (PATCH with If-Match, right after a read,
// mostly on one hot key) while a nemesis kills, pauses and partitions members, fills a
// leader's disk, shifts a member's clock and attempts a recovery with the majority alive.
// Partitions cut member-to-member paths (nftables in each member's namespace) and leave
// every member reachable by its clients, so a deposed leader keeps getting requests; the
// aimed faults send it reads after a new leader acknowledged a write.
//
// Every window's history is checked twice: a version-order check (a read may not return an
// older configuration version than a read that ended before it began) and porcupine
// against the configuration model. Ambiguous updates stay open until a read shows them
// applied; a window porcupine cannot decide gets a longer check at the end and fails the
// run if still undecided. After each window every member's own replica (its SQLite file,
// read inside its mount namespace) must reach the cluster's version with the same
// configuration, holding every acknowledged write.
//
// TestMutations proves the suite can fail: agents built with a known bug (build tags
// jepsen_mutation_*, nodeagent/store/mutation_*.go) must each produce a violation.
// The short version runs in `go test`; `make soak` (TestSoak with -soak.* flags) runs a
// long one and prints its summary; seeds are random unless -soak.seed is given.
package jepsen

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// opKind is what a client did.
type opKind int

const (
	opRead  opKind = iota + 1 // GET /1.0: the register keys and the ETag
	opWrite                   // PATCH key=value, no precondition
	opCAS                     // PATCH key=value with If-Match: the ETag of a read
)

// outcome is how an operation ended.
type outcome int

const (
	outOK      outcome = iota + 1 // acknowledged
	outFail                       // definitely not applied (412 for a CAS)
	outUnknown                    // ambiguous: timeout, reset, 5xx after sending
)

// opInput is one operation's call. For a write and a CAS, Key may be a unique (non-register)
// key: it changes no register but bumps the configuration version, as every write does.
type opInput struct {
	Kind  opKind
	Key   string
	Value string
	ETag  string // CAS: the ETag it is conditional on
}

// opOutput is one operation's result. A read's Values holds every register key (absent
// keys as ""), its ETag what the member returned.
type opOutput struct {
	Outcome outcome
	Values  map[string]string
	ETag    string
}

// configState is the model's state: the registers and the global configuration version.
// Every write bumps the version by one, and an ETag of GET /1.0 carries the version it was
// read at in clear ("V-hash", etagVersion): a read must return the current version, and a
// compare-and-set succeeds exactly when its ETag names the current version. A small state
// with no history in it lets porcupine's cache merge the orders of concurrent operations.
//
// pending is a budget of invisible updates: ambiguous updates that were applied in the
// window (the version count says how many) although no read ever returned their values.
// They left the history; the model may spend them at any step, as version bumps only.
type configState struct {
	regs    map[string]string
	version int64
	pending int64
}

// newModel is the linearizable specification of the configuration for the register keys:
// a read sees the current registers and version, a write sets one key and bumps the
// version, a CAS succeeds exactly when the version is still the one its ETag was read at.
// An ambiguous write or CAS may or may not have happened. initial and version are the
// registers' values and the configuration version when the history starts, pending the
// number of invisible updates (configState).
func newModel(initial map[string]string, version, pending int64) porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Init: func() []any {
			return []any{configState{regs: maps.Clone(initial), version: version, pending: pending}}
		},
		Step:              step,
		Equal:             func(a, b any) bool { return stateKey(a.(configState)) == stateKey(b.(configState)) },
		DescribeOperation: describeOp,
		DescribeState: func(s any) string {
			st := s.(configState)
			return describeRegs(st.regs) + fmt.Sprintf(" v%d (+%d invisible)", st.version, st.pending)
		},
	}
	return nm.ToModel()
}

// spend returns the state after j invisible updates.
func (s configState) spend(j int64) configState {
	return configState{regs: s.regs, version: s.version + j, pending: s.pending - j}
}

func step(state, input, output any) []any {
	s, in, out := state.(configState), input.(opInput), output.(opOutput)
	// Invisible updates touch no register and commute with writes (every update bumps the
	// version by one), so they are spent lazily: right before an operation that needs the
	// version moved, and only as many as it needs. A read spends exactly up to the version
	// it names; a compare-and-set that took effect, up to its ETag's version; a refused one
	// needs none unless its ETag names the current version (then one); an ambiguous one
	// either had no effect (none) or took effect (up to its ETag's version). Spending more
	// at that point is never needed: a later operation that needs it spends it then. Eager
	// spending (every count at every compare-and-set) multiplied the states porcupine
	// explored, and windows with a paused leader's timed-out updates went undecided.
	spend := []int64{0}
	switch in.Kind {
	case opRead:
		v, err := etagVersion(out.ETag)
		if err != nil || v < s.version || v > s.version+s.pending {
			return nil
		}
		spend = []int64{v - s.version}
	case opCAS:
		spend = casSpends(s, in, out)
	}
	var next []any
	for _, j := range spend {
		for _, n := range stepAt(s.spend(j), in, out) {
			next = append(next, n)
		}
	}
	return next
}

// casSpends lists how many invisible updates to spend before a compare-and-set (step).
func casSpends(s configState, in opInput, out opOutput) []int64 {
	v, err := etagVersion(in.ETag)
	if err != nil {
		return []int64{0}
	}
	toMatch := v - s.version // spending this many makes the ETag current
	canMatch := toMatch >= 0 && toMatch <= s.pending
	switch out.Outcome {
	case outOK:
		if !canMatch {
			return nil
		}
		return []int64{toMatch}
	case outFail:
		if toMatch != 0 {
			return []int64{0}
		}
		if s.pending == 0 {
			return nil
		}
		return []int64{1}
	default:
		if !canMatch || toMatch == 0 {
			return []int64{0}
		}
		return []int64{0, toMatch}
	}
}

// stepAt is step with no invisible update spent before the operation.
func stepAt(s configState, in opInput, out opOutput) []configState {
	switch in.Kind {
	case opRead:
		for k, v := range s.regs {
			if out.Values[k] != v {
				return nil
			}
		}
		if v, err := etagVersion(out.ETag); err != nil || v != s.version {
			return nil
		}
		return []configState{s}
	case opWrite:
		if out.Outcome == outUnknown {
			return []configState{s, s.apply(in)}
		}
		return []configState{s.apply(in)}
	case opCAS:
		v, err := etagVersion(in.ETag)
		matches := err == nil && v == s.version
		switch out.Outcome {
		case outOK:
			if matches {
				return []configState{s.apply(in)}
			}
			return nil
		case outFail:
			if matches {
				return nil
			}
			return []configState{s}
		default:
			if matches {
				return []configState{s, s.apply(in)}
			}
			return []configState{s}
		}
	}
	return nil
}

// apply returns the state after a write of in (copy on write: states are shared).
func (s configState) apply(in opInput) configState {
	n := configState{regs: s.regs, version: s.version + 1, pending: s.pending}
	if _, ok := s.regs[in.Key]; ok {
		n.regs = maps.Clone(s.regs)
		n.regs[in.Key] = in.Value
	}
	return n
}

// etagVersion is the global configuration version an ETag of GET /1.0 names ("V-hash").
func etagVersion(etag string) (int64, error) {
	v, _, _ := strings.Cut(strings.Trim(etag, `"`), "-")
	return strconv.ParseInt(v, 10, 64)
}

// stateKey is a canonical string of a state, for Equal.
func stateKey(s configState) string {
	return fmt.Sprintf("%d|%d|%s", s.version, s.pending, describeRegs(s.regs))
}

func describeRegs(regs map[string]string) string {
	parts := make([]string, 0, len(regs))
	for _, k := range slices.Sorted(maps.Keys(regs)) {
		parts = append(parts, k+"="+regs[k])
	}
	return strings.Join(parts, " ")
}

func describeOp(input, output any) string {
	in, out := input.(opInput), output.(opOutput)
	res := map[outcome]string{outOK: "ok", outFail: "fail", outUnknown: "unknown"}[out.Outcome]
	switch in.Kind {
	case opRead:
		return fmt.Sprintf("read → %s etag %.8s", describeRegs(out.Values), strings.Trim(out.ETag, `"`))
	case opWrite:
		if out.Outcome == 0 {
			return fmt.Sprintf("write %s=%s", in.Key, in.Value)
		}
		return fmt.Sprintf("write %s=%s → %s", in.Key, in.Value, res)
	default:
		return fmt.Sprintf("cas[%.8s] %s=%s → %s", strings.Trim(in.ETag, `"`), in.Key, in.Value, res)
	}
}

// regOp is one operation on one register, for the per-key check.
type regOp struct {
	Key   string
	Write bool
	Value string // written, or read
}

// registerModel is a set of independent registers (one partition per key): the weaker check
// used when the whole-configuration search gives up. It leaves out what couples the keys
// (the ETag version), so it says nothing about compare-and-set refusals; it does check that
// every read returns the latest write of its key, acknowledged compare-and-sets included.
func registerModel() porcupine.Model {
	return porcupine.Model{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			byKey := map[string][]porcupine.Operation{}
			for _, op := range history {
				k := op.Input.(regOp).Key
				byKey[k] = append(byKey[k], op)
			}
			var out [][]porcupine.Operation
			for _, k := range slices.Sorted(maps.Keys(byKey)) {
				out = append(out, byKey[k])
			}
			return out
		},
		Init: func() any { return "" },
		Step: func(state, input, output any) (bool, any) {
			in := input.(regOp)
			if in.Write {
				return true, in.Value
			}
			return output.(string) == state.(string), state
		},
		DescribeOperation: func(input, output any) string {
			in := input.(regOp)
			if in.Write {
				return fmt.Sprintf("%s := %s", in.Key, in.Value)
			}
			return fmt.Sprintf("%s → %s", in.Key, output)
		},
	}
}

// registerHistory projects a configuration history on the register keys: each read becomes
// one read per key, acknowledged writes and compare-and-sets become writes, refused
// compare-and-sets disappear (they had no effect), ambiguous ones stay ambiguous, and the
// initial values are written first.
func registerHistory(initial map[string]string, ops []porcupine.Operation) []porcupine.Operation {
	var out []porcupine.Operation
	for _, k := range slices.Sorted(maps.Keys(initial)) {
		out = append(out, porcupine.Operation{ClientId: 0, Input: regOp{Key: k, Write: true, Value: initial[k]}, Output: "", Call: -2, Return: -1})
	}
	for _, op := range ops {
		in, res := op.Input.(opInput), op.Output.(opOutput)
		switch {
		case in.Kind == opRead:
			for _, k := range slices.Sorted(maps.Keys(initial)) {
				out = append(out, porcupine.Operation{ClientId: op.ClientId, Input: regOp{Key: k}, Output: res.Values[k], Call: op.Call, Return: op.Return})
			}
		case res.Outcome == outFail:
		case slices.Contains(slices.Collect(maps.Keys(initial)), in.Key):
			out = append(out, porcupine.Operation{ClientId: op.ClientId, Input: regOp{Key: in.Key, Write: true, Value: in.Value}, Output: "", Call: op.Call, Return: op.Return})
		}
	}
	return out
}

// staleRead is a read that returned an older configuration version than a read that ended
// before it began.
type staleRead struct {
	Read, Earlier porcupine.Operation
	Version, Seen int64
}

// String describes the stale read for a failure message.
func (s staleRead) String() string {
	return fmt.Sprintf("client %d's read [%v, %v] returned config version %d, but client %d's read that ended at %v, before it began, had returned version %d",
		s.Read.ClientId, time.Duration(s.Read.Call), time.Duration(s.Read.Return), s.Version, s.Earlier.ClientId, time.Duration(s.Earlier.Return), s.Seen)
}

// staleReads is a fast check of one consequence of linearizability that needs no search:
// the configuration version only grows, so a read must not return an older version than a
// read that completed before it was called. The version is the one an ETag carries in
// clear (etagVersion). It returns the first few offending reads.
func staleReads(ops []porcupine.Operation, etagVersion func(string) (int64, error)) []staleRead {
	type read struct {
		op  porcupine.Operation
		ver int64
	}
	var reads []read
	for _, op := range ops {
		if op.Input.(opInput).Kind != opRead {
			continue
		}
		if v, err := etagVersion(op.Output.(opOutput).ETag); err == nil {
			reads = append(reads, read{op, v})
		}
	}
	byReturn := slices.Clone(reads)
	slices.SortFunc(byReturn, func(a, b read) int { return cmp.Compare(a.op.Return, b.op.Return) })
	slices.SortFunc(reads, func(a, b read) int { return cmp.Compare(a.op.Call, b.op.Call) })
	var out []staleRead
	var best read
	best.ver = -1
	j := 0
	for _, r := range reads {
		for ; j < len(byReturn) && byReturn[j].op.Return < r.op.Call; j++ {
			if byReturn[j].ver > best.ver {
				best = byReturn[j]
			}
		}
		if best.ver > r.ver && len(out) < 5 {
			out = append(out, staleRead{Read: r.op, Earlier: best.op, Version: r.ver, Seen: best.ver})
		}
	}
	return out
}

// pruneRefusedCAS leaves out of a history the refused compare-and-sets that every
// linearization can place somewhere harmless: a refused CAS changes nothing and only needs a
// point in its interval where the version differs from its ETag's. When a read that ended
// before the CAS returned had seen a newer version than the ETag's, the versions from that
// read's point on are all newer (they only grow), so such a point exists whatever the order
// of the rest. Refused CASes are a third of a busy history and each floats over a wide
// interval, which is what makes porcupine's search slow; the ones kept are the ones that
// can still reveal a bug.
func pruneRefusedCAS(ops []porcupine.Operation) []porcupine.Operation {
	type read struct {
		ret int64
		ver int64
	}
	var reads []read
	for _, op := range ops {
		if op.Input.(opInput).Kind != opRead {
			continue
		}
		if v, err := etagVersion(op.Output.(opOutput).ETag); err == nil {
			reads = append(reads, read{op.Return, v})
		}
	}
	slices.SortFunc(reads, func(a, b read) int { return cmp.Compare(a.ret, b.ret) })
	// newest[i] is the newest version seen by reads[0..i].
	newest := make([]int64, len(reads))
	for i, r := range reads {
		newest[i] = r.ver
		if i > 0 {
			newest[i] = max(newest[i], newest[i-1])
		}
	}
	seenBefore := func(t int64) int64 {
		i, _ := slices.BinarySearchFunc(reads, t, func(r read, t int64) int { return cmp.Compare(r.ret, t) })
		if i == 0 {
			return -1
		}
		return newest[i-1]
	}
	return slices.DeleteFunc(slices.Clone(ops), func(op porcupine.Operation) bool {
		in := op.Input.(opInput)
		if in.Kind != opCAS || op.Output.(opOutput).Outcome != outFail {
			return false
		}
		v, err := etagVersion(in.ETag)
		return err == nil && seenBefore(op.Return) > v
	})
}
