package hostprep

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"orch/internal/shell"
	"orch/nodeagent/api"
)

// A Need is a command the agent will run on a member, why, and the package giving it under
// each package manager.
type Need struct {
	Tool string
	Why  string
	Apt  string
	Dnf  string
}

// Package returns the package providing the tool under package manager pm ("" if none).
func (n Need) Package(pm string) string {
	if pm == "apt" {
		return n.Apt
	}
	return n.Dnf
}

var (
	needLXC     = Need{"lxc-start", "instances", "lxc", "lxc"}
	needXZ      = Need{"xz", "images", "xz-utils", "xz"}
	needDnsmasq = Need{"dnsmasq", "DHCP on managed bridges", "dnsmasq-base", "dnsmasq"}
	needNft     = Need{"nft", "NAT on managed bridges", "nftables", "nftables"}
	poolNeeds   = map[string][]Need{
		"btrfs": {{"mkfs.btrfs", "btrfs storage pools", "btrfs-progs", "btrfs-progs"}},
		"lvm":   {{"lvcreate", "lvm storage pools", "lvm2", "lvm2"}},
		"zfs":   {{"zfs", "zfs storage pools", "zfsutils-linux", "zfs"}},
	}
)

// Needs lists what members of a cluster with the preseed's pools and networks need: LXC and
// xz always (every member runs instances from images), dnsmasq and nftables for bridge
// networks, each pool driver's tools.
func Needs(p *api.Preseed) []Need {
	needs := []Need{needLXC, needXZ}
	seen := map[string]bool{}
	add := func(ns ...Need) {
		for _, n := range ns {
			if !seen[n.Tool] {
				seen[n.Tool] = true
				needs = append(needs, n)
			}
		}
	}
	if p == nil {
		return needs
	}
	for _, n := range p.Networks {
		if n.Type == "" || n.Type == "bridge" {
			add(needDnsmasq, needNft)
		}
	}
	for _, pool := range p.StoragePools {
		add(poolNeeds[pool.Driver]...)
	}
	return needs
}

// MissingOn asks the host which of needs' tools it lacks, in one command of shell builtins
// (with the PATH the facts command uses): the cheap check before Gather, which starts a
// dozen programs on the host; at 200 hosts that was ~2.5 s of CPU for facts a converged or
// prepared host does not need.
func MissingOn(ctx context.Context, r Runner, needs []Need, become bool) ([]Need, error) {
	var names []string
	for _, n := range needs {
		names = append(names, shell.Quote(n.Tool))
	}
	script := "PATH=$PATH:/usr/sbin:/sbin\nfor t in " + strings.Join(names, " ") + "; do command -v \"$t\" >/dev/null 2>&1 || echo \"missing=$t\"; done\n"
	out, stderr, code, err := r.Run(ctx, script, nil, become)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFacts, err)
	}
	if code != 0 {
		return nil, fmt.Errorf("%w: exit %d: %s", ErrFacts, code, strings.TrimSpace(string(stderr)))
	}
	lacks := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		if t, ok := strings.CutPrefix(l, "missing="); ok {
			lacks[t] = true
		}
	}
	var missing []Need
	for _, n := range needs {
		if lacks[n.Tool] {
			missing = append(missing, n)
		}
	}
	return missing, nil
}

// Missing returns the needs whose tool the host lacks.
func Missing(f *Facts, needs []Need) []Need {
	var out []Need
	for _, n := range needs {
		if !f.Tools[n.Tool] {
			out = append(out, n)
		}
	}
	return out
}

// Packages returns the distinct packages giving needs under the host's package manager,
// sorted.
func Packages(f *Facts, needs []Need) []string {
	set := map[string]bool{}
	for _, n := range needs {
		if p := n.Package(f.PkgMgr); p != "" {
			set[p] = true
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Describe says what is missing, for --no-install's refusal: "lxc (for instances), ...".
func Describe(f *Facts, needs []Need) string {
	var parts []string
	for _, n := range needs {
		parts = append(parts, fmt.Sprintf("%s (%s, for %s)", n.Package(f.PkgMgr), n.Tool, n.Why))
	}
	return strings.Join(parts, ", ")
}

// Install installs pkgs with the host's package manager, non-interactively and without
// recommended packages. With apt, a first failure (often package lists never fetched on a
// fresh server) is followed by `apt-get update` and one more try. The error names the
// packages and carries the package manager's own last lines.
func Install(ctx context.Context, r Runner, f *Facts, pkgs []string, become bool) error {
	if len(pkgs) == 0 {
		return nil
	}
	list := strings.Join(pkgs, " ")
	switch f.PkgMgr {
	case "apt":
		install := "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends " + list
		if err := run(ctx, r, install, become); err == nil {
			return nil
		}
		if err := run(ctx, r, "DEBIAN_FRONTEND=noninteractive apt-get update -q", become); err != nil {
			return fmt.Errorf("%w %s: apt-get update: %w", ErrInstall, list, err)
		}
		if err := run(ctx, r, install, become); err != nil {
			return fmt.Errorf("%w %s: apt-get install: %w", ErrInstall, list, err)
		}
		return nil
	case "dnf", "yum":
		if err := run(ctx, r, f.PkgMgr+" install -y -q "+list, become); err != nil {
			return fmt.Errorf("%w %s: %s install: %w", ErrInstall, list, f.PkgMgr, err)
		}
		return nil
	}
	return fmt.Errorf("%w %s: %w (apt, dnf or yum) on %s %s", ErrInstall, list, ErrNoPackageManager, f.Distribution, f.Version)
}

// run runs cmd and turns a non-zero exit into an error carrying the last lines of output.
func run(ctx context.Context, r Runner, cmd string, become bool) error {
	stdout, stderr, code, err := r.Run(ctx, cmd, nil, become)
	if err != nil {
		return err
	}
	if code != 0 {
		out := strings.TrimSpace(string(stderr))
		if out == "" {
			out = strings.TrimSpace(string(stdout))
		}
		return fmt.Errorf("exit %d: %s", code, lastLines(out, 4))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
