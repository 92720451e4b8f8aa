package tokens

import (
	"strings"
	"testing"
)

// Issuing, listing, revoking and consuming tokens run on real members in the daemon's
// FuzzTokenBody, nodeagent/cli TestVerbsAgainstAgent and integration/cluster and
// integration/security (TestForgedJoinToken); this pins the formats the tokens table keeps.
func TestStoredForms(t *testing.T) {
	h := HashSecret("s3cret")
	if len(h) != 64 || strings.Contains(h, "s3cret") || HashSecret("s3cret") != h || HashSecret("other") == h {
		t.Errorf("HashSecret = %q", h)
	}
	m := AcceptedMarker("fp", h)
	if m != AcceptedPrefix+"fp:"+h || !strings.HasPrefix(m, "accepted:") {
		t.Errorf("AcceptedMarker = %q", m)
	}
}
