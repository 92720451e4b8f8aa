// Package wait is the one wait-for-condition helper of orch's tests: poll a condition until
// it holds or a deadline passes, then fail naming what was awaited and the condition's last
// error. Tests never sleep to "let things settle"; they wait for what they need.
package wait

import (
	"errors"
	"testing"
	"time"
)

// Interval is how often For and Until poll.
const Interval = 25 * time.Millisecond

// For polls cond until it returns nil; after timeout it fails the test naming what it
// waited for and cond's last error.
func For(tb testing.TB, timeout time.Duration, what string, cond func() error) {
	tb.Helper()
	ForEvery(tb, timeout, Interval, what, cond)
}

// ForEvery is For polling every interval (finer for timings, coarser for costly checks).
func ForEvery(tb testing.TB, timeout, interval time.Duration, what string, cond func() error) {
	tb.Helper()
	if err := UntilEvery(timeout, interval, cond); err != nil {
		tb.Fatalf("waited %v for %s; last error: %v", timeout, what, err)
	}
}

// Until polls cond until it returns nil (Until returns nil) or timeout passes (Until
// returns cond's last error), for callers that handle the failure themselves.
func Until(timeout time.Duration, cond func() error) error {
	return UntilEvery(timeout, Interval, cond)
}

// UntilEvery is Until polling every interval. An error of cond wrapped by Stop ends the
// wait at once: it is returned unwrapped.
func UntilEvery(timeout, interval time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		var s stopErr
		if errors.As(err, &s) {
			return s.err
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(interval)
	}
}

// Stop marks err as final: a condition returns Stop(err) when waiting longer cannot help
// (the process it waits for has exited), and the wait ends with err.
func Stop(err error) error { return stopErr{err} }

type stopErr struct{ err error }

func (s stopErr) Error() string { return s.err.Error() }
func (s stopErr) Unwrap() error { return s.err }
