package hostmods

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orch/integration/lab"
	"orch/playbooks"
)

// TestDebianHostModules runs the modules that manage a whole system on one fresh Debian 12
// host booted by systemd (its own packages, units, users): each converges (--check changes
// nothing, one run changes, a second run and a second --check change nothing).
func TestDebianHostModules(t *testing.T) {
	e := newEnv(t, 1, lab.WithOS(lab.OSDebian))

	t.Run("apt update_cache", func(t *testing.T) {
		first := e.play(t, "apt: {update_cache: true}", false)
		if first.status != playbooks.StatusChanged || first.res.Data["cache_updated"] != true {
			t.Fatalf("update_cache: %s %v\n%s", first.status, first.res.Data, first.out)
		}
		if o := e.play(t, "apt: {update_cache: true, cache_valid_time: 3600}", false); o.status != playbooks.StatusOK {
			t.Fatalf("cache_valid_time after an update: %s, want ok\n%s", o.status, o.out)
		}
	})
	t.Run("apt present, absent, missing", func(t *testing.T) {
		installed := e.ok("dpkg-query -W -f='${Status}' hello | grep -q 'install ok installed'")
		e.converge(t, "apt: {name: hello, state: present}", installed)
		gone := func() bool { return !installed() }
		e.converge(t, "apt: {name: hello, state: absent, purge: true}", gone)
		for _, task := range []string{"apt: {autoremove: true}", "apt: {upgrade: safe, autoclean: true}"} {
			e.play(t, task, false)
			if o := e.play(t, task, false); o.status != playbooks.StatusOK {
				t.Errorf("%s a second time: %s, want ok\n%s", task, o.status, o.out)
			}
		}
		o := e.play(t, "apt: {name: no-such-package-orch}", false)
		if o.status != playbooks.StatusFailed || !strings.Contains(o.res.Msg, "No package matching 'no-such-package-orch'") {
			t.Fatalf("missing package: %s %q", o.status, o.res.Msg)
		}
	})
	t.Run("package with facts, several names", func(t *testing.T) {
		e.converge(t, "package: {name: [cron, curl, git, gnupg], state: latest}", e.ok("command -v crontab && command -v curl && command -v git && command -v gpg"))
	})
	t.Run("apt deb", func(t *testing.T) {
		if _, ok := e.sh("host1", `set -e; d=/root/pkg; mkdir -p $d/DEBIAN; printf 'Package: orch-test-deb\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@t>\nDescription: test\n' > $d/DEBIAN/control; dpkg-deb --build $d /root/orch-test.deb`); !ok {
			t.Fatal("building a .deb on the host")
		}
		e.converge(t, "apt: {deb: /root/orch-test.deb}", e.ok("dpkg-query -W -f='${Status}' orch-test-deb | grep -q 'install ok installed'"))
	})
	t.Run("systemd and service", func(t *testing.T) {
		if _, ok := e.sh("host1", "printf '[Unit]\\nDescription=t\\n[Service]\\nExecStart=/bin/sleep infinity\\n[Install]\\nWantedBy=multi-user.target\\n' > /lib/systemd/system/orchtest.service"); !ok {
			t.Fatal("writing the unit")
		}
		e.converge(t, "systemd: {name: orchtest, state: started, enabled: true, daemon_reload: true}",
			e.ok("systemctl is-active orchtest && systemctl is-enabled orchtest"))
		e.converge(t, "service: {name: orchtest, state: stopped, enabled: false}",
			e.ok("! systemctl is-active orchtest && ! systemctl is-enabled orchtest"))
		e.converge(t, "systemd: {name: orchtest, masked: true}", e.ok("[ \"$(systemctl is-enabled orchtest)\" = masked ]"))
		if o := e.play(t, "service: {name: no-such-unit, state: started}", false); o.status != playbooks.StatusFailed ||
			!strings.Contains(o.res.Msg, "Could not find the requested service no-such-unit") {
			t.Fatalf("missing unit: %s %q", o.status, o.res.Msg)
		}
		if o := e.play(t, "systemd: {name: ssh, state: restarted}", false); o.status != playbooks.StatusChanged {
			t.Fatalf("restarted is always a change: %s\n%s", o.status, o.out)
		}
	})
	t.Run("group and user", func(t *testing.T) {
		e.converge(t, "group: {name: orchg, gid: 2345}", e.ok("getent group orchg | grep -q ':2345:'"))
		e.converge(t, "group: {name: orchg, gid: 2346}", e.ok("getent group orchg | grep -q ':2346:'"))
		first := e.converge(t, "user: {name: orchu, uid: 2345, groups: [orchg], shell: /bin/bash, comment: Orch User}",
			e.ok("getent passwd orchu | grep -qx 'orchu:x:2345:2345:Orch User:/home/orchu:/bin/bash' && id -Gn orchu | grep -qw orchg && [ -d /home/orchu ]"))
		if first.res.Data["uid"] != 2345 || first.res.Data["home"] != "/home/orchu" {
			t.Errorf("user result: %v", first.res.Data)
		}
		e.converge(t, "user: {name: orchu, shell: /bin/sh, groups: [], append: false}", e.ok("getent passwd orchu | grep -q ':/bin/sh$' && ! id -Gn orchu | grep -qw orchg"))
		e.converge(t, "user: {name: orchu, state: absent, remove: true}", e.ok("! getent passwd orchu && [ ! -d /home/orchu ]"))
		e.converge(t, "group: {name: orchg, state: absent}", e.ok("! getent group orchg"))
	})
	t.Run("hostname", func(t *testing.T) {
		e.converge(t, "hostname: {name: orch-renamed}", e.ok("[ \"$(hostname)\" = orch-renamed ] && grep -qx orch-renamed /etc/hostname"))
		e.play(t, "hostname: {name: host1}", false)
	})
	t.Run("sysctl", func(t *testing.T) {
		e.converge(t, "sysctl: {name: net.ipv4.ip_forward, value: '1', sysctl_set: true, sysctl_file: /etc/sysctl.d/90-orch.conf}",
			e.ok("[ \"$(sysctl -n net.ipv4.ip_forward)\" = 1 ] && grep -qx net.ipv4.ip_forward=1 /etc/sysctl.d/90-orch.conf"))
	})
	t.Run("cron", func(t *testing.T) {
		e.converge(t, "cron: {name: orch job, minute: '*/5', job: /bin/true}", e.ok("crontab -l | grep -qx '\\*/5 \\* \\* \\* \\* /bin/true'"))
		e.converge(t, "cron: {name: orch job, state: absent}", e.ok("! crontab -l | grep -q 'orch job'"))
	})
	t.Run("mount", func(t *testing.T) {
		mounted := e.ok("grep -q ' /mnt/orch tmpfs ' /proc/self/mounts && grep -q '^tmpfs /mnt/orch tmpfs size=1m 0 0$' /etc/fstab")
		e.converge(t, "mount: {path: /mnt/orch, src: tmpfs, fstype: tmpfs, opts: size=1m, state: mounted}", mounted)
		e.converge(t, "mount: {path: /mnt/orch, state: absent}", e.ok("! grep -q ' /mnt/orch ' /proc/self/mounts && ! grep -q /mnt/orch /etc/fstab"))
	})
	t.Run("apt_repository", func(t *testing.T) {
		file := "/etc/apt/sources.list.d/192_0_2_1_debian.list"
		e.converge(t, "apt_repository: {repo: 'deb http://192.0.2.1/debian bookworm main', update_cache: false}", e.ok("grep -qx 'deb http://192.0.2.1/debian bookworm main' "+file))
		e.converge(t, "apt_repository: {repo: 'deb http://192.0.2.1/debian bookworm main', state: absent, update_cache: false}", e.ok("[ ! -e "+file+" ]"))
	})
	t.Run("dnf and yum without dnf", func(t *testing.T) {
		for _, m := range []string{"dnf", "yum"} {
			o := e.play(t, m+": {name: bash}", false)
			if o.status != playbooks.StatusFailed || !strings.Contains(o.res.Msg, m+" not found") {
				t.Errorf("%s on Debian: %s %q", m, o.status, o.res.Msg)
			}
		}
	})
	t.Run("files over ssh", func(t *testing.T) { filesOverSSH(t, e) })
	t.Run("apt_key", func(t *testing.T) {
		if _, ok := e.sh("host1", `export GNUPGHOME=$(mktemp -d); gpg --batch --passphrase '' --quick-gen-key orch-test@example.invalid ed25519 sign never && gpg --armor --export orch-test@example.invalid > /root/orch.asc`); !ok {
			t.Fatal("making a key on the host")
		}
		fpr, _ := e.sh("host1", `gpg --show-keys --with-colons /root/orch.asc | awk -F: '$1=="fpr"{print $10; exit}'`)
		listed := func(ring string) func() bool {
			return e.ok("gpg --no-default-keyring --keyring " + ring + " --with-colons --list-keys 2>/dev/null | grep -q " + fpr)
		}
		e.converge(t, "apt_key: {file: /root/orch.asc, keyring: /etc/apt/keyrings/orch.gpg}", listed("/etc/apt/keyrings/orch.gpg"))
		e.converge(t, "apt_key: {id: '"+fpr[len(fpr)-16:]+"', keyring: /etc/apt/keyrings/orch.gpg, state: absent}", func() bool { return !listed("/etc/apt/keyrings/orch.gpg")() })
		e.converge(t, "apt_key: {url: 'file:///root/orch.asc'}", listed("/etc/apt/trusted.gpg"))
	})
	t.Run("wait_for_connection", func(t *testing.T) {
		if o := e.play(t, "wait_for_connection: {timeout: 30}", false); o.status != playbooks.StatusOK {
			t.Fatalf("%s\n%s", o.status, o.out)
		}
	})
}

// filesOverSSH runs the file modules through SSH and SFTP: lineinfile, stat, slurp and fetch
// (back to this machine), unarchive and script (pushed over SFTP), get_url from an HTTP
// server on the lab's gateway, git from a repository on the host.
func filesOverSSH(t *testing.T, e *env) {
	e.converge(t, "lineinfile: {path: /etc/orch.conf, line: 'a = 1', create: true}", e.ok("grep -qx 'a = 1' /etc/orch.conf"))
	start := time.Now()
	e.play(t, "lineinfile: {path: /etc/orch.conf, line: 'a = 1'}", false)
	t.Logf("a converged lineinfile play over SSH (facts gathered, one probe): %v", time.Since(start))
	if o := e.play(t, "stat: {path: /etc/orch.conf}", false); o.res.Data["stat"].(map[string]any)["size"] != int64(6) {
		t.Errorf("stat: %v", o.res.Data)
	}
	if o := e.play(t, "slurp: {src: /etc/orch.conf}", false); o.res.Data["content"] != "YSA9IDEK" {
		t.Errorf("slurp: %v", o.res.Data)
	}
	dest := t.TempDir()
	e.converge(t, "fetch: {src: /etc/orch.conf, dest: '"+dest+"/'}", func() bool {
		b, err := os.ReadFile(filepath.Join(dest, "host1", "etc", "orch.conf"))
		return err == nil && string(b) == "a = 1\n"
	})

	ln, err := net.Listen("tcp", net.JoinHostPort(e.lab.Gateway(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("served\n")) })}
	go srv.Serve(ln)
	defer srv.Close()
	e.converge(t, "get_url: {url: 'http://"+ln.Addr().String()+"/x', dest: /root/got.txt, mode: '0600'}", e.ok("grep -qx served /root/got.txt && [ $(stat -c %a /root/got.txt) = 600 ]"))

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.sh"), []byte("#!/bin/sh\necho \"hi $1\" > /root/script.out\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	saved := e.dir
	e.dir = dir
	defer func() { e.dir = saved }()
	if o := e.play(t, "script: hello.sh there", false); o.status != playbooks.StatusChanged {
		t.Fatalf("script: %s\n%s", o.status, o.out)
	}
	if out, _ := e.sh("host1", "cat /root/script.out"); out != "hi there" {
		t.Errorf("script output %q", out)
	}
	if _, ok := e.sh("host1", "mkdir -p /root/src/d /root/out && echo x > /root/src/d/f && tar -C /root/src -czf /root/a.tgz d && "+
		"git init -q -b main /root/repo && cd /root/repo && echo 1 > f && git add f && git -c user.name=t -c user.email=t@t commit -qm one"); !ok {
		t.Fatal("preparing the archive and the repository")
	}
	e.converge(t, "unarchive: {src: /root/a.tgz, dest: /root/out, remote_src: true}", e.ok("grep -qx x /root/out/d/f"))
	e.converge(t, "git: {repo: /root/repo, dest: /root/clone}", e.ok("grep -qx 1 /root/clone/f"))
}
