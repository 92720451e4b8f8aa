package hostmods_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"orch/playbooks"
)

// firewalldHarness: firewall-offline-cmd (the real tool) edits a copy of /etc/firewalld
// mounted over it in a private namespace. firewalld itself does not run here (no D-Bus, and
// starting it would rewrite this shared machine's nftables), so runtime changes are tested
// only on their refusal.
func firewalldHarness(t *testing.T) (*harness, string) {
	h, dirs := bindHarness(t, []string{"firewall-offline-cmd"}, "/etc/firewalld")
	return h, dirs[0]
}

// TestFirewalldOffline: the corpus's firewalld tasks (a port, permanent, as ansible-examples'
// roles write them, without immediate since no firewalld runs), a service, a rich rule,
// masquerade, then disabled: each converges and the zone file holds what was asked.
func TestFirewalldOffline(t *testing.T) {
	h, conf := firewalldHarness(t)
	zone := func() string {
		b, _ := os.ReadFile(filepath.Join(conf, "zones", "public.xml"))
		return string(b)
	}
	h.converge("firewalld: port=8080/tcp permanent=true state=enabled")
	if !strings.Contains(zone(), `<port port="8080" protocol="tcp"/>`) {
		t.Fatalf("zone after port 8080/tcp:\n%s", zone())
	}
	// (firewall-offline-cmd takes seconds a call: the other kinds run once each)
	for _, task := range []string{"firewalld:\n  service: https\n  zone: public\n  permanent: true\n  state: enabled",
		"firewalld:\n  rich_rule: rule family=ipv4 source address=192.0.2.0/24 accept\n  permanent: true\n  state: enabled",
		"firewalld:\n  masquerade: true\n  permanent: true\n  state: enabled"} {
		if o := h.run(task, false, false); o.status != playbooks.StatusChanged {
			t.Fatalf("%s: %s\n%s", task, o.status, o.out)
		}
	}
	for _, want := range []string{`<service name="https"/>`, `<masquerade/>`, `192.0.2.0/24`} {
		if !strings.Contains(zone(), want) {
			t.Fatalf("zone lacks %s:\n%s", want, zone())
		}
	}
	h.converge("firewalld: port=8080/tcp permanent=true state=disabled")
	if strings.Contains(zone(), `port="8080"`) {
		t.Fatalf("port 8080 still there:\n%s", zone())
	}
	if o := h.run("firewalld:\n  zone: custom\n  permanent: true\n  state: present", false, false); o.status != playbooks.StatusChanged {
		t.Fatalf("zone present: %s\n%s", o.status, o.out)
	}
	if _, err := os.Stat(filepath.Join(conf, "zones", "custom.xml")); err != nil {
		t.Fatalf("zone custom not created: %v", err)
	}

	// immediate needs a running firewalld: refused as Ansible refuses it
	o := h.run("firewalld: port=8443/tcp permanent=true state=enabled immediate=yes", false, false)
	if o.status != playbooks.StatusFailed || !strings.Contains(o.res.Msg, "firewall is not currently running") {
		t.Fatalf("immediate without firewalld: %s %q", o.status, o.res.Msg)
	}
	if o := h.run("firewalld: port=8080 state=enabled permanent=true", false, false); o.status != playbooks.StatusFailed {
		t.Fatalf("a port without protocol: %s %q", o.status, o.res.Msg)
	}
}
