package wait

import (
	"errors"
	"testing"
	"time"
)

func TestUntilReturnsNilOnceCondHolds(t *testing.T) {
	n := 0
	err := Until(time.Second, func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("Until: %v after %d calls; want nil after 3", err, n)
	}
}

func TestUntilReturnsLastErrorAfterTimeout(t *testing.T) {
	n := 0
	err := UntilEvery(50*time.Millisecond, time.Millisecond, func() error {
		n++
		return errors.New("still not")
	})
	if err == nil || err.Error() != "still not" || n < 2 {
		t.Fatalf("UntilEvery: %v after %d calls; want the last error after several", err, n)
	}
}

func TestStopEndsTheWaitAtOnce(t *testing.T) {
	gone := errors.New("process exited")
	n := 0
	start := time.Now()
	err := Until(time.Minute, func() error {
		n++
		return Stop(gone)
	})
	if !errors.Is(err, gone) || n != 1 || time.Since(start) > time.Second {
		t.Fatalf("Until with Stop: %v after %d calls and %v; want %v at once", err, n, time.Since(start), gone)
	}
	var s stopErr
	if errors.As(err, &s) {
		t.Fatalf("Until returned the Stop wrapper %#v; want the error itself", err)
	}
}
