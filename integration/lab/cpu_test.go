package lab

import (
	"testing"
	"time"
)

// CPUTime grows by what a host's processes use, also after they exit.
func TestCPUTime(t *testing.T) {
	l := New(t, 1)
	before, err := l.CPUTime()
	if err != nil {
		t.Skip(err)
	}
	// About 0.2 s of CPU in a process that then exits.
	if out, err := l.Hosts()[0].Exec(t.Context(), "sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	after, err := l.CPUTime()
	if err != nil {
		t.Fatal(err)
	}
	if d := after - before; d < 50*time.Millisecond {
		t.Errorf("CPU time grew by %v after a busy loop on the host", d)
	}
}
