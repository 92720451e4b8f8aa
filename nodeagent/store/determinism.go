package store

import (
	"fmt"
	"strings"
)

// Every replica must reach the same database from the same log, so SQL that
// can evaluate differently on two replicas (or on one replica before and after
// a restart) is rejected before it enters the log. The check is lexical: it
// sees function calls and keywords written in the statement, not values read
// from columns at apply time (see DESIGN.md).

// nondeterministicFuncs are SQLite functions whose result depends on more than
// their arguments and the database content.
var nondeterministicFuncs = map[string]string{
	"random":            "returns a random number",
	"randomblob":        "returns random bytes",
	"changes":           "depends on the connection's history",
	"total_changes":     "depends on the connection's history",
	"last_insert_rowid": "depends on the connection's history; choose IDs before the write",
}

// dateFuncs read the clock when given 'now' (or no argument) and the local
// time zone when given 'localtime' or 'utc'.
var dateFuncs = map[string]bool{
	"date": true, "time": true, "datetime": true, "julianday": true,
	"unixepoch": true, "strftime": true, "timediff": true,
}

// clockWords are the date-function arguments that read the clock or time zone.
var clockWords = map[string]bool{"now": true, "localtime": true, "utc": true}

// clockKeywords read the clock when the statement runs.
var clockKeywords = map[string]bool{
	"current_time": true, "current_date": true, "current_timestamp": true,
}

// forbiddenFirstWords would break the FSM's transaction/savepoint structure or
// change connection state that replicas do not share.
var forbiddenFirstWords = map[string]bool{
	"begin": true, "commit": true, "end": true, "rollback": true,
	"savepoint": true, "release": true, "attach": true, "detach": true,
	"vacuum": true, "pragma": true,
}

// checkSQL rejects, with ErrBadArg, a statement that is empty, holds several
// statements, controls transactions, or is not deterministic.
func checkSQL(sql string, args []any) error { return checkSQLWith(lex, sql, args) }

// checkSQLWith is checkSQL with the lexer to use (a Store's cache).
func checkSQLWith(lexer func(string) ([]token, error), sql string, args []any) error {
	toks, err := lexer(sql)
	if err != nil {
		return fmt.Errorf("%w: %w", err, ErrBadArg)
	}
	if len(toks) == 0 {
		return fmt.Errorf("empty SQL: %w", ErrBadArg)
	}
	if err := checkShape(toks); err != nil {
		return fmt.Errorf("%w: %w", err, ErrBadArg)
	}
	if err := checkClock(toks, args); err != nil {
		return fmt.Errorf("%w: %w", err, ErrBadArg)
	}
	return nil
}

// expectWords are the statements whose sqlite3_changes() count is their own:
// only they may carry an Expect.
var expectWords = map[string]bool{"insert": true, "update": true, "delete": true, "replace": true}

// checkExpect rejects, with ErrBadArg, an Expect on a statement that is not an
// INSERT, UPDATE, DELETE or REPLACE: SQLite leaves sqlite3_changes() at the
// previous statement's count for anything else (SELECT, CREATE, a WITH
// prefix...), a count that depends on what ran before on that connection and
// so differs between replicas and across restarts.
func checkExpect(lexer func(string) ([]token, error), st Statement) error {
	if st.Expect == nil {
		return nil
	}
	toks, err := lexer(st.SQL)
	if err != nil || len(toks) == 0 {
		return fmt.Errorf("expect: empty or unreadable SQL: %w", ErrBadArg)
	}
	if toks[0].kind != tokIdent || !expectWords[toks[0].text] {
		return fmt.Errorf("expect is only allowed on INSERT, UPDATE, DELETE or REPLACE, not %q: %w", toks[0].text, ErrBadArg)
	}
	return nil
}

// checkShape enforces one statement that is not transaction control.
func checkShape(toks []token) error {
	if toks[0].kind == tokIdent && forbiddenFirstWords[toks[0].text] {
		return fmt.Errorf("%s statements are not allowed in a write request", strings.ToUpper(toks[0].text))
	}
	for i, t := range toks {
		if t.is(";") && i+1 < len(toks) && !toks[i+1].is(";") {
			return fmt.Errorf("offset %d: only one statement per Statement is allowed", toks[i+1].pos)
		}
	}
	return nil
}

// checkClock rejects non-deterministic functions, clock keywords and date
// functions that read the clock or the local time zone.
func checkClock(toks []token, args []any) error {
	usesDate := false
	for i, t := range toks {
		if t.kind != tokIdent {
			continue
		}
		if clockKeywords[t.text] {
			return fmt.Errorf("offset %d: %s reads the clock; pass the time as an argument", t.pos, strings.ToUpper(t.text))
		}
		if i+1 >= len(toks) || !toks[i+1].is("(") {
			continue
		}
		if why, bad := nondeterministicFuncs[t.text]; bad {
			return fmt.Errorf("offset %d: %s() %s", t.pos, t.text, why)
		}
		if dateFuncs[t.text] {
			if i+2 < len(toks) && toks[i+2].is(")") {
				return fmt.Errorf("offset %d: %s() without arguments reads the clock", t.pos, t.text)
			}
			usesDate = true
		}
	}
	if !usesDate {
		return nil
	}
	return checkClockWords(toks, args)
}

// checkClockWords rejects 'now', 'localtime' and 'utc' as literals or
// arguments of a statement that calls a date function.
func checkClockWords(toks []token, args []any) error {
	for _, t := range toks {
		if t.kind == tokString && clockWords[strings.ToLower(strings.TrimSpace(t.text))] {
			return fmt.Errorf("offset %d: date modifier '%s' reads the clock or time zone", t.pos, t.text)
		}
	}
	for i, a := range args {
		if s, ok := a.(string); ok && clockWords[strings.ToLower(strings.TrimSpace(s))] {
			return fmt.Errorf("args[%d] %q in a statement calling a date function reads the clock or time zone", i, s)
		}
	}
	return nil
}
