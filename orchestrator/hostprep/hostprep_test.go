package hostprep

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"orch/nodeagent/api"
)

// localRunner runs commands on this machine with sh, as a host connection would.
type localRunner struct{ calls []string }

func (r *localRunner) Run(ctx context.Context, cmd string, stdin io.Reader, become bool) ([]byte, []byte, int, error) {
	r.calls = append(r.calls, cmd)
	c := exec.CommandContext(ctx, "sh", "-c", cmd)
	var out, errb strings.Builder
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return []byte(out.String()), []byte(errb.String()), ee.ExitCode(), nil
	}
	return []byte(out.String()), []byte(errb.String()), 0, err
}

// TestGatherHere runs the real facts command on this machine (Debian with apt): one
// command, and what it says matches uname and os-release.
func TestGatherHere(t *testing.T) {
	r := &localRunner{}
	f, err := Gather(t.Context(), r, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.calls) != 1 {
		t.Errorf("%d commands, want 1", len(r.calls))
	}
	arch, _ := exec.Command("uname", "-m").Output()
	if f.Architecture != strings.TrimSpace(string(arch)) || f.Kernel == "" {
		t.Errorf("arch %q kernel %q", f.Architecture, f.Kernel)
	}
	if _, err := exec.LookPath("apt-get"); err == nil && (f.PkgMgr != "apt" || f.OSFamily != "Debian") {
		t.Errorf("on a Debian machine: pkg mgr %q, family %q", f.PkgMgr, f.OSFamily)
	}
	if f.Tools["xz"] != (lookPath("xz") == nil) {
		t.Errorf("tools %v", f.Tools)
	}
	facts := f.AnsibleFacts()
	if facts["ansible_distribution_major_version"] == "" || facts["ansible_os_family"] != f.OSFamily {
		t.Errorf("ansible facts %v", facts)
	}
}

func lookPath(tool string) error {
	_, err := exec.Command("sh", "-c", "PATH=$PATH:/usr/sbin:/sbin command -v "+tool).Output()
	return err
}

func TestParseFacts(t *testing.T) {
	f := parseFacts("id=rocky\nlike=rhel centos fedora\nname=Rocky Linux\nversion=9.4\ninit=systemd\narch=aarch64\nkernel=5.14\npm=dnf\ntool=nft\nfeature=dm_mod\n")
	want := &Facts{OSFamily: "RedHat", Distribution: "Rocky", Version: "9.4", ServiceMgr: "systemd", Architecture: "aarch64",
		Kernel: "5.14", PkgMgr: "dnf", Features: map[string]bool{"btrfs": false, "zfs": false, "device-mapper": true, "nftables": false},
		Tools: map[string]bool{"lxc-start": false, "dnsmasq": false, "nft": true, "mkfs.btrfs": false, "lvcreate": false, "zfs": false, "xz": false}}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("got %+v\nwant %+v", f, want)
	}
	if got := f.AnsibleFacts()["ansible_distribution_major_version"]; got != "9" {
		t.Errorf("major version %v", got)
	}
}

// TestNeedsAndPackages: what a cluster's settings need, per package manager; only the
// missing tools become packages.
func TestNeedsAndPackages(t *testing.T) {
	p := &api.Preseed{Networks: []api.Network{{Name: "br0"}}, StoragePools: []api.StoragePool{{Name: "a", Driver: "btrfs"}, {Name: "b", Driver: "dir"}, {Name: "c", Driver: "btrfs"}}}
	needs := Needs(p)
	var tools []string
	for _, n := range needs {
		tools = append(tools, n.Tool)
	}
	if strings.Join(tools, " ") != "lxc-start xz dnsmasq nft mkfs.btrfs" {
		t.Errorf("needs %v", tools)
	}
	f := &Facts{PkgMgr: "apt", Tools: map[string]bool{"xz": true, "nft": true}}
	if got := Packages(f, Missing(f, needs)); strings.Join(got, " ") != "btrfs-progs dnsmasq-base lxc" {
		t.Errorf("apt packages %v", got)
	}
	f.PkgMgr = "dnf"
	if got := Packages(f, Missing(f, needs)); strings.Join(got, " ") != "btrfs-progs dnsmasq lxc" {
		t.Errorf("dnf packages %v", got)
	}
	if got := Needs(nil); len(got) != 2 {
		t.Errorf("a cluster with no settings needs %v", got)
	}
}

// TestInstallErrors: an unknown package manager and a failing one are reported with the
// packages and the package manager's own words.
func TestInstallErrors(t *testing.T) {
	r := &localRunner{}
	err := Install(t.Context(), r, &Facts{Distribution: "Alpine", Version: "3"}, []string{"lxc"}, false)
	if !errors.Is(err, ErrNoPackageManager) || !strings.Contains(err.Error(), "lxc") {
		t.Errorf("no package manager: %v", err)
	}
	if len(r.calls) != 0 {
		t.Errorf("ran %v", r.calls)
	}
}

// TestInstallWithDnf runs the dnf path with the real dnf (Debian packages it): on a machine
// without repositories it fails, and the error names the packages, dnf, and dnf's own words.
func TestInstallWithDnf(t *testing.T) {
	if _, err := exec.LookPath("dnf"); err != nil {
		t.Skip("dnf not installed (apt-get install dnf; scripts/install-deps.sh does)")
	}
	r := &localRunner{}
	err := Install(t.Context(), r, &Facts{PkgMgr: "dnf"}, []string{"orch-no-such-package"}, false)
	if !errors.Is(err, ErrInstall) || !strings.Contains(err.Error(), "orch-no-such-package: dnf install") ||
		!strings.Contains(err.Error(), "repositor") {
		t.Errorf("dnf install error: %v", err)
	}
	if len(r.calls) != 1 || !strings.HasPrefix(r.calls[0], "dnf install -y -q orch-no-such-package") {
		t.Errorf("commands: %q", r.calls)
	}
}
