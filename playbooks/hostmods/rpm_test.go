package hostmods_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"orch/playbooks"
)

// TestDNFLocalRPM: dnf installs a local .rpm (built here with rpmbuild) into an installroot
// with no repositories, once; removes it by name, once; a package no repository has fails
// with dnf's message. yum without yum installed fails naming it.
func TestDNFLocalRPM(t *testing.T) {
	requireTool(t, "dnf", "rpm", "rpmbuild")
	h := newHarness(t)
	top := t.TempDir()
	spec := h.write("t.spec", "Name: orch-test-rpm\nVersion: 1.0\nRelease: 1\nSummary: t\nLicense: MIT\nBuildArch: noarch\n"+
		"AutoReqProv: no\n%description\nt\n%install\nmkdir -p %{buildroot}/opt/orch\necho hi > %{buildroot}/opt/orch/hello\n%files\n/opt/orch/hello\n")
	if out, err := exec.Command("rpmbuild", "--define", "_topdir "+top, "-bb", spec).CombinedOutput(); err != nil {
		t.Fatalf("rpmbuild: %v\n%s", err, out)
	}
	rpm := filepath.Join(top, "RPMS", "noarch", "orch-test-rpm-1.0-1.noarch.rpm")
	if err := os.MkdirAll(filepath.Join(h.dir, "root"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A real host has an rpm database; rpm -q would create an empty one (a change --check
	// must not make, as far as the snapshot can tell).
	if out, err := exec.Command("rpm", "--root", filepath.Join(h.dir, "root"), "--initdb").CombinedOutput(); err != nil {
		t.Fatalf("rpm --initdb: %v\n%s", err, out)
	}
	installed := func() bool { _, err := os.Stat(filepath.Join(h.dir, "root/opt/orch/hello")); return err == nil }
	h.converge("dnf: {name: '" + rpm + "', installroot: '{{ d }}/root', disable_gpg_check: true}")
	if !installed() {
		t.Fatal("the rpm's file is not in the installroot")
	}
	h.converge("dnf: {name: orch-test-rpm, state: absent, installroot: '{{ d }}/root'}")
	if installed() {
		t.Fatal("the rpm's file is still there")
	}
	o := h.run("dnf: {name: no-such-rpm, installroot: '{{ d }}/root'}", false, false)
	if o.status != playbooks.StatusFailed || !strings.Contains(o.res.Msg, "dnf install no-such-rpm failed") {
		t.Errorf("missing package: %s %q", o.status, o.res.Msg)
	}
	if _, err := exec.LookPath("yum"); err != nil {
		if o := h.run("yum: {name: bash}", false, false); o.status != playbooks.StatusFailed || !strings.Contains(o.res.Msg, "yum not found") {
			t.Errorf("yum without yum: %s %q", o.status, o.res.Msg)
		}
	}
}
