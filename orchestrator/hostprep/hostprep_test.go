package hostprep

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

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
	f := parseFacts("id=rocky\nlike=rhel centos fedora\nname=Rocky Linux\nversion=9.4\nrelease=blue onyx\ninit=systemd\nsystem=Linux\narch=aarch64\nkernel=5.14\npm=dnf\ntool=nft\nfeature=dm_mod\nmem=SwapTotal:2048\nsockets=2\ncores=4\nfips=1\n")
	want := &Facts{OSFamily: "RedHat", Distribution: "Rocky", Version: "9.4", ServiceMgr: "systemd", Architecture: "aarch64", System: "Linux", Release: "blue onyx",
		Kernel: "5.14", PkgMgr: "dnf", Features: map[string]bool{"btrfs": false, "zfs": false, "device-mapper": true, "nftables": false},
		Tools:  map[string]bool{"lxc-start": false, "dnsmasq": false, "nft": true, "mkfs.btrfs": false, "lvcreate": false, "zfs": false, "xz": false},
		Memory: map[string]int{"SwapTotal": 2048}, Sockets: 2, Cores: 4, FIPS: true}
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

// TestGatherHostFacts checks the network, memory, CPU, environment and clock
// facts of the same one command against this machine.
func TestGatherHostFacts(t *testing.T) {
	start := time.Now()
	f, err := Gather(t.Context(), &localRunner{}, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("one facts command: %v", time.Since(start))
	if h, _ := os.Hostname(); f.Hostname != h || f.FQDN == "" {
		t.Errorf("hostname %q fqdn %q, want %q", f.Hostname, f.FQDN, h)
	}
	if f.MemTotalMB <= 0 || f.VCPUs != runtime.NumCPU() {
		t.Errorf("mem %d MiB, %d vcpus (want %d)", f.MemTotalMB, f.VCPUs, runtime.NumCPU())
	}
	if ifaces, _ := net.Interfaces(); len(f.Interfaces) != len(ifaces) {
		t.Errorf("interfaces %v, want %d", f.Interfaces, len(ifaces))
	}
	if out, _ := exec.Command("sh", "-c", "ip -4 route show default | awk '{print $3, $5; exit}'").Output(); len(out) > 0 {
		gw, dev, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
		if f.DefaultIPv4.Gateway != gw || f.DefaultIPv4.Interface != dev || f.DefaultIPv4.Address == "" {
			t.Errorf("default_ipv4 %+v, want gateway %s on %s", f.DefaultIPv4, gw, dev)
		}
	}
	if f.Env["PATH"] == "" {
		t.Errorf("env has no PATH: %v", f.Env)
	}
	if d := time.Since(f.Time); d < -time.Minute || d > time.Minute {
		t.Errorf("date %v is %v off", f.Time, d)
	}
	facts := f.AnsibleFacts()
	dt := facts["ansible_date_time"].(map[string]any)
	if dt["epoch"] != strconv.FormatInt(f.Time.Unix(), 10) || len(dt["iso8601_basic"].(string)) != 21 {
		t.Errorf("date_time %v", dt)
	}
	if len(facts["ansible_all_ipv4_addresses"].([]any)) != len(f.IPv4) {
		t.Errorf("all_ipv4_addresses %v", facts["ansible_all_ipv4_addresses"])
	}
}

func TestParseNetworkFacts(t *testing.T) {
	f := parseFacts("route=eth0 010200C0\naddr=lo 127.0.0.1/8\naddr=eth0 192.0.2.2/24\naddr=eth1 10.0.0.5/16\niface=lo\niface=eth0\nmemkb=2048000\nvcpus=4\ndate=1765029057 123456789 +0100 CET\nenv:\nA=1\x00B=x\ny\x00")
	want := Address{Interface: "eth0", Address: "192.0.2.2", Gateway: "192.0.2.1", Prefix: 24}
	if f.DefaultIPv4 != want || len(f.IPv4) != 2 || f.MemTotalMB != 2000 || f.VCPUs != 4 {
		t.Errorf("got %+v", f)
	}
	if f.Env["B"] != "x\ny" || f.Env["A"] != "1" {
		t.Errorf("env %q", f.Env)
	}
	facts := f.AnsibleFacts()
	d4 := facts["ansible_default_ipv4"].(map[string]any)
	if d4["netmask"] != "255.255.255.0" || d4["network"] != "192.0.2.0" || d4["gateway"] != "192.0.2.1" {
		t.Errorf("default_ipv4 %v", d4)
	}
	dt := facts["ansible_date_time"].(map[string]any)
	if dt["hour"] != "14" || dt["tz_offset"] != "+0100" || dt["iso8601"] != "2025-12-06T13:50:57Z" || dt["weekday"] != "Saturday" || dt["iso8601_basic"] != "20251206T145057123456" {
		t.Errorf("date_time %v", dt)
	}
	if facts["ansible_eth1"].(map[string]any)["ipv4"].(map[string]any)["address"] != "10.0.0.5" {
		t.Errorf("ansible_eth1 %v", facts["ansible_eth1"])
	}
}

// BenchmarkGather measures the one facts command on this machine.
func BenchmarkGather(b *testing.B) {
	r := &localRunner{}
	for b.Loop() {
		if _, err := Gather(b.Context(), r, false); err != nil {
			b.Fatal(err)
		}
		r.calls = nil
	}
}

// TestHardwareFactsAgainstAnsible compares the hardware facts the corpus roles use
// (ansible_machine, processor_count/cores, memtotal_mb, memory_mb.swap.total, fips) with
// what ansible-core's setup gathers on this machine, when ansible is installed.
func TestHardwareFactsAgainstAnsible(t *testing.T) {
	f, err := Gather(t.Context(), &localRunner{}, false)
	if err != nil {
		t.Fatal(err)
	}
	ours := f.AnsibleFacts()
	mem := ours["ansible_memory_mb"].(map[string]any)
	if mem["real"].(map[string]any)["total"] != f.MemTotalMB || ours["ansible_machine"] != runtimeMachine(t) {
		t.Errorf("memory_mb %v, machine %v", mem, ours["ansible_machine"])
	}
	theirs := ansibleSetup(t, "hardware")
	for _, k := range []string{"ansible_machine", "ansible_processor_count", "ansible_processor_cores", "ansible_processor_vcpus",
		"ansible_processor_threads_per_core", "ansible_memtotal_mb", "ansible_swaptotal_mb", "ansible_fips"} {
		if fmt.Sprint(theirs[k]) != fmt.Sprint(ours[k]) {
			t.Errorf("%s: ansible %v, orch %v", k, theirs[k], ours[k])
		}
	}
	swap := theirs["ansible_memory_mb"].(map[string]any)["swap"].(map[string]any)
	if fmt.Sprint(swap["total"]) != fmt.Sprint(mem["swap"].(map[string]any)["total"]) {
		t.Errorf("memory_mb.swap: ansible %v, orch %v", swap, mem["swap"])
	}
}

// runtimeMachine is uname -m.
func runtimeMachine(t *testing.T) string {
	out, err := exec.Command("uname", "-m").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// TestPlatformFactsAgainstAnsible: ansible_system and ansible_distribution_release (roles
// template them: ansible-examples' foo.j2, apt repository lines) are Ansible's on this machine.
func TestPlatformFactsAgainstAnsible(t *testing.T) {
	f, err := Gather(t.Context(), &localRunner{}, false)
	if err != nil {
		t.Fatal(err)
	}
	ours := f.AnsibleFacts()
	theirs := ansibleSetup(t, "min")
	for _, k := range []string{"ansible_system", "ansible_distribution_release", "ansible_kernel", "ansible_architecture"} {
		if fmt.Sprint(theirs[k]) != fmt.Sprint(ours[k]) {
			t.Errorf("%s: ansible %v, orch %v", k, theirs[k], ours[k])
		}
	}
}

// ansibleSetup is what Ansible's setup module gathers on this machine for subset (its
// ansible_facts), the test skipped where ansible is not installed.
func ansibleSetup(t *testing.T, subset string) map[string]any {
	t.Helper()
	ansible, err := exec.LookPath("ansible")
	if err != nil {
		t.Skip("ansible not installed: nothing to compare with")
	}
	out, err := exec.Command(ansible, "localhost", "-c", "local", "-m", "setup", "-a", "gather_subset="+subset).Output()
	if err != nil {
		t.Fatalf("ansible setup: %v", err)
	}
	_, js, _ := strings.Cut(string(out), "=> ")
	var theirs struct {
		Facts map[string]any `json:"ansible_facts"`
	}
	if err := json.Unmarshal([]byte(js), &theirs); err != nil {
		t.Fatalf("ansible's output: %v\n%s", err, out)
	}
	return theirs.Facts
}

// MissingOn names exactly the needs whose tool this machine lacks, as Gather's facts do,
// in one command.
func TestMissingOnHere(t *testing.T) {
	needs := append(Needs(&api.Preseed{StoragePools: []api.StoragePool{{Name: "p", Driver: "btrfs"}}}),
		Need{Tool: "orch-no-such-tool", Why: "test"})
	r := &localRunner{}
	got, err := MissingOn(t.Context(), r, needs, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.calls) != 1 {
		t.Errorf("%d commands, want 1", len(r.calls))
	}
	var want []Need
	for _, n := range needs {
		if lookPath(n.Tool) != nil {
			want = append(want, n)
		}
	}
	if !reflect.DeepEqual(got, want) || len(got) == 0 || got[len(got)-1].Tool != "orch-no-such-tool" {
		t.Errorf("missing %v, want %v", got, want)
	}
	f, err := Gather(t.Context(), r, false)
	if err != nil {
		t.Fatal(err)
	}
	if facts := Missing(f, needs); !reflect.DeepEqual(facts, got) {
		t.Errorf("MissingOn says %v, Gather's facts say %v", got, facts)
	}
}
