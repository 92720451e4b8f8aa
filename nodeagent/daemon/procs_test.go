package daemon

import "testing"

// TestProcsHalvesTheCPUs: the daemon runs Go code on half the CPUs (rounded up) unless the
// operator's GOMAXPROCS says otherwise.
func TestProcsHalvesTheCPUs(t *testing.T) {
	for _, c := range []struct {
		cpus int
		env  string
		want int
	}{
		{1, "", 1}, {2, "", 1}, {3, "", 2}, {4, "", 2}, {16, "", 8},
		{2, "2", 2}, {3, "3", 3}, // the runtime's default already is the operator's GOMAXPROCS
	} {
		if got := Procs(c.cpus, c.env); got != c.want {
			t.Errorf("Procs(%d, %q) = %d, want %d", c.cpus, c.env, got, c.want)
		}
	}
}
