package lxdclient

import (
	"strings"
	"testing"

	"orch/integration/agenttest"
)

// TestRemoteAddPassword: `lxc remote add --password` (LXD's certificate body, with
// "restricted" and "projects") trusts the client; `lxc config trust list/show/edit/remove`
// then see, rename and remove it, and a wrong password is refused.
func TestRemoteAddPassword(t *testing.T) {
	NeedLXC(t)
	ms := StartCluster(t, 3)
	c := NewLXC(t)
	c.WantFailure([]string{"remote", "add", "bad", URL(ms[2]), "--accept-certificate", "--password", "wrong"},
		"wrong or missing trust password")
	c.AddRemotePassword("orch", ms[2], agenttest.TrustPassword)
	if out := c.MustRun("info"); !strings.Contains(out, "auth: trusted") || !strings.Contains(out, "server_name: node3") {
		t.Fatalf("lxc info after remote add --password:\n%s", out)
	}

	list := c.MustRun("config", "trust", "list", "--format", "csv")
	fields := strings.Split(strings.TrimSpace(list), ",")
	if len(fields) < 4 || fields[0] != "client" || fields[2] != "lxdclient-test" {
		t.Fatalf("lxc config trust list --format csv: %q", list)
	}
	fp := fields[3]
	show := c.MustRun("config", "trust", "show", fp)
	for _, want := range []string{"type: client", "restricted: false", "BEGIN CERTIFICATE", "fingerprint: " + fp[:12]} {
		if !strings.Contains(show, want) {
			t.Fatalf("lxc config trust show %s has no %q:\n%s", fp, want, show)
		}
	}
	// edit is GET + PUT with If-Match: rename the certificate.
	edited := strings.Replace(show, "name: ", "name: renamed-", 1)
	c.MustRunInput(edited, "config", "trust", "edit", fp)
	if out := c.MustRun("config", "trust", "show", fp); !strings.Contains(out, "name: renamed-") {
		t.Fatalf("after edit: %s", out)
	}
	// Restricted certificates are refused, naming the field.
	r := c.RunInput(strings.Replace(show, "restricted: false", "restricted: true", 1), "config", "trust", "edit", fp)
	if r.Code == 0 || !strings.Contains(r.Stderr, "restricted") {
		t.Fatalf("a restricted certificate: %s", r)
	}
	c.MustRun("config", "trust", "remove", fp)
	r = c.Run("cluster", "list")
	if r.Code == 0 {
		t.Fatalf("cluster list after removing the client's certificate succeeded:\n%s", r)
	}
}
