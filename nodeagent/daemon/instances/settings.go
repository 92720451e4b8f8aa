package instances

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"orch/modules/lxc"
	"orch/nodeagent/api"
	"orch/nodeagent/daemon/rest"
)

// This file turns an instance's profiles and config into what its container gets (LXD's
// expanded config and devices): the root disk's pool and eth0, which are fixed when the
// container is made, and the settings that can change later (lxc.Settings): the limits
// (limits.cpu, limits.memory, limits.processes) and further devices — disk devices
// bind-mounting a host path, nic devices on a managed network or a host bridge.

// LXD's limits keys orch applies.
const (
	keyLimitsCPU       = "limits.cpu"
	keyLimitsMemory    = "limits.memory"
	keyLimitsProcesses = "limits.processes"
)

// limitsKey reports whether k is one of the limits keys orch applies.
func limitsKey(k string) bool {
	return k == keyLimitsCPU || k == keyLimitsMemory || k == keyLimitsProcesses
}

var cpusetRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\d+(-\d+)?(,\d+(-\d+)?)*$`) })

// parseLimits reads the limits keys of an expanded config, naming the key of a bad value.
func parseLimits(c map[string]string) (lxc.Limits, error) {
	var l lxc.Limits
	if v := c[keyLimitsCPU]; v != "" {
		cpus, err := cpusetOf(v)
		if err != nil {
			return l, rest.BadRequest("config key %s: %v", keyLimitsCPU, err)
		}
		l.CPUs = cpus
	}
	if v := c[keyLimitsMemory]; v != "" {
		b, err := memoryBytes(v)
		if err != nil {
			return l, rest.BadRequest("config key %s: %v", keyLimitsMemory, err)
		}
		l.Memory = b
	}
	if v := c[keyLimitsProcesses]; v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return l, rest.BadRequest("config key %s: %q is not a number of processes", keyLimitsProcesses, v)
		}
		l.Processes = n
	}
	return l, nil
}

// cpusetOf is LXD's limits.cpu as a cpuset: a number N is the first N online CPUs (all of
// them when there are fewer), a list or range ("0-1,3") is pinned as given.
func cpusetOf(v string) (string, error) {
	if n, err := strconv.Atoi(v); err == nil {
		if n < 1 {
			return "", fmt.Errorf("%q: at least 1 CPU", v)
		}
		online := onlineCPUs()
		return strings.Join(online[:min(n, len(online))], ","), nil
	}
	if !cpusetRE().MatchString(v) {
		return "", fmt.Errorf("%q is neither a number of CPUs nor a list of CPUs such as 0-1,3", v)
	}
	return v, nil
}

// onlineCPUs are the host's online CPU numbers, "0" when they cannot be read.
func onlineCPUs() []string {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return []string{"0"}
	}
	var out []string
	for _, part := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		z, err2 := strconv.Atoi(hi)
		if !isRange {
			z, err2 = a, err1
		}
		if err1 != nil || err2 != nil {
			continue
		}
		for i := a; i <= z; i++ {
			out = append(out, strconv.Itoa(i))
		}
	}
	if len(out) == 0 {
		return []string{"0"}
	}
	return out
}

// memoryUnits are LXD's size suffixes.
var memoryUnits = []struct {
	suffix string
	factor int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"kB", 1000}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"TB", 1000 * 1000 * 1000 * 1000},
	{"B", 1},
}

// memoryBytes is LXD's limits.memory in bytes: a size with LXD's suffixes (256MB, 1GiB),
// a number of bytes, or a percentage of the host's memory.
func memoryBytes(v string) (int64, error) {
	if p, ok := strings.CutSuffix(v, "%"); ok {
		pct, err := strconv.ParseFloat(p, 64)
		if err != nil || pct <= 0 || pct > 100 {
			return 0, fmt.Errorf("%q is not a percentage of the host's memory", v)
		}
		total, err := hostMemory()
		if err != nil {
			return 0, err
		}
		return int64(float64(total) * pct / 100), nil
	}
	num, factor := v, int64(1)
	for _, u := range memoryUnits {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			num, factor = n, u.factor
			break
		}
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size (such as 256MiB, 1GB or 50%%)", v)
	}
	b := int64(n * float64(factor))
	if b < 4<<20 {
		return 0, fmt.Errorf("%q is below 4MiB, too little for a container", v)
	}
	return b, nil
}

// hostMemory is MemTotal of /proc/meminfo, in bytes.
func hostMemory() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/meminfo: no MemTotal")
}

// expansion is what a container gets of its profiles and config.
type expansion struct {
	launchSpec
	limits lxc.Limits
	// nics and disks are the devices beyond the root disk and eth0, by device name.
	nics, disks []namedDevice
}

// namedDevice is one device of the expanded devices.
type namedDevice struct {
	name string
	kv   map[string]string
}

// expand merges the profiles in order (a later one replaces a device of the same name),
// overlays config on their config and own (the instance's devices) on their devices; a
// missing profile or a device orch cannot give a container is refused, naming it.
func (s *Service) expand(ctx context.Context, profiles []string, config map[string]string, own map[string]map[string]string) (expansion, error) {
	var ex expansion
	ex.pool = "default"
	devices := map[string]map[string]string{}
	expanded := map[string]string{}
	for _, n := range profiles {
		p, err := s.profile(ctx, n)
		if err != nil {
			return ex, err
		}
		maps.Copy(expanded, p.Config)
		for dev, kv := range p.Devices {
			devices[dev] = kv
		}
	}
	maps.Copy(expanded, config)
	maps.Copy(devices, own)
	limits, err := parseLimits(expanded)
	if err != nil {
		return ex, err
	}
	ex.limits = limits
	eth0 := ""
	for _, dev := range slices.Sorted(maps.Keys(devices)) {
		kv := devices[dev]
		switch {
		case kv["type"] == "disk" && kv["path"] == "/":
			if kv["pool"] != "" {
				ex.pool = kv["pool"]
			}
		case kv["type"] == "disk":
			if err := checkDisk(dev, kv); err != nil {
				return ex, err
			}
			ex.disks = append(ex.disks, namedDevice{dev, kv})
		case kv["type"] == "nic" && eth0 == "" && (kv["name"] == "eth0" || kv["name"] == "" && (dev == "eth0" || !hasEth0(devices))):
			eth0 = dev
			ex.parent, ex.network, ex.hwaddr = kv["parent"], kv["network"], kv["hwaddr"]
			if ex.network != "" {
				ex.parent = ""
			}
		case kv["type"] == "nic":
			if err := checkNIC(dev, kv); err != nil {
				return ex, err
			}
			ex.nics = append(ex.nics, namedDevice{dev, kv})
		}
	}
	return ex, nil
}

// hasEth0 reports whether a nic device names its interface eth0 or is called eth0.
func hasEth0(devices map[string]map[string]string) bool {
	for dev, kv := range devices {
		if kv["type"] == "nic" && (kv["name"] == "eth0" || kv["name"] == "" && dev == "eth0") {
			return true
		}
	}
	return false
}

// profile is the named profile, or a 404 naming it ("default" is made when first missing).
func (s *Service) profile(ctx context.Context, name string) (api.Profile, error) {
	ps, err := s.profiles(ctx, name)
	if err == nil && len(ps) == 0 && name == "default" {
		if err := s.ensureDefaultProfile(ctx); err != nil {
			return api.Profile{}, err
		}
		ps, err = s.profiles(ctx, name)
	}
	if err != nil {
		return api.Profile{}, err
	}
	if len(ps) == 0 {
		return api.Profile{}, rest.NotFound("no profile named %q", name)
	}
	return ps[0], nil
}

// checkDisk validates a disk device other than the root disk: an absolute path in the
// container, and an absolute host source or a custom volume (pool and source, its name).
func checkDisk(dev string, kv map[string]string) error {
	switch {
	case !filepath.IsAbs(kv["path"]):
		return rest.BadRequest("device %s: path %q is not an absolute path in the instance", dev, kv["path"])
	case kv["pool"] != "" && (kv["source"] == "" || strings.Contains(kv["source"], "/")):
		return rest.BadRequest("device %s: source %q is not a custom volume of pool %s", dev, kv["source"], kv["pool"])
	case kv["pool"] == "" && !filepath.IsAbs(kv["source"]):
		return rest.BadRequest("device %s: source %q is not an absolute host path", dev, kv["source"])
	case kv["readonly"] != "" && kv["readonly"] != "true" && kv["readonly"] != "false":
		return rest.BadRequest("device %s: readonly %q is not true or false", dev, kv["readonly"])
	}
	return nil
}

// checkNIC validates a nic device other than eth0: bridged, on a network or a parent bridge.
func checkNIC(dev string, kv map[string]string) error {
	switch {
	case kv["nictype"] != "" && kv["nictype"] != "bridged":
		return rest.BadRequest("device %s: nictype %q (only bridged)", dev, kv["nictype"])
	case kv["network"] == "" && kv["parent"] == "":
		return rest.BadRequest("device %s: a nic needs a network or a parent bridge", dev)
	case kv["mtu"] != "":
		if n, err := strconv.Atoi(kv["mtu"]); err != nil || n < 576 {
			return rest.BadRequest("device %s: mtu %q", dev, kv["mtu"])
		}
	}
	return nil
}

// settingsHere resolves an expansion's settings on this member: each nic's bridge must
// exist here and each disk's source must be here.
func (s *Service) settingsHere(ctx context.Context, ex expansion) (lxc.Settings, error) {
	set := lxc.Settings{Limits: ex.limits}
	for _, d := range ex.nics {
		br, err := s.bridgeHere(ctx, d.name, launchSpec{parent: d.kv["parent"], network: d.kv["network"]})
		if err != nil {
			return set, err
		}
		mtu, _ := strconv.Atoi(d.kv["mtu"])
		name := d.kv["name"]
		if name == "" {
			name = d.name
		}
		set.NICs = append(set.NICs, lxc.NIC{Name: name, Bridge: br, HWAddr: d.kv["hwaddr"], MTU: mtu})
	}
	for _, d := range ex.disks {
		src, err := s.diskSource(ctx, d)
		if err != nil {
			return set, err
		}
		fi, err := os.Stat(src)
		if err != nil {
			return set, rest.BadRequest("device %s: source %s does not exist on member %s", d.name, src, s.members.Self())
		}
		set.Disks = append(set.Disks, lxc.Disk{Source: src, Path: d.kv["path"],
			ReadOnly: d.kv["readonly"] == "true", File: !fi.IsDir()})
	}
	return set, nil
}

// diskSource is the host path of a disk device here: its source, or where this member
// mounts the custom volume it names (which must be on this member).
func (s *Service) diskSource(ctx context.Context, d namedDevice) (string, error) {
	pool, vol := d.kv["pool"], d.kv["source"]
	if pool == "" {
		return vol, nil
	}
	e, ok, err := s.entities.Pool(ctx, pool)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", rest.NotFound("device %s: storage pool %q does not exist", d.name, pool)
	}
	me := s.members.Self()
	if !e.CreatedOn(me) {
		return "", rest.Conflict("device %s: storage pool %q is not created on member %s", d.name, pool, me)
	}
	rows, err := s.db.Query(ctx, `SELECT 1 FROM storage_volumes v JOIN members m ON m.id = v.member_id
		WHERE v.pool_id = ? AND v.type = 'custom' AND v.name = ? AND m.name = ?`, e.ID(), vol, me)
	if err != nil {
		return "", err
	}
	if len(rows) == 0 {
		return "", rest.NotFound("device %s: no custom volume %q in pool %s on member %s", d.name, vol, pool, me)
	}
	_, p, err := s.entities.PoolDriver(e)
	if err != nil {
		return "", err
	}
	return p.VolumePath(vol), nil
}

// checkDevices validates an instance's own devices as a profile's (disk or nic).
func checkDevices(devices map[string]map[string]string) error {
	for _, dev := range slices.Sorted(maps.Keys(devices)) {
		kv := devices[dev]
		switch {
		case kv["type"] == "disk" && kv["path"] == "/":
		case kv["type"] == "disk":
			if err := checkDisk(dev, kv); err != nil {
				return err
			}
		case kv["type"] == "nic":
		default:
			return rest.BadRequest("device %s: type %q (disk or nic)", dev, kv["type"])
		}
	}
	return nil
}

// bridgeHere is the host bridge of a nic device: a managed network's, which must be
// created on this member, or an existing parent bridge.
func (s *Service) bridgeHere(ctx context.Context, dev string, spec launchSpec) (string, error) {
	me := s.members.Self()
	if spec.network != "" {
		e, ok, err := s.entities.Network(ctx, spec.network)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", rest.NotFound("network %q of %s does not exist", spec.network, dev)
		}
		if !e.CreatedOn(me) {
			return "", rest.Conflict("network %q of %s is not created on member %s", spec.network, dev, me)
		}
		return spec.network, nil
	}
	if _, err := net.InterfaceByName(spec.parent); err != nil {
		return "", rest.Conflict("bridge %q of %s does not exist on member %s", spec.parent, dev, me)
	}
	return spec.parent, nil
}

// refreshSettings gives this member's container of the instance what its profiles and
// config say now (a profile changed while this member was away, or just now).
func (s *Service) refreshSettings(ctx context.Context, m *lxc.Manager, row instanceRow) error {
	ex, err := s.expand(ctx, profileList(row.profiles), userConfig(row.config), row.devices)
	if err != nil {
		return err
	}
	set, err := s.settingsHere(ctx, ex)
	if err != nil {
		return err
	}
	return driverError(m.Apply(ctx, row.name, set))
}

// userConfig is c without the volatile keys.
func userConfig(c map[string]string) map[string]string {
	out := make(map[string]string, len(c))
	for k, v := range c {
		if !strings.HasPrefix(k, "volatile.") {
			out[k] = v
		}
	}
	return out
}

// profileList is an instance row's profiles column as a list ("" is none).
func profileList(col string) []string {
	if col == "" {
		return []string{}
	}
	return strings.Split(col, ",")
}
