package orchup

import (
	"os"
	"testing"

	"orch/integration/lab"
	"orch/nodeagent/api"
)

// TestUpOverSlowLinkSendsAboutOneAgent: behind a shaped control link, `orch up` sends the
// agent across it about once (compressed, to one host); the other hosts fetch it from hosts
// that already hold it. Without the relay every host's copy crossed the link: 4 × 19 MB.
func TestUpOverSlowLinkSendsAboutOneAgent(t *testing.T) {
	e := newEnv(t, 4, lab.WithUplink("200mbit"))
	st, err := os.Stat(bins.agent)
	if err != nil {
		t.Fatal(err)
	}
	before, err := e.lab.UplinkSent()
	if err != nil {
		t.Fatal(err)
	}
	e.mustUp()
	after, err := e.lab.UplinkSent()
	if err != nil {
		t.Fatal(err)
	}
	sent := after - before
	t.Logf("orch up of 4 hosts sent %.1f MB across the control link (agent %.1f MB)", float64(sent)/1e6, float64(st.Size())/1e6)
	if sent >= st.Size() {
		t.Errorf("orch up sent %d bytes across the control link: more than one uncompressed agent (%d)", sent, st.Size())
	}
	e.waitMembers("4 online members", func(ms []api.ClusterMember) bool { return len(ms) == 4 && allOnline(ms) })
}
