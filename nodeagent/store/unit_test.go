package store

import (
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

func TestCodecRoundTrip(t *testing.T) {
	reqs := []Request{
		{{SQL: "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", Args: []any{nil, true, false, int64(math.MinInt64), math.Pi, "héllo\x00"}, Expect: Int64(1)}},
		{{SQL: "DELETE FROM t"}, {SQL: "UPDATE t SET x = ?", Args: []any{int64(-1)}, Expect: Int64(0)}},
	}
	var enc [][]byte
	for _, r := range reqs {
		enc = append(enc, encodeRequest(nil, r))
	}
	data := encodeEntry(enc)
	got, err := decodeEntry(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, reqs) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", got, reqs)
	}
	for cut := 0; cut < len(data); cut++ {
		if _, err := decodeEntry(data[:cut]); !errors.Is(err, errCorruptEntry) {
			t.Fatalf("truncated at %d: err = %v, want errCorruptEntry", cut, err)
		}
	}
	if _, err := decodeEntry(append(data, 0)); !errors.Is(err, errCorruptEntry) {
		t.Fatalf("trailing byte accepted")
	}
}

func TestCheckSQL(t *testing.T) {
	ok := []struct {
		sql  string
		args []any
	}{
		{"INSERT INTO t (random, now) VALUES (1, 'now')", nil},
		{`SELECT "random"(1)`, nil}, // quoted identifier, not the function
		{"INSERT INTO t VALUES (datetime('2024-01-01 10:00:00', '+1 day'))", nil},
		{"INSERT INTO t VALUES (strftime('%s', ?))", []any{"2024-01-01"}},
		{"UPDATE t SET x = 'random()' -- random()\n WHERE id = 1;", nil},
		{"/* now */ CREATE TABLE t (created TEXT NOT NULL DEFAULT '1970-01-01')", nil},
		{"INSERT INTO t VALUES ('a;b');;", nil},
		{"WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", nil},
	}
	for _, c := range ok {
		if err := checkSQL(c.sql, c.args); err != nil {
			t.Errorf("checkSQL(%q) = %v, want ok", c.sql, err)
		}
	}
	bad := []struct {
		sql  string
		args []any
		why  string
	}{
		{"INSERT INTO t VALUES (random())", nil, "random"},
		{"INSERT INTO t VALUES (RANDOMBLOB (16))", nil, "randomblob"},
		{"INSERT INTO t VALUES (last_insert_rowid())", nil, "last_insert_rowid"},
		{"INSERT INTO t VALUES (datetime('now'))", nil, "now"},
		{"INSERT INTO t VALUES (DateTime( 'NOW' , 'localtime'))", nil, "NOW"},
		{"INSERT INTO t VALUES (date())", nil, "without arguments"},
		{"INSERT INTO t VALUES (julianday(?))", []any{"now"}, "now"},
		{"INSERT INTO t VALUES (datetime(?, 'utc'))", []any{"2024-01-01"}, "utc"},
		{"INSERT INTO t VALUES (CURRENT_TIMESTAMP)", nil, "CURRENT_TIMESTAMP"},
		{"CREATE TABLE t (c DEFAULT current_date)", nil, "CURRENT_DATE"},
		{"begin", nil, "BEGIN"},
		{"  -- c\n COMMIT", nil, "COMMIT"},
		{"PRAGMA synchronous = OFF", nil, "PRAGMA"},
		{"ATTACH 'x.db' AS x", nil, "ATTACH"},
		{"INSERT INTO t VALUES (1); DROP TABLE t", nil, "one statement"},
		{"", nil, "empty"},
		{"-- only a comment", nil, "empty"},
		{"INSERT INTO t VALUES ('unterminated)", nil, "unterminated"},
	}
	for _, c := range bad {
		err := checkSQL(c.sql, c.args)
		if !errors.Is(err, ErrBadArg) || !strings.Contains(err.Error(), c.why) {
			t.Errorf("checkSQL(%q) = %v, want ErrBadArg mentioning %q", c.sql, err, c.why)
		}
	}
}

func TestStatementJSONKeepsIntegers(t *testing.T) {
	var req Request
	in := `[{"sql":"INSERT INTO t VALUES (?, ?, ?, ?, ?)","args":[9007199254740993, 1.5, "s", null, true],"expect":1}]`
	if err := json.Unmarshal([]byte(in), &req); err != nil {
		t.Fatal(err)
	}
	want := []any{int64(9007199254740993), 1.5, "s", nil, true}
	if !reflect.DeepEqual(req[0].Args, want) || *req[0].Expect != 1 {
		t.Fatalf("decoded %#v", req[0])
	}
	out, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var again Request
	if err := json.Unmarshal(out, &again); err != nil || !reflect.DeepEqual(again, req) {
		t.Fatalf("re-decoded %#v, %v", again, err)
	}
}

func TestValidateNormalizesArgs(t *testing.T) {
	orig := Request{{SQL: "INSERT INTO t VALUES (?)", Args: []any{7}}}
	got, err := orig.validate()
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Args[0] != int64(7) || orig[0].Args[0] != 7 {
		t.Fatalf("validate: got %T, caller's slice now %T", got[0].Args[0], orig[0].Args[0])
	}
	if _, err := (Request{{SQL: "SELECT ?", Args: []any{uint8(1)}}}).validate(); !errors.Is(err, ErrBadArg) {
		t.Fatalf("uint8 accepted: %v", err)
	}
}

func TestTimingsValidate(t *testing.T) {
	if err := DefaultTimings().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	bad := DefaultTimings()
	bad.LeaderLease = 2 * bad.Heartbeat
	if err := bad.Validate(); !errors.Is(err, ErrBadArg) || !strings.Contains(err.Error(), "leader_lease") {
		t.Fatalf("lease > heartbeat: %v", err)
	}
	bad = DefaultTimings()
	bad.Election = bad.Heartbeat / 2
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "timings.election") {
		t.Fatalf("election < heartbeat: %v", err)
	}
}

// newTestFSM opens an FSM on a fresh directory.
func newTestFSM(t *testing.T) *fsm {
	t.Helper()
	f, err := newFSM(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.close() })
	return f
}

// commandLog builds a command entry holding reqs.
func commandLog(index uint64, reqs ...Request) *raft.Log {
	var enc [][]byte
	for _, r := range reqs {
		enc = append(enc, encodeRequest(nil, r))
	}
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: encodeEntry(enc)}
}

// TestApplyBatchIsolationAndSkip drives the FSM directly: several entries in
// one batch, a failing request among others in one entry, a no-op entry the
// FSM never sees, and a replay of already-applied entries.
func TestApplyBatchIsolationAndSkip(t *testing.T) {
	f := newTestFSM(t)
	batch := []*raft.Log{
		commandLog(1, stmt("CREATE TABLE u (k TEXT UNIQUE)")),
		{Index: 2, Term: 1, Type: raft.LogConfiguration},
		commandLog(3,
			stmt("INSERT INTO u VALUES ('a')"),
			Request{{SQL: "INSERT INTO u VALUES ('b')"}, {SQL: "INSERT INTO u VALUES ('a')"}}, // fails: UNIQUE
			Request{{SQL: "INSERT INTO u VALUES ('c')", Expect: Int64(1)}},
			Request{{SQL: "DELETE FROM u WHERE k = 'zz'", Expect: Int64(1)}}, // conflict
		),
	}
	out := f.ApplyBatch(batch)
	res := out[2].(*entryResult)
	if res.err != nil || len(res.outcomes) != 4 {
		t.Fatalf("entry 3: %+v", res)
	}
	if res.outcomes[0].err != nil || res.outcomes[2].err != nil {
		t.Fatalf("good requests failed: %v / %v", res.outcomes[0].err, res.outcomes[2].err)
	}
	if res.outcomes[1].err == nil || !errors.Is(res.outcomes[3].err, ErrConflict) {
		t.Fatalf("bad requests: %v / %v", res.outcomes[1].err, res.outcomes[3].err)
	}
	if p, _, _ := f.state(); p != (position{3, 1}) {
		t.Fatalf("applied = %+v, want {3 1}", p)
	}
	if n := f.carefulPasses.Load(); n != 1 {
		t.Errorf("a batch with failing requests was applied with savepoints %d times, want once (after the pass without)", n)
	}
	// Replay after a "restart": entries 1-3 are skipped, 4 applies once.
	out = f.ApplyBatch(append(batch, commandLog(4, stmt("INSERT INTO u VALUES ('d')"))))
	if out[0] != nil || out[2] != nil {
		t.Fatalf("replayed entries were applied again: %v", out)
	}
	if r := out[3].(*entryResult); r.err != nil || r.outcomes[0].err != nil || r.outcomes[0].results[0].RowsAffected != 1 || r.outcomes[0].results[0].LastInsertID != 3 {
		t.Errorf("entry 4, applied without savepoints: %+v", r)
	}
	if n := f.carefulPasses.Load(); n != 1 {
		t.Errorf("a batch whose requests all succeed was applied again with savepoints (%d passes)", n)
	}
	var keys string
	if err := f.conn.QueryRowContext(t.Context(), "SELECT group_concat(k, ',') FROM (SELECT k FROM u ORDER BY k)").Scan(&keys); err != nil {
		t.Fatal(err)
	}
	if keys != "a,c,d" {
		t.Fatalf("rows = %s, want a,c,d", keys)
	}
	if pos, err := f.readApplied(); err != nil || pos != (position{4, 1}) {
		t.Fatalf("stored applied position = %+v, %v", pos, err)
	}
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	src := newTestFSM(t)
	src.ApplyBatch([]*raft.Log{
		commandLog(1, stmt("CREATE TABLE t (x)")),
		commandLog(2, stmt("INSERT INTO t VALUES (?)", strings.Repeat("x", 100000))),
	})
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	data := snap.(*dbSnapshot).data
	dst := newTestFSM(t)
	dst.ApplyBatch([]*raft.Log{commandLog(1, stmt("CREATE TABLE other (y)"))})
	if err := dst.Restore(nopCloser{strings.NewReader(string(data))}); err != nil {
		t.Fatal(err)
	}
	if p, _, _ := dst.state(); p.index != 2 {
		t.Fatalf("applied after restore = %+v, want index 2", p)
	}
	var n int
	if err := dst.conn.QueryRowContext(t.Context(), "SELECT length(x) FROM t").Scan(&n); err != nil || n != 100000 {
		t.Fatalf("restored row: %d, %v", n, err)
	}
	if err := dst.conn.QueryRowContext(t.Context(), "SELECT count(*) FROM other").Scan(&n); err == nil {
		t.Fatalf("table from before the restore survived")
	}
}

// nopCloser adds Close to a reader.
type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

// A Store checks requests with its lexCache: a statement seen before gets the verdict it
// got the first time (its tokens are reused, with the new arguments), good or bad.
func TestLexCacheSameVerdicts(t *testing.T) {
	var c lexCache
	for range 2 {
		if _, err := (Request{{SQL: "INSERT INTO t VALUES (?)", Args: []any{"x"}, Expect: Int64(1)}}).validateWith(c.tokens); err != nil {
			t.Errorf("good request: %v", err)
		}
		if _, err := (Request{{SQL: "SELECT random()"}}).validateWith(c.tokens); !errors.Is(err, ErrBadArg) {
			t.Errorf("random(): %v, want ErrBadArg", err)
		}
		if _, err := (Request{{SQL: "INSERT INTO t VALUES (date(?))", Args: []any{"now"}}}).validateWith(c.tokens); !errors.Is(err, ErrBadArg) {
			t.Errorf("date('now') as an argument: %v, want ErrBadArg", err)
		}
		if _, err := (Request{{SQL: "SELECT 1", Expect: Int64(1)}}).validateWith(c.tokens); !errors.Is(err, ErrBadArg) {
			t.Errorf("Expect on a SELECT: %v, want ErrBadArg", err)
		}
	}
	if _, err := (Request{{SQL: "INSERT INTO t VALUES (date(?))", Args: []any{"2020-01-01"}}}).validateWith(c.tokens); err != nil {
		t.Errorf("a cached statement with a fixed date: %v", err)
	}
}

// Statements without arguments are kept prepared by the FSM only when they return no rows;
// a kept statement runs again in the next batches with the same effect.
func TestNoArgStatementsPrepared(t *testing.T) {
	for q, want := range map[string]bool{
		"BEGIN IMMEDIATE": true, "COMMIT": true,
		"UPDATE meta SET value = value + 1 WHERE key = 'v'": true,
		"INSERT INTO u VALUES ('a')":                        true,
		"INSERT INTO u VALUES ('a') RETURNING k":            false,
		"SELECT 1":                                          false,
		"WITH x AS (SELECT 1) DELETE FROM u":                false,
	} {
		if got := rowless(q); got != want {
			t.Errorf("rowless(%q) = %v, want %v", q, got, want)
		}
	}
	f := newTestFSM(t)
	f.ApplyBatch([]*raft.Log{commandLog(1, stmt("CREATE TABLE n (v INTEGER)"), stmt("INSERT INTO n VALUES (0)"))})
	for i := uint64(2); i < 5; i++ {
		out := f.ApplyBatch([]*raft.Log{commandLog(i, stmt("UPDATE n SET v = v + 1"), stmt("SELECT v FROM n"))})
		if r := out[0].(*entryResult); r.err != nil || r.outcomes[0].err != nil || r.outcomes[1].err != nil || r.outcomes[0].results[0].RowsAffected != 1 {
			t.Fatalf("entry %d: %+v", i, r)
		}
	}
	var v int
	if err := f.conn.QueryRowContext(t.Context(), "SELECT v FROM n").Scan(&v); err != nil || v != 3 {
		t.Fatalf("after three batches v = %d, %v; want 3", v, err)
	}
	if f.noArgs["UPDATE n SET v = v + 1"] == nil || f.noArgs["SELECT v FROM n"] != nil {
		t.Errorf("prepared statements kept: %v", f.noArgs)
	}
}
