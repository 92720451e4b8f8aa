// Package hostprep learns what a target host is (its facts, in one command) and installs what
// a cluster member needs there through the host's own package manager: LXC for instances,
// dnsmasq and nftables for managed bridges, the tools of the storage drivers in use. It
// knows nothing of playbooks; orch's modules call it over a host connection.
package hostprep

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
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
	System       string // uname -s: Linux (ansible_system)
	Release      string // os-release's VERSION_CODENAME: bookworm (ansible_distribution_release)
	PkgMgr       string // apt, dnf, yum or "" (ansible_pkg_mgr)
	// Features are kernel features: btrfs, zfs, device-mapper, nftables (built in, loaded or
	// available as a module).
	Features map[string]bool
	// Tools are the commands orch's agent drives, present or not (see tools).
	Tools map[string]bool
	// Hostname is the short host name, FQDN what `hostname -f` says (ansible_hostname, ansible_fqdn).
	Hostname, FQDN string
	// DefaultIPv4 is the interface of the default route, its first address and the gateway.
	DefaultIPv4 Address
	// IPv4 are every IPv4 address but loopback's (ansible_all_ipv4_addresses).
	IPv4 []Address
	// Interfaces are the network interfaces' names (ansible_interfaces).
	Interfaces []string
	// MemTotalMB is MemTotal in MiB; VCPUs the online processors (ansible_processor_vcpus).
	MemTotalMB, VCPUs int
	// Memory is /proc/meminfo's figures in KiB (MemFree, Buffers, Cached, SwapTotal,
	// SwapFree, SwapCached), for ansible_memory_mb and ansible_swap*_mb.
	Memory map[string]int
	// Sockets are the distinct physical ids of /proc/cpuinfo (ansible_processor_count), Cores
	// its "cpu cores" (ansible_processor_cores).
	Sockets, Cores int
	// FIPS is /proc/sys/crypto/fips_enabled set (ansible_fips).
	FIPS bool
	// Env is the command's environment (ansible_env).
	Env map[string]string
	// Time is the host's clock and time zone when the facts were read (ansible_date_time).
	Time time.Time
}

// Address is an IPv4 address on an interface.
type Address struct {
	Interface, Address, Gateway string
	Prefix                      int
}

// kernelFeatures maps a feature to the filesystem name, misc device or module showing it.
var kernelFeatures = map[string]string{"btrfs": "btrfs", "zfs": "zfs", "device-mapper": "dm_mod", "nftables": "nf_tables"}

// tools are the commands the agent runs, probed on every host.
var tools = []string{"lxc-start", "dnsmasq", "nft", "mkfs.btrfs", "lvcreate", "zfs", "xz"}

// factsScript prints key=value lines, then "env:" and the environment; it uses only POSIX
// sh and files every Linux has, and forks little (each fork costs a millisecond on a busy
// host): reads through `read`, one awk for routes, memory and CPUs.
const factsScript = `PATH=$PATH:/usr/sbin:/sbin
set -f
. /etc/os-release 2>/dev/null
echo "id=$ID"; echo "like=$ID_LIKE"; echo "name=$NAME"; echo "version=$VERSION_ID"; echo "release=$VERSION_CODENAME"
read -r init < /proc/1/comm 2>/dev/null; echo "init=$init"
set -- $(uname -srm); k=$2; echo "system=$1"; echo "arch=$3"; echo "kernel=$k"
for pm in apt-get dnf yum; do command -v $pm >/dev/null 2>&1 && { echo "pm=$pm"; break; }; done
for t in %s; do command -v $t >/dev/null 2>&1 && echo "tool=$t"; done
words=" $(cat /proc/filesystems /proc/misc 2>/dev/null | tr -s '\t\n' '  ') "
missing=
for f in %s; do
  case "$words" in *" $f "*) echo "feature=$f"; continue;; esac
  if [ -e /sys/module/$f ]; then echo "feature=$f"; else missing="$missing -o -name $f.ko*"; fi
done
[ -n "$missing" ] && [ -d /lib/modules/$k ] &&
  find /lib/modules/$k ${missing# -o } 2>/dev/null | sed -n 's|.*/\([^/]*\)\.ko.*|feature=\1|p' | sort -u
read -r h < /proc/sys/kernel/hostname 2>/dev/null; echo "hostname=$h"; echo "fqdn=$(hostname -f 2>/dev/null)"
awk 'FILENAME == "/proc/net/route" && $2 == "00000000" && !r { print "route=" $1 " " $3; r = 1 }
  /^MemTotal:/ { print "memkb=" $2 } /^processor/ { n++ }
  /^(MemFree|Buffers|Cached|SwapTotal|SwapFree|SwapCached):/ { print "mem=" $1 $2 }
  /^physical id/ { if (!($4 in s)) { s[$4] = 1; ns++ } } /^cpu cores/ && !c { c = $4 }
  END { print "vcpus=" n; print "sockets=" ns; print "cores=" c }' /proc/net/route /proc/meminfo /proc/cpuinfo 2>/dev/null
read -r fips < /proc/sys/crypto/fips_enabled 2>/dev/null; echo "fips=$fips"
ip -o -4 addr show 2>/dev/null | awk '{ print "addr=" $2 " " $4 }'
set +f; for i in /sys/class/net/*; do echo "iface=${i##*/}"; done
echo "date=$(date '+%%s %%N %%z %%Z')"
echo "env:"; env -0 2>/dev/null || env
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
	out, env, hasEnv := strings.Cut(out, "\nenv:\n")
	f := parseLines(out)
	if hasEnv {
		f.Env = parseEnv(env)
	}
	return f
}

// parseEnv reads `env -0` (NUL-separated) or, without -0, `env` (lines).
func parseEnv(s string) map[string]string {
	sep := "\x00"
	if !strings.Contains(s, sep) {
		sep = "\n"
	}
	env := map[string]string{}
	for _, kv := range strings.Split(s, sep) {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			env[k] = v
		}
	}
	return env
}

func parseLines(out string) *Facts {
	f := &Facts{Features: map[string]bool{}, Tools: map[string]bool{}, Memory: map[string]int{}}
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
		case k == "iface":
			if v != "*" {
				f.Interfaces = append(f.Interfaces, v)
			}
		case k == "addr":
			if a, ok := parseAddr(v); ok && a.Interface != "lo" && !strings.HasPrefix(a.Address, "127.") {
				f.IPv4 = append(f.IPv4, a)
			}
		case k == "mem":
			if name, n, ok := strings.Cut(v, ":"); ok {
				f.Memory[name], _ = strconv.Atoi(n)
			}
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
	f.System, f.Release = kv["system"], kv["release"]
	f.PkgMgr = strings.TrimSuffix(kv["pm"], "-get")
	f.Hostname, f.FQDN = kv["hostname"], kv["fqdn"]
	if f.FQDN == "" {
		f.FQDN = f.Hostname
	}
	if mem, err := strconv.Atoi(kv["memkb"]); err == nil {
		f.MemTotalMB = mem / 1024
	}
	f.VCPUs, _ = strconv.Atoi(kv["vcpus"])
	f.Sockets, _ = strconv.Atoi(kv["sockets"])
	f.Cores, _ = strconv.Atoi(kv["cores"])
	f.FIPS = kv["fips"] == "1"
	f.DefaultIPv4 = defaultRoute(kv["route"], f.IPv4)
	f.Time = parseDate(kv["date"])
	return f
}

// parseAddr reads "eth0 192.0.2.2/24".
func parseAddr(v string) (Address, bool) {
	iface, cidr, ok := strings.Cut(v, " ")
	if !ok {
		return Address{}, false
	}
	ip, prefix, _ := strings.Cut(cidr, "/")
	n, err := strconv.Atoi(prefix)
	if err != nil || net.ParseIP(ip) == nil {
		return Address{}, false
	}
	return Address{Interface: iface, Address: ip, Prefix: n}, true
}

// defaultRoute reads "eth0 010200C0" (/proc/net/route: the gateway in hex,
// little-endian) and finds the interface's first address.
func defaultRoute(route string, addrs []Address) Address {
	iface, hexGW, ok := strings.Cut(route, " ")
	if !ok {
		return Address{}
	}
	a := Address{Interface: iface}
	if b, err := hex.DecodeString(hexGW); err == nil && len(b) == 4 {
		a.Gateway = net.IPv4(b[3], b[2], b[1], b[0]).String()
	}
	for _, x := range addrs {
		if x.Interface == iface {
			a.Address, a.Prefix = x.Address, x.Prefix
			break
		}
	}
	return a
}

// parseDate reads "epoch nanoseconds +hhmm ZONE".
func parseDate(v string) time.Time {
	fields := strings.Fields(v)
	if len(fields) < 3 {
		return time.Time{}
	}
	sec, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil {
		return time.Time{}
	}
	nsec, _ := strconv.ParseInt(fields[1], 10, 64) // busybox prints %N literally
	name := fields[2]
	if len(fields) > 3 {
		name = fields[3]
	}
	offset := 0
	if z := fields[2]; len(z) == 5 {
		h, _ := strconv.Atoi(z[1:3])
		m, _ := strconv.Atoi(z[3:5])
		offset = (h*60 + m) * 60
		if z[0] == '-' {
			offset = -offset
		}
	}
	return time.Unix(sec, nsec).In(time.FixedZone(name, offset))
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
	out := map[string]any{
		"ansible_os_family":                  f.OSFamily,
		"ansible_distribution":               f.Distribution,
		"ansible_distribution_version":       f.Version,
		"ansible_distribution_major_version": major,
		"ansible_service_mgr":                f.ServiceMgr,
		"ansible_architecture":               f.Architecture,
		"ansible_kernel":                     f.Kernel,
		"ansible_system":                     f.System,
		"ansible_distribution_release":       f.Release,
		"ansible_pkg_mgr":                    f.PkgMgr,
		"orch_kernel_features":               features,
		"orch_tools":                         present,
		"ansible_hostname":                   f.Hostname,
		"ansible_nodename":                   f.Hostname,
		"ansible_fqdn":                       f.FQDN,
		"ansible_default_ipv4":               f.DefaultIPv4.fact(),
		"ansible_all_ipv4_addresses":         f.allIPv4(),
		"ansible_interfaces":                 anyList(f.Interfaces),
		"ansible_memtotal_mb":                f.MemTotalMB,
		"ansible_processor_vcpus":            f.VCPUs,
		"ansible_processor_count":            f.processorCount(),
		"ansible_processor_cores":            f.processorCores(),
		"ansible_processor_threads_per_core": f.threadsPerCore(),
		"ansible_machine":                    f.Architecture,
		"ansible_memory_mb":                  f.memoryMB(),
		"ansible_memfree_mb":                 f.Memory["MemFree"] / 1024,
		"ansible_swaptotal_mb":               f.Memory["SwapTotal"] / 1024,
		"ansible_swapfree_mb":                f.Memory["SwapFree"] / 1024,
		"ansible_fips":                       f.FIPS,
		"ansible_env":                        anyMap(f.Env),
		"ansible_date_time":                  dateTime(f.Time),
	}
	for _, a := range f.IPv4 {
		key := "ansible_" + strings.NewReplacer("-", "_", ".", "_").Replace(a.Interface)
		if _, taken := out[key]; !taken {
			out[key] = map[string]any{"device": a.Interface, "ipv4": a.fact()}
		}
	}
	return out
}

// processorCount is Ansible's: the sockets, or the processors when cpuinfo has no
// physical ids (ARM, some VMs).
func (f *Facts) processorCount() int {
	if f.Sockets > 0 {
		return f.Sockets
	}
	return f.VCPUs
}

// processorCores is the cores per socket ("cpu cores"), 1 when cpuinfo does not say.
func (f *Facts) processorCores() int {
	if f.Cores > 0 {
		return f.Cores
	}
	return 1
}

// threadsPerCore is vcpus / (sockets * cores), at least 1, as Ansible derives it.
func (f *Facts) threadsPerCore() int {
	if n := f.processorCount() * f.processorCores(); n > 0 && f.VCPUs/n > 0 {
		return f.VCPUs / n
	}
	return 1
}

// memoryMB is Ansible's ansible_memory_mb: real, nocache and swap, in MiB.
func (f *Facts) memoryMB() map[string]any {
	m := f.Memory
	total, free := f.MemTotalMB, m["MemFree"]/1024
	nocacheFree := (m["MemFree"] + m["Buffers"] + m["Cached"]) / 1024
	swapTotal, swapFree := m["SwapTotal"]/1024, m["SwapFree"]/1024
	return map[string]any{
		"real":    map[string]any{"total": total, "free": free, "used": total - free},
		"nocache": map[string]any{"free": nocacheFree, "used": total - nocacheFree},
		"swap":    map[string]any{"total": swapTotal, "free": swapFree, "used": swapTotal - swapFree, "cached": m["SwapCached"] / 1024},
	}
}

func (a Address) fact() map[string]any {
	if a.Interface == "" {
		return map[string]any{}
	}
	out := map[string]any{"interface": a.Interface, "alias": a.Interface}
	if a.Gateway != "" {
		out["gateway"] = a.Gateway
	}
	if a.Address != "" {
		mask := net.CIDRMask(a.Prefix, 32)
		out["address"] = a.Address
		out["prefix"] = strconv.Itoa(a.Prefix)
		out["netmask"] = net.IP(mask).String()
		out["network"] = net.ParseIP(a.Address).Mask(mask).String()
	}
	return out
}

func (f *Facts) allIPv4() []any {
	out := make([]any, len(f.IPv4))
	for i, a := range f.IPv4 {
		out[i] = a.Address
	}
	return out
}

func anyList(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}

func anyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// dateTime is Ansible's ansible_date_time (strings, as Ansible's are).
func dateTime(t time.Time) map[string]any {
	if t.IsZero() {
		return map[string]any{}
	}
	u := t.UTC()
	return map[string]any{
		"year": t.Format("2006"), "month": t.Format("01"), "monthname": t.Format("January"), "day": t.Format("02"),
		"hour": t.Format("15"), "minute": t.Format("04"), "second": t.Format("05"),
		"weekday": t.Format("Monday"), "weekday_number": strconv.Itoa(int(t.Weekday())), "weeknumber": fmt.Sprintf("%02d", mondayWeek(t)),
		"epoch": strconv.FormatInt(t.Unix(), 10), "epoch_int": strconv.FormatInt(t.Unix(), 10),
		"date": t.Format("2006-01-02"), "time": t.Format("15:04:05"),
		"iso8601": u.Format("2006-01-02T15:04:05Z"), "iso8601_micro": u.Format("2006-01-02T15:04:05.000000Z"),
		"iso8601_basic": t.Format("20060102T150405") + fmt.Sprintf("%06d", t.Nanosecond()/1000), "iso8601_basic_short": t.Format("20060102T150405"),
		"tz": t.Format("MST"), "tz_offset": t.Format("-0700"), "tz_dst": t.Format("MST"),
	}
}

// mondayWeek is strftime's %W: the week of the year, weeks starting on Monday.
func mondayWeek(t time.Time) int {
	yday := t.YearDay() - 1
	wday := (int(t.Weekday()) + 6) % 7
	return (yday + 7 - wday) / 7
}
