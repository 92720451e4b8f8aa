package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Debian hosts are privileged LXC system containers booted by systemd, made from one base
// rootfs built once per machine with debootstrap and kept in baseCacheDir. Each host's
// rootfs is an overlay on that base: the base stays untouched, a host's changes (packages
// it installs, the agent, its data) live in its own upper directory under the lab.

const (
	// OSNamespace is the default kind of host: a network namespace running sshd over this
	// machine's filesystem and software.
	OSNamespace = ""
	// OSDebian is a Debian 12 system container booted by systemd, with its own packages.
	OSDebian = "debian"

	// debianSuite is the Debian release of the base rootfs.
	debianSuite = "bookworm"
	// baseCacheDir holds the base rootfs (BASE/rootfs) across labs and test runs.
	baseCacheDir = "/var/cache/orch-lab/debian-" + debianSuite
	// baseReady is created in the base rootfs once it is complete.
	baseReady = ".orch-lab-ready"
)

// basePackages is what the base rootfs holds beyond debootstrap's minbase: an init, sshd,
// certificates and ip; nothing orch needs for the cluster (LXC, dnsmasq, nftables, btrfs),
// so that `orch up` has to install those as on a fresh server.
var basePackages = []string{"systemd", "systemd-sysv", "dbus", "openssh-server", "ca-certificates", "iproute2"}

// debianRequirements are the tools Debian hosts need on this machine, with their packages.
var debianRequirements = []struct{ tool, pkg string }{
	{"debootstrap", "debootstrap"}, {"lxc-start", "lxc"}, {"nft", "nftables"},
}

// DebianBase returns the base rootfs of Debian hosts, building it first if this machine
// has none (about 40 s with a nearby mirror). Concurrent callers wait for one build.
func DebianBase(ctx context.Context) (string, error) {
	root := filepath.Join(baseCacheDir, "rootfs")
	if _, err := os.Stat(filepath.Join(root, baseReady)); err == nil {
		return root, nil
	}
	for _, r := range debianRequirements {
		if _, err := tool(r.tool); err != nil {
			return "", fmt.Errorf("debian hosts need %s (apt-get install %s)", r.tool, r.pkg)
		}
	}
	if err := os.MkdirAll(baseCacheDir, 0o755); err != nil {
		return "", err
	}
	err := withFileLock(filepath.Join(baseCacheDir, ".lock"), func() error {
		if _, err := os.Stat(filepath.Join(root, baseReady)); err == nil {
			return nil // built by another process while we waited
		}
		return buildBase(ctx, root)
	})
	return root, err
}

// buildBase runs debootstrap into a temporary directory, prepares it and renames it to root.
func buildBase(ctx context.Context, root string) error {
	mirror, err := aptMirror()
	if err != nil {
		return err
	}
	tmp := root + ".build"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	args := []string{"--variant=minbase", "--include=" + strings.Join(basePackages, ","), debianSuite, tmp, mirror}
	if out, err := exec.CommandContext(ctx, "debootstrap", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("debootstrap %s from %s: %w: %s", debianSuite, mirror, err, lastLines(out, 5))
	}
	if err := prepareBase(tmp); err != nil {
		return fmt.Errorf("preparing the Debian base: %w", err)
	}
	if err := os.RemoveAll(root); err != nil {
		return err
	}
	return os.Rename(tmp, root)
}

// prepareBase makes a debootstrapped tree a base for many hosts: no host keys or machine id
// of its own (each host gets its own), the machine's apt sources, and the ready mark.
func prepareBase(root string) error {
	keys, _ := filepath.Glob(filepath.Join(root, "etc/ssh/ssh_host_*"))
	for _, k := range keys {
		if err := os.Remove(k); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/machine-id"), nil, 0o444); err != nil {
		return err
	}
	if err := copyAptSources(root); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(root, baseReady), nil, 0o644)
}

// copyAptSources gives the base the apt sources of this machine (the mirror it may reach).
func copyAptSources(root string) error {
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	files = append(files, "/etc/apt/sources.list")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(root, f), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// aptMirror returns the Debian mirror this machine's apt sources use for the base suite,
// so that the lab never names a mirror of its own.
func aptMirror() (string, error) {
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, f := range files {
		if m := mirrorIn(f, deb822Mirror); m != "" {
			return m, nil
		}
	}
	if m := mirrorIn("/etc/apt/sources.list", oneLineMirror); m != "" {
		return m, nil
	}
	return "", fmt.Errorf("no Debian mirror for %s in this machine's apt sources (/etc/apt/sources.list{,.d})", debianSuite)
}

func mirrorIn(path string, parse func(*bufio.Scanner) string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	return parse(bufio.NewScanner(f))
}

// deb822Mirror reads a .sources file: the URIs of the first stanza of type deb whose Suites
// include the base suite.
func deb822Mirror(s *bufio.Scanner) string {
	fields := map[string]string{}
	flush := func() string {
		defer clear(fields)
		uris := strings.Fields(fields["uris"])
		if len(uris) > 0 && strings.Contains(" "+fields["types"]+" ", " deb ") && strings.Contains(" "+fields["suites"]+" ", " "+debianSuite+" ") {
			return uris[0]
		}
		return ""
	}
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" {
			if m := flush(); m != "" {
				return m
			}
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
	}
	return flush()
}

// oneLineMirror reads sources.list: the URI of the first "deb URI SUITE ..." line.
func oneLineMirror(s *bufio.Scanner) string {
	for s.Scan() {
		f := strings.Fields(s.Text())
		for len(f) > 1 && strings.HasPrefix(f[1], "[") { // deb [options] URI SUITE
			f = append(f[:1], f[2:]...)
		}
		if len(f) >= 3 && f[0] == "deb" && f[2] == debianSuite {
			return f[1]
		}
	}
	return ""
}

// lastLines returns the last n lines of out, for error messages.
func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
