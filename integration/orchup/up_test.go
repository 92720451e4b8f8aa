package orchup

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"orch/nodeagent/api"
)

// TestUpFormsConvergesAndGrows: 3 fresh hosts → a 3-voter cluster; a re-run changes
// nothing; a 4th host joins (and only it changes); with the first host down a re-run
// reports it unreachable and neither bootstraps a second cluster nor breaks the first.
func TestUpFormsConvergesAndGrows(t *testing.T) {
	e := newEnv(t, 3)
	r := e.mustUp()
	if !strings.Contains(r.stdout, "bootstrap host1, then join host2, host3") {
		t.Errorf("plan not reported:\n%s", r.stdout)
	}
	ms := e.waitMembers("3 online voters", func(ms []api.ClusterMember) bool {
		return len(ms) == 3 && roleCount(ms, api.RoleDatabase) == 3 && allOnline(ms)
	})
	if roleCount(ms, api.RoleDatabaseLeader) != 1 {
		t.Fatalf("no single leader: %+v", ms)
	}

	r = e.mustUp("--format", "json")
	if strings.Contains(r.stdout, `"changed": true`) {
		t.Fatalf("converged re-run changed something:\n%s", r.stdout)
	}
	if r = e.mustUp(); !strings.Contains(r.stdout, "Converged: nothing changed.") {
		t.Fatalf("re-run did not say it changed nothing:\n%s", r.stdout)
	}

	added, err := e.lab.AddHosts(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	e.addHost(added[0])
	r = e.mustUp()
	if !strings.Contains(r.stdout, "Converged: changed host4.") {
		t.Fatalf("adding host4 changed more than host4:\n%s", r.stdout)
	}
	e.waitMembers("host4 as stand-by", func(ms []api.ClusterMember) bool {
		return len(ms) == 4 && roleCount(ms, api.RoleDatabaseStandby) == 1 && allOnline(ms)
	})

	if err := e.lab.Host("host1").Kill(); err != nil {
		t.Fatal(err)
	}
	r = e.up()
	if r.code != 4 {
		t.Fatalf("exit %d with host1 down, want 4 (unreachable)\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !regexp.MustCompile(`(?m)^host1 .*unreachable=1`).MatchString(r.stdout) {
		t.Errorf("recap does not show host1 unreachable:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, "bootstrapped") {
		t.Fatalf("a re-run with the first host down bootstrapped a cluster:\n%s", r.stdout)
	}
	ms = e.waitMembers("one cluster of 4 with host1 offline", func(ms []api.ClusterMember) bool {
		return len(ms) == 4 && roleCount(ms, api.RoleDatabaseLeader) == 1
	})
	for _, m := range ms {
		if m.ServerName == "host1" && m.Status == api.StatusOnline && len(ms) != 4 {
			t.Fatalf("unexpected list %+v", ms)
		}
	}
}

// TestHostKeyMismatch: a changed host key is refused, exit 4, naming the known_hosts file
// and line; nothing is pushed anywhere.
func TestHostKeyMismatch(t *testing.T) {
	e := newEnv(t, 2)
	data, err := os.ReadFile(e.known)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var line int
	for i, l := range lines {
		if strings.Contains(l, e.lab.Host("host2").Addr) {
			line = i + 1
			// Keep the address, swap in another host's key.
			other := lines[(i+1)%len(lines)]
			lines[i] = strings.Fields(l)[0] + " " + strings.Join(strings.Fields(other)[1:], " ")
		}
	}
	if line == 0 {
		t.Fatalf("host2 not in %s", e.known)
	}
	tampered := e.dir + "/known_hosts"
	if err := os.WriteFile(tampered, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.known = tampered
	r := e.up()
	if r.code != 4 {
		t.Fatalf("exit %d, want 4\n%s%s", r.code, r.stdout, r.stderr)
	}
	want := tampered + ":" + itoa(line)
	if !strings.Contains(r.stdout+r.stderr, want) {
		t.Fatalf("the error does not name %s:\n%s%s", want, r.stdout, r.stderr)
	}
	bin, _ := e.lab.Host("host2").Path("/var/lib/nodeagent/bin/nodeagent")
	if _, err := os.Stat(bin); err == nil {
		t.Fatal("the agent was pushed to a host whose key did not match")
	}
}

// TestWrongUserKeyIsUnreachable: a key the host does not accept makes the host
// unreachable (exit 4); the other host still converges.
func TestWrongUserKeyIsUnreachable(t *testing.T) {
	e := newEnv(t, 2)
	other := t.TempDir() + "/other_key"
	writeKey(t, other)
	e.vars["host2"]["ansible_ssh_private_key_file"] = other
	r := e.up()
	if r.code != 4 {
		t.Fatalf("exit %d, want 4\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !regexp.MustCompile(`(?m)^host2 .*unreachable=1`).MatchString(r.stdout) {
		t.Fatalf("host2 not unreachable in the recap:\n%s", r.stdout)
	}
	if !regexp.MustCompile(`(?m)^host1 .*failed=0`).MatchString(r.stdout) {
		t.Fatalf("host1 did not converge:\n%s", r.stdout)
	}
}

// TestSudoUser: a non-root login with passwordless sudo (ansible_become) installs and runs
// the agent as root.
func TestSudoUser(t *testing.T) {
	e := newEnv(t, 3)
	for h := range e.vars {
		e.vars[h]["ansible_user"] = "orchtest"
		e.vars[h]["ansible_become"] = "true"
	}
	e.mustUp()
	e.waitMembers("3 online voters", func(ms []api.ClusterMember) bool {
		return len(ms) == 3 && roleCount(ms, api.RoleDatabase) == 3 && allOnline(ms)
	})
	out, err := e.lab.Host("host2").Exec(t.Context(), "stat", "-c", "%U", "/var/lib/nodeagent/bin/nodeagent")
	if err != nil || strings.TrimSpace(string(out)) != "root" {
		t.Fatalf("agent binary owner %q (%v), want root", out, err)
	}
}

// TestProxyJump: host2 refuses SSH from orch's machine; orch reaches it through host1 as a
// bastion (orch_proxy_jump) and the cluster forms.
func TestProxyJump(t *testing.T) {
	e := newEnv(t, 2)
	h2 := e.lab.Host("host2")
	gw := e.lab.Gateway()
	if out, err := h2.Exec(t.Context(), "sh", "-c",
		"nft add table inet orchtest && nft add chain inet orchtest in '{ type filter hook input priority 0; }' && "+
			"nft add rule inet orchtest in ip saddr "+gw+" tcp dport 22 reject with tcp reset"); err != nil {
		t.Skipf("nftables unavailable in the test host (%v: %s)", err, out)
	}
	direct := e.up("--limit", "host2")
	if direct.code != 4 {
		t.Fatalf("host2 answered SSH directly (exit %d); the test would prove nothing\n%s", direct.code, direct.stdout)
	}
	e.vars["host2"]["orch_proxy_jump"] = "root@" + e.lab.Host("host1").Addr
	e.mustUp()
	e.waitMembers("2 online members", func(ms []api.ClusterMember) bool { return len(ms) == 2 && allOnline(ms) })
}
