// Package hostprep learns what a target host is (its facts, in one command) and installs what
// a cluster member needs there through the host's own package manager: LXC for instances,
// dnsmasq and nftables for managed bridges, the tools of the storage drivers in use. It
// knows nothing of playbooks; orch's modules call it over a host connection.
package hostprep

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Sentinel errors.
var (
	// ErrFacts means the facts command failed or printed something unreadable.
	ErrFacts = errors.New("gathering facts")
	// ErrMissing means packages are missing and installing was not allowed.
	ErrMissing = errors.New("missing packages")
	// ErrInstall means the package manager failed.
	ErrInstall = errors.New("installing packages")
	// ErrNoPackageManager means the host has no package manager orch knows (apt, dnf, yum).
	ErrNoPackageManager = errors.New("no known package manager")
)

// Runner runs a shell command on a host (playbooks.Conn has this method).
type Runner interface {
	Run(ctx context.Context, cmd string, stdin io.Reader, become bool) (stdout, stderr []byte, exitCode int, err error)
}

// Facts is what one command tells orch about a host.
type Facts struct {
	OSFamily     string // Debian, RedHat, ... (Ansible's ansible_os_family)
	Distribution string // Debian, Ubuntu, Fedora, ... (ansible_distribution)
	Version      string // 12, 24.04, 40 (ansible_distribution_version)
	ServiceMgr   string // systemd when systemd is PID 1, else PID 1's name (ansible_service_mgr)
	Architecture string // uname -m (ansible_architecture)
	Kernel       string // uname -r (ansible_kernel)
	PkgMgr       string // apt, dnf, yum or "" (ansible_pkg_mgr)
	// Features are kernel features: btrfs, zfs, device-mapper, nftables (built in, loaded or
	// available as a module).
	Features map[string]bool
	// Tools are the commands orch's agent drives, present or not (see tools).
	Tools map[string]bool
}

// kernelFeatures maps a feature to the filesystem name, misc device or module showing it.
var kernelFeatures = map[string]string{"btrfs": "btrfs", "zfs": "zfs", "device-mapper": "dm_mod", "nftables": "nf_tables"}

// tools are the commands the agent runs, probed on every host.
var tools = []string{"lxc-start", "dnsmasq", "nft", "mkfs.btrfs", "lvcreate", "zfs", "xz"}

// factsScript prints key=value lines; it uses only POSIX sh and files every Linux has.
const factsScript = `PATH=$PATH:/usr/sbin:/sbin
. /etc/os-release 2>/dev/null
echo "id=$ID"; echo "like=$ID_LIKE"; echo "name=$NAME"; echo "version=$VERSION_ID"
echo "init=$(cat /proc/1/comm 2>/dev/null)"; echo "arch=$(uname -m)"; echo "kernel=$(uname -r)"
for pm in apt-get dnf yum; do command -v $pm >/dev/null 2>&1 && { echo "pm=$pm"; break; }; done
for t in %s; do command -v $t >/dev/null 2>&1 && echo "tool=$t"; done
for f in %s; do
  if grep -qw "$f" /proc/filesystems 2>/dev/null || [ -e /sys/module/$f ] || grep -qw "$f" /proc/misc 2>/dev/null ||
     find /lib/modules/$(uname -r) -name "$f.ko*" 2>/dev/null | grep -q .; then echo "feature=$f"; fi
done
`

// Gather asks the host for its facts in one command.
func Gather(ctx context.Context, r Runner, become bool) (*Facts, error) {
	var mods []string
	for _, m := range kernelFeatures {
		mods = append(mods, m)
	}
	sort.Strings(mods)
	script := fmt.Sprintf(factsScript, strings.Join(tools, " "), strings.Join(mods, " "))
	out, stderr, code, err := r.Run(ctx, script, nil, become)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFacts, err)
	}
	if code != 0 {
		return nil, fmt.Errorf("%w: exit %d: %s", ErrFacts, code, strings.TrimSpace(string(stderr)))
	}
	return parseFacts(string(out)), nil
}

func parseFacts(out string) *Facts {
	f := &Facts{Features: map[string]bool{}, Tools: map[string]bool{}}
	for _, t := range tools {
		f.Tools[t] = false
	}
	for feature := range kernelFeatures {
		f.Features[feature] = false
	}
	kv := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, "=")
		switch {
		case !ok:
		case k == "tool":
			f.Tools[v] = true
		case k == "feature":
			for feature, mod := range kernelFeatures {
				if mod == v {
					f.Features[feature] = true
				}
			}
		default:
			kv[k] = v
		}
	}
	f.Distribution, f.Version = distribution(kv["id"], kv["name"]), kv["version"]
	f.OSFamily = osFamily(kv["id"], kv["like"])
	f.ServiceMgr, f.Architecture, f.Kernel = kv["init"], kv["arch"], kv["kernel"]
	f.PkgMgr = strings.TrimSuffix(kv["pm"], "-get")
	return f
}

// distribution is Ansible's name for the distribution with os-release ID id.
func distribution(id, name string) string {
	switch id {
	case "debian":
		return "Debian"
	case "ubuntu":
		return "Ubuntu"
	case "fedora":
		return "Fedora"
	case "rhel":
		return "RedHat"
	case "centos":
		return "CentOS"
	case "rocky":
		return "Rocky"
	case "almalinux":
		return "AlmaLinux"
	}
	if name != "" {
		return name
	}
	return id
}

// osFamily is Ansible's OS family: Debian for Debian and its derivatives, RedHat for the
// Fedora/RHEL line.
func osFamily(id, like string) string {
	words := " " + id + " " + like + " "
	switch {
	case strings.Contains(words, " debian ") || strings.Contains(words, " ubuntu "):
		return "Debian"
	case strings.Contains(words, " fedora ") || strings.Contains(words, " rhel ") || strings.Contains(words, " centos "):
		return "RedHat"
	}
	return distribution(id, "")
}

// AnsibleFacts returns the facts under Ansible's names (ansible_os_family, ...), plus
// orch_kernel_features and orch_tools, for a playbook's host variables.
func (f *Facts) AnsibleFacts() map[string]any {
	major, _, _ := strings.Cut(f.Version, ".")
	features, present := map[string]any{}, map[string]any{}
	for k, v := range f.Features {
		features[k] = v
	}
	for k, v := range f.Tools {
		present[k] = v
	}
	return map[string]any{
		"ansible_os_family":                  f.OSFamily,
		"ansible_distribution":               f.Distribution,
		"ansible_distribution_version":       f.Version,
		"ansible_distribution_major_version": major,
		"ansible_service_mgr":                f.ServiceMgr,
		"ansible_architecture":               f.Architecture,
		"ansible_kernel":                     f.Kernel,
		"ansible_pkg_mgr":                    f.PkgMgr,
		"orch_kernel_features":               features,
		"orch_tools":                         present,
	}
}
