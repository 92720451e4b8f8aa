package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"orch/internal/shell"
)

// sshdConfig renders the sshd configuration of one host. Root logs in by key only; the
// orchtest user uses the same authorized_keys file; session limits are high because orch
// opens many sessions at once; TCP forwarding serves ProxyJump.
func sshdConfig(addr, hostKey, authorizedKeys string) string {
	lines := []string{
		"ListenAddress " + addr + ":22",
		"HostKey " + hostKey,
		"PidFile none",
		"AuthorizedKeysFile " + authorizedKeys,
		"PermitRootLogin prohibit-password",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"StrictModes no",
		"UseDNS no",
		"PrintMotd no",
		"PrintLastLog no",
		"AllowTcpForwarding yes",
		"AllowAgentForwarding yes",
		"X11Forwarding no",
		"MaxSessions 1000",
		"MaxStartups 1000",
		"LoginGraceTime 60",
		"AcceptEnv LANG LC_*",
		"Subsystem sftp internal-sftp",
	}
	return strings.Join(lines, "\n") + "\n"
}

// launchScript is run by `sh -c` inside the host's fresh mount and UTS namespaces: it names
// the host, bind-mounts the host's own directories, gives the host a sysfs of its network
// namespace (keeping the cgroup mounts), drops its copies of other labs' netns mounts (so
// those namespaces can be freed when their labs delete them) and becomes sshd.
func launchScript(h *Host, sshd string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("set -e")
	w("printf %%s %s > /proc/sys/kernel/hostname", shell.Quote(h.Name))
	for _, m := range h.lab.st.Mounts {
		w("mount --bind %s %s", shell.Quote(h.mountSource(m)), shell.Quote(m))
	}
	w("mount --bind %s /etc/hosts", shell.Quote(h.lab.hostsFile()))
	if cgroupMounted() {
		tmp := shell.Quote(filepath.Join(h.DataDir(), "cgroup"))
		w("mount --rbind /sys/fs/cgroup %s", tmp)
		w("mount -t sysfs sysfs /sys")
		w("mount --move %s /sys/fs/cgroup", tmp)
	} else {
		w("mount -t sysfs sysfs /sys")
	}
	// `ip netns add` bind-mounts /run/netns on itself (shared): netns mounts made before
	// that sit under that mount and only show once it is gone, so unmount in rounds,
	// deepest first, until none is left.
	w(`i=0; while [ $i -lt 5 ]; do m=; while read -r _ _ _ _ p _; do case $p in %[1]s|%[1]s/*) m="$p $m";; esac; done < /proc/self/mountinfo`, netnsDir)
	w(`  [ -n "$m" ] || break; for p in $m; do umount -l "$p" 2>/dev/null || true; done; i=$((i+1)); done`)
	w("exec %s -D -e -f %s", shell.Quote(sshd), shell.Quote(h.sshdConfigFile()))
	return b.String()
}

// cgroupMounted reports whether /sys/fs/cgroup is a mount point (it has to be carried
// over when the host gets its own sysfs).
func cgroupMounted() bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == "/sys/fs/cgroup" {
			return true
		}
	}
	return false
}

// tool finds a system binary, also in the sbin directories that a non-login PATH may lack.
func tool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}
