// Package wait is the one wait-for-condition helper of orch's tests: poll a condition until
// it holds or a deadline passes, then fail naming what was awaited and the condition's last
// error. Tests never sleep to "let things settle"; they wait for what they need.
package wait

import (
	"testing"
	"time"
)

// Interval is how often For polls.
const Interval = 25 * time.Millisecond

// For polls cond until it returns nil; after timeout it fails the test naming what it
// waited for and cond's last error.
func For(tb testing.TB, timeout time.Duration, what string, cond func() error) {
	tb.Helper()
	if err := Until(timeout, cond); err != nil {
		tb.Fatalf("waited %v for %s; last error: %v", timeout, what, err)
	}
}

// Until polls cond until it returns nil (Until returns nil) or timeout passes (Until
// returns cond's last error), for callers that handle the failure themselves.
func Until(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(Interval)
	}
}
