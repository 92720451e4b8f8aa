package playbooks

import (
	"context"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// stubModules are modules the engine does not have, as no-ops that report
// ok: the corpus run tests the language (roles, includes, templates,
// conditions), not the modules.
var stubModules = strings.Fields(`apt apt_key apt_repository package service systemd systemd_service user group
	lineinfile blockinfile replace ini_file get_url unarchive stat fetch slurp git cron sysctl mount hostname
	yum dnf yum_repository pip uri service_facts package_facts dpkg_selections timezone modprobe selinux find
	synchronize reboot iptables firewalld seboolean locale_gen pacman pkgng openbsd_pkg zypper zypper_repository
	mysql_db mysql_user mysql_replication postgresql_db postgresql_user postgresql_privs ufw deb822_repository
	rpm_key alternatives openssl_privatekey openssl_csr x509_certificate pam_limits authorized_key npm getent
	mysql_variables mysql_query postgresql_query postgresql_set postgresql_ext`)

// debianFacts is what a setup module reports on a Debian 12 host (the parts roles use).
var debianFacts = map[string]any{
	"ansible_os_family": "Debian", "ansible_distribution": "Debian", "ansible_distribution_release": "bookworm",
	"ansible_distribution_version": "12.8", "ansible_distribution_major_version": "12", "ansible_architecture": "x86_64",
	"ansible_machine": "x86_64", "ansible_service_mgr": "systemd", "ansible_pkg_mgr": "apt", "ansible_hostname": "h1",
	"ansible_fqdn": "h1.example", "ansible_kernel": "6.1.0", "ansible_memtotal_mb": 4096, "ansible_processor_vcpus": 2, "ansible_processor_count": 1, "ansible_fips": false,
	"ansible_default_ipv4": map[string]any{"address": "10.0.0.2", "interface": "eth0"}, "ansible_system": "Linux",
	"ansible_userspace_bits": "64", "ansible_python": map[string]any{"version": map[string]any{"major": 3, "minor": 11}},
	"ansible_env": map[string]any{"HOME": "/root", "PATH": "/usr/bin:/bin"}, "ansible_user_id": "root",
	"ansible_virtualization_type": "lxc", "ansible_selinux": map[string]any{"status": "disabled"},
	"ansible_date_time": map[string]any{"epoch": "1700000000", "date": "2026-12-06"}, "ansible_lsb": map[string]any{"codename": "bookworm"},
	"ansible_mounts": []any{}, "ansible_memory_mb": map[string]any{"swap": map[string]any{"total": 0}}, "ansible_interfaces": []any{"lo", "eth0"}, "ansible_all_ipv4_addresses": []any{"10.0.0.2"},
}

// TestCorpusRolesRun runs geerlingguy's roles' converge playbooks in check
// mode on a local host with Debian's facts and no-op host modules: every
// role must load and every task template, condition and include evaluate
// (a failed task here is the engine's, not a module's).
func TestCorpusRolesRun(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/corpus/geerlingguy+*/converge.yml")
	if len(dirs) == 0 {
		t.Skip("no corpus")
	}
	reg := Registry{"setup": ModuleFunc(func(context.Context, *TaskContext) (Result, error) {
		return Result{Data: map[string]any{"ansible_facts": debianFacts}}, nil
	})}
	for _, m := range stubModules {
		reg[m] = ModuleFunc(func(context.Context, *TaskContext) (Result, error) {
			return Result{Data: map[string]any{"rc": 0, "stdout": "", "stdout_lines": []any{}, "stat": map[string]any{"exists": false}}}, nil
		})
	}
	for _, pbPath := range dirs {
		name := filepath.Base(filepath.Dir(pbPath))
		t.Run(name, func(t *testing.T) {
			if why, ok := notRunnable[name]; ok {
				t.Skip(why)
			}
			pb, err := Load(pbPath)
			if err != nil {
				t.Fatal(err)
			}
			rec := &recorder{}
			var out strings.Builder
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			recap, err := Run(ctx, pb, Options{
				Hosts: []Host{{Name: "h1"}}, Modules: reg, Connector: dryConnector{},
				Check: true, Reporter: MultiReporter(rec, NewTextReporter(&out, TextOptions{})),
			})
			if err != nil {
				t.Fatal(err)
			}
			if s := recap.Hosts["h1"]; s == nil || s.Failed > 0 {
				t.Errorf("%s: %+v\n%s", name, s, failures(out.String()))
			}
		})
	}
}

// notRunnable are the converge playbooks this test cannot run, and why.
var notRunnable = map[string]string{
	"geerlingguy+ansible-role-php":    "needs the geerlingguy.repo-remi role, not in the corpus (ansible-playbook refuses it too)",
	"geerlingguy+ansible-role-apache": "parses the output of apache2 -v (a check_mode: false command), which the dry connection does not give",
	"geerlingguy+ansible-role-nodejs": "uses the dest get_url returns; the stub modules return no data",
}

// dryConnector's connections run nothing: every command succeeds with no
// output (the corpus's check_mode: false tasks would otherwise run here).
type dryConnector struct{}

func (dryConnector) Connect(context.Context, Host) (Conn, error) { return dryConn{}, nil }

type dryConn struct{}

func (dryConn) Run(_ context.Context, cmd string, _ io.Reader, _ bool) ([]byte, []byte, int, error) {
	if strings.Contains(cmd, "else echo absent; fi") {
		return []byte("absent\n"), nil, 0, nil // statRemote: nothing exists
	}
	return nil, nil, 0, nil
}

func (dryConn) Push(context.Context, string, string, fs.FileMode) (bool, error) { return false, nil }

func failures(out string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "failed") || strings.Contains(l, "fatal") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
