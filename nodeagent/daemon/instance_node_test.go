package daemon

import (
	"strings"
	"testing"
)

// Two agents on one machine with the same member name (test clusters side by side) must
// not share container cgroups; one agent keeps its prefix across restarts.
func TestCgroupPrefixPerAgent(t *testing.T) {
	a, b := cgroupPrefix("node2", "/tmp/na-1/d"), cgroupPrefix("node2", "/tmp/na-2/d")
	if a == b || !strings.HasPrefix(a, "node2-") {
		t.Fatalf("prefixes %q and %q", a, b)
	}
	if a != cgroupPrefix("node2", "/tmp/na-1/d") {
		t.Fatal("the prefix changed for the same agent directory")
	}
}
