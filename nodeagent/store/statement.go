package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Statement is one SQL statement of a write Request.
type Statement struct {
	// SQL is a single statement; it must be deterministic (see checkSQL).
	SQL string `json:"sql"`
	// Args are bound to the statement's parameters: nil, bool, int64 (and
	// int), float64 and string only; anything else is rejected with ErrBadArg
	// before it enters the log.
	Args []any `json:"args,omitempty"`
	// Expect, if set, is the exact RowsAffected the statement must produce,
	// else the whole Request fails with ErrConflict. Only an INSERT, UPDATE,
	// DELETE or REPLACE statement may carry it (sqlite3_changes is not reset
	// by other statements, so their count would differ between replicas);
	// anything else is rejected with ErrBadArg before it enters the log.
	Expect *int64 `json:"expect,omitempty"`
}

// Request is a list of statements applied atomically (one SAVEPOINT).
type Request []Statement

// Result is the outcome of one statement.
type Result struct {
	// LastInsertID is sqlite3_last_insert_rowid after the statement.
	LastInsertID int64 `json:"last_insert_id"`
	// RowsAffected is sqlite3_changes after the statement.
	RowsAffected int64 `json:"rows_affected"`
}

// Int64 returns a pointer to n, handy for Statement.Expect.
func Int64(n int64) *int64 { return &n }

// UnmarshalJSON decodes a statement keeping integer arguments exact: a JSON
// number without fraction or exponent becomes int64, any other number
// float64 (encoding/json alone would turn every number into float64).
func (s *Statement) UnmarshalJSON(data []byte) error {
	var raw struct {
		SQL    string `json:"sql"`
		Args   []any  `json:"args,omitempty"`
		Expect *int64 `json:"expect,omitempty"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	args, err := numbersToArgs(raw.Args)
	if err != nil {
		return err
	}
	s.SQL, s.Args, s.Expect = raw.SQL, args, raw.Expect
	return nil
}

// numbersToArgs converts the json.Number values a UseNumber decoder produced.
func numbersToArgs(in []any) ([]any, error) {
	if in == nil {
		return nil, nil
	}
	out := make([]any, len(in))
	for i, a := range in {
		n, ok := a.(json.Number)
		if !ok {
			out[i] = a
			continue
		}
		if v, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
			out[i] = v
			continue
		}
		f, err := n.Float64()
		if err != nil {
			return nil, fmt.Errorf("args[%d]: %w", i, err)
		}
		out[i] = f
	}
	return out, nil
}

// normalizeArgs checks the argument types and converts int to int64, in place.
func normalizeArgs(args []any) error {
	for i, a := range args {
		switch v := a.(type) {
		case nil, bool, int64, float64, string:
		case int:
			args[i] = int64(v)
		default:
			return fmt.Errorf("args[%d]: unsupported type %T (want nil, bool, int64, float64 or string): %w", i, a, ErrBadArg)
		}
	}
	return nil
}

// validate checks and normalises every statement of req before it enters the
// log. Args slices are copied so the caller's slices are not modified.
func (req Request) validate() (Request, error) { return req.validateWith(lex) }

// validateWith is validate with the lexer to use (a Store's cache).
func (req Request) validateWith(lexer func(string) ([]token, error)) (Request, error) {
	if len(req) == 0 {
		return nil, fmt.Errorf("empty request: %w", ErrBadArg)
	}
	out := make(Request, len(req))
	for i, st := range req {
		st.Args = append([]any(nil), st.Args...)
		if err := normalizeArgs(st.Args); err != nil {
			return nil, fmt.Errorf("statement %d: %w", i, err)
		}
		if err := checkSQLWith(lexer, st.SQL, st.Args); err != nil {
			return nil, fmt.Errorf("statement %d: %w", i, err)
		}
		if err := checkExpect(lexer, st); err != nil {
			return nil, fmt.Errorf("statement %d: %w", i, err)
		}
		out[i] = st
	}
	return out, nil
}
