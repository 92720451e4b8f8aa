package lab

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func cidr(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}

func TestFreeSubnet(t *testing.T) {
	cases := []struct {
		used []*net.IPNet
		want string
	}{
		{nil, "10.201.0.0/24"},
		{[]*net.IPNet{cidr("10.201.0.0/24"), cidr("10.201.1.7/32")}, "10.201.2.0/24"},
		{[]*net.IPNet{cidr("10.201.0.0/16")}, "10.202.0.0/24"},
		{[]*net.IPNet{cidr("10.0.0.0/8")}, ""},
		{[]*net.IPNet{cidr("192.0.2.0/24"), cidr("10.201.0.1/24")}, "10.201.1.0/24"},
	}
	for _, c := range cases {
		got, err := freeSubnet(c.used)
		if c.want == "" {
			if !errors.Is(err, ErrNoSubnet) {
				t.Errorf("used %v: %v, %v; want ErrNoSubnet", c.used, got, err)
			}
			continue
		}
		if err != nil || got.String() != c.want {
			t.Errorf("used %v: %v, %v; want %s", c.used, got, err, c.want)
		}
	}
}

func TestAddresses(t *testing.T) {
	s := cidr("10.201.7.0/24")
	if g := gatewayOf(s).String(); g != "10.201.7.1/24" {
		t.Errorf("gateway %s", g)
	}
	if a := hostAddr(s, 3).String(); a != "10.201.7.13/24" {
		t.Errorf("host3 %s", a)
	}
	if a := hostAddr(s, MaxHosts).IP.String(); a != "10.201.7.254" {
		t.Errorf("last host %s", a)
	}
}

func TestSSHDConfig(t *testing.T) {
	cfg := sshdConfig("10.201.0.11", "/d/key", "/d/authorized_keys")
	for _, want := range []string{"ListenAddress 10.201.0.11:22", "HostKey /d/key", "AuthorizedKeysFile /d/authorized_keys",
		"PermitRootLogin prohibit-password", "UsePAM no", "StrictModes no", "AllowTcpForwarding yes", "PidFile none",
		"Subsystem sftp internal-sftp"} {
		if !strings.Contains(cfg, want+"\n") {
			t.Errorf("sshd config lacks %q", want)
		}
	}
}

func TestWithDescendants(t *testing.T) {
	table := map[int]proc{
		10: {pid: 10, ppid: 1}, 11: {pid: 11, ppid: 10}, 12: {pid: 12, ppid: 11},
		13: {pid: 13, ppid: 11, state: 'Z'}, 20: {pid: 20, ppid: 1}, 1: {pid: 1},
	}
	got := withDescendants([]int{10, 1}, table)
	if len(got) != 3 || got[0] != 10 || got[1] != 11 || got[2] != 12 {
		t.Errorf("withDescendants = %v, want [10 11 12] (no zombie, no init, no stranger)", got)
	}
}

func TestReadProcOwnStat(t *testing.T) {
	p, ok := readProc(os.Getpid())
	if !ok || p.ppid != os.Getppid() || p.comm == "" {
		t.Errorf("readProc(self) = %+v, %v", p, ok)
	}
}

func TestLoadWithoutState(t *testing.T) {
	if _, err := Load(t.TempDir()); !errors.Is(err, ErrNoState) {
		t.Errorf("Load of an empty dir: %v, want ErrNoState", err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, stateFile), []byte(`{"version": 99, "id": "x"}`), 0o644)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "version 99") {
		t.Errorf("Load of a future state: %v", err)
	}
}

func TestSweepNeedsLabPrefix(t *testing.T) {
	if err := Sweep("/nonexistent", "eth"); err == nil {
		t.Error("Sweep accepted a prefix that is not a lab's")
	}
}

func TestWriteInventoryRejectsNewlines(t *testing.T) {
	l := &Lab{st: state{ID: "abc123", Dir: t.TempDir()}}
	if err := l.WriteInventory(filepath.Join(l.Dir(), "inv"), map[string]string{"x": "a\nb"}); err == nil {
		t.Error("WriteInventory accepted a value with a newline")
	}
}

func TestLXCTop(t *testing.T) {
	for in, want := range map[string]string{
		"/lxc.payload.c1/init.scope": "/lxc.payload.c1",
		"/lxc.monitor.web-1":         "/lxc.monitor.web-1",
		"/orch-lab/abc/host1":        "",
		"/":                          "",
		"/lxc.pivot":                 "",
	} {
		if got := lxcTop(in); got != want {
			t.Errorf("lxcTop(%q) = %q, want %q", in, got, want)
		}
	}
}
