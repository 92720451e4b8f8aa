package metrics

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Instance metrics, as LXD names them for a container: CPU time, memory and processes from
// the container's cgroups (v2, or v1 controllers on a hybrid or legacy host), network
// counters of the container's interfaces from its network namespace (/proc/PID/net/dev,
// the container's own view, as LXD reports them).

// Instance is a running instance of this member.
type Instance struct {
	Name    string
	Project string
	Type    string // "container"
	PID     int    // its init's PID on the host
}

// Host is where the member reads instances' counters (a test points it at fixtures).
type Host struct {
	// Proc is the procfs mount, normally /proc.
	Proc string
}

// addInstance adds one instance's metrics to s; what cannot be read is left out and
// reported in the error (the other instances and metrics are still served).
func (h Host) addInstance(s *Set, in Instance) error {
	l := Labels{"name": in.Name, "project": in.Project, "type": in.Type}
	var errs []string
	cg, err := h.cgroupsOf(in.PID)
	if err != nil {
		errs = append(errs, err.Error())
	}
	if err := cg.addCPU(s, l); err != nil {
		errs = append(errs, err.Error())
	}
	if err := cg.addMemory(s, l, h.hostMemTotal()); err != nil {
		errs = append(errs, err.Error())
	}
	if v, err := readUint(cg.file("pids", "pids.current", "pids.current")); err == nil {
		s.Add("lxd_procs_total", "The number of running processes.", Gauge, l, float64(v))
	}
	if err := h.addNetwork(s, l, in.PID); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("instance %s: %s", in.Name, strings.Join(errs, "; "))
	}
	return nil
}

// cgroups are a container's cgroup directories: its v2 one ("" without a cgroup2 mount)
// and its v1 one per controller.
type cgroups struct {
	v2 string
	v1 map[string]string
}

// file is the path of a controller's file: in the v2 directory when the file is there
// (its controller is enabled there), else in the controller's v1 directory ("" if none).
// An empty v2name means the file exists in v1 only.
func (c cgroups) file(controller, v2name, v1name string) string {
	if c.v2 != "" && v2name != "" {
		p := filepath.Join(c.v2, v2name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if d := c.v1[controller]; d != "" {
		return filepath.Join(d, v1name)
	}
	return ""
}

// cgroupsOf finds the container's cgroups: for every hierarchy its init is in, the
// lxc.payload.* ancestor of its init's cgroup (init may sit in a child cgroup of its own,
// as systemd's init.scope), under that hierarchy's mount point.
func (h Host) cgroupsOf(pid int) (cgroups, error) {
	c := cgroups{v1: map[string]string{}}
	mounts, err := cgroupMounts(h.Proc)
	if err != nil {
		return c, err
	}
	path := filepath.Join(h.Proc, strconv.Itoa(pid), "cgroup")
	b, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		rel := payloadDir(f[2])
		if f[0] == "0" && f[1] == "" {
			if m := mounts[""]; m != "" {
				c.v2 = filepath.Join(m, rel)
			}
			continue
		}
		for _, ctl := range strings.Split(f[1], ",") {
			if m := mounts[ctl]; m != "" {
				c.v1[ctl] = filepath.Join(m, rel)
			}
		}
	}
	return c, nil
}

// payloadDir cuts a cgroup path after its lxc.payload.* component, if it has one.
func payloadDir(rel string) string {
	parts := strings.Split(strings.Trim(rel, "/"), "/")
	for i, p := range parts {
		if strings.HasPrefix(p, "lxc.payload.") {
			return "/" + strings.Join(parts[:i+1], "/")
		}
	}
	return rel
}

// cgroupMounts maps each v1 controller to its mount point and "" to the cgroup2 mount.
func cgroupMounts(proc string) (map[string]string, error) {
	path := filepath.Join(proc, "self", "mounts")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		switch f[2] {
		case "cgroup2":
			out[""] = f[1]
		case "cgroup":
			for _, opt := range strings.Split(f[3], ",") {
				out[opt] = f[1]
			}
		}
	}
	return out, nil
}

// userHZ is the unit of cgroup v1's cpuacct.stat.
const userHZ = 100

// addCPU reads cpu.stat (v2) or cpuacct.stat (v1). Neither has per-CPU user and system
// times, so (as LXD on cgroup v2) they are reported as cpu "0".
func (c cgroups) addCPU(s *Set, l Labels) error {
	secs := map[string]float64{}
	if c.v2 != "" {
		if st, err := readKeyed(filepath.Join(c.v2, "cpu.stat")); err == nil {
			secs["user"], secs["system"] = float64(st["user_usec"])/1e6, float64(st["system_usec"])/1e6
		}
	}
	if len(secs) == 0 {
		st, err := readKeyed(c.file("cpuacct", "", "cpuacct.stat"))
		if err != nil {
			return fmt.Errorf("cpu: %w", err)
		}
		secs["user"], secs["system"] = float64(st["user"])/userHZ, float64(st["system"])/userHZ
	}
	for _, mode := range []string{"user", "system"} {
		s.Add("lxd_cpu_seconds_total", "The total number of CPU time used in seconds.", Counter,
			with(l, "cpu", "0", "mode", mode), secs[mode])
	}
	if b, err := os.ReadFile(c.file("cpuset", "cpuset.cpus.effective", "cpuset.effective_cpus")); err == nil {
		if n := countCPUs(strings.TrimSpace(string(b))); n > 0 {
			s.Add("lxd_cpu_effective_total", "The total number of effective CPUs.", Gauge, l, float64(n))
		}
	}
	return nil
}

// memoryStats maps LXD's memory metric names to cgroup v2 memory.stat keys.
var memoryStats = []struct{ name, key, help string }{
	{"Active_anon", "active_anon", "The amount of anonymous memory on active LRU list."},
	{"Active_file", "active_file", "The amount of file-backed memory on active LRU list."},
	{"Inactive_anon", "inactive_anon", "The amount of anonymous memory on inactive LRU list."},
	{"Inactive_file", "inactive_file", "The amount of file-backed memory on inactive LRU list."},
	{"Unevictable", "unevictable", "The amount of unevictable memory."},
	{"Cached", "file", "The amount of cached memory."},
	{"Dirty", "file_dirty", "The amount of memory waiting to get written back to the disk."},
	{"Writeback", "file_writeback", "The amount of memory currently being written back to the disk."},
	{"Mapped", "file_mapped", "The amount of mapped memory."},
	{"RSS", "anon", "The amount of anonymous and swap cache memory."},
	{"Shmem", "shmem", "The amount of cached filesystem data that is swap-backed."},
}

// addMemory reads memory.stat and the usage, limit, swap and OOM kill counts, from v2's
// files or v1's (whose memory.stat keys for the whole subtree start with total_).
func (c cgroups) addMemory(s *Set, l Labels, hostTotal uint64) error {
	v2 := c.v2 != "" && exists(filepath.Join(c.v2, "memory.stat"))
	dir, prefix := c.v2, ""
	if !v2 {
		if dir, prefix = c.v1["memory"], "total_"; dir == "" {
			return errors.New("memory: no memory cgroup")
		}
	}
	st, err := readKeyed(filepath.Join(dir, "memory.stat"))
	if err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	stat := func(key string) uint64 {
		if !v2 {
			key = v1MemoryKeys[key]
		}
		return st[prefix+key]
	}
	bytes := func(name, help string, v uint64) {
		s.Add("lxd_memory_"+name+"_bytes", help, Gauge, l, float64(v))
	}
	for _, m := range memoryStats {
		bytes(m.name, m.help, stat(m.key))
	}
	bytes("Active", "The amount of memory on active LRU list.", stat("active_anon")+stat("active_file"))
	bytes("Inactive", "The amount of memory on inactive LRU list.", stat("inactive_anon")+stat("inactive_file"))
	usage, limit, swap, ooms := memoryFiles(dir, v2)
	used, err := readUint(usage)
	if err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	total, err := readUint(limit) // v2 "max" or v1's huge number: no limit
	if err != nil || total == 0 || (hostTotal > 0 && total > hostTotal) {
		total = hostTotal
	}
	if total > 0 {
		free := uint64(0)
		if total > used {
			free = total - used
		}
		bytes("MemTotal", "The amount of usable memory.", total)
		bytes("MemFree", "The amount of free memory.", free)
		bytes("MemAvailable", "The amount of available memory.", free+stat("inactive_file"))
	}
	if v, err := readUint(swap); err == nil {
		if !v2 { // memsw counts memory and swap together
			v -= min(v, used)
		}
		bytes("Swap", "The amount of used swap memory.", v)
	}
	if ev, err := readKeyed(ooms); err == nil {
		s.Add("lxd_memory_OOM_kills_total", "The number of out of memory kills.", Counter, l, float64(ev["oom_kill"]))
	}
	return nil
}

// memoryFiles are the usage, limit, swap and OOM event files of a memory cgroup.
func memoryFiles(dir string, v2 bool) (usage, limit, swap, ooms string) {
	if v2 {
		return filepath.Join(dir, "memory.current"), filepath.Join(dir, "memory.max"),
			filepath.Join(dir, "memory.swap.current"), filepath.Join(dir, "memory.events")
	}
	return filepath.Join(dir, "memory.usage_in_bytes"), filepath.Join(dir, "memory.limit_in_bytes"),
		filepath.Join(dir, "memory.memsw.usage_in_bytes"), filepath.Join(dir, "memory.oom_control")
}

// v1MemoryKeys are cgroup v1's memory.stat names (after total_) of the v2 keys used.
var v1MemoryKeys = map[string]string{
	"active_anon": "active_anon", "active_file": "active_file", "inactive_anon": "inactive_anon",
	"inactive_file": "inactive_file", "unevictable": "unevictable", "file": "cache",
	"file_dirty": "dirty", "file_writeback": "writeback", "file_mapped": "mapped_file",
	"anon": "rss", "shmem": "shmem",
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// hostMemTotal is the host's MemTotal in bytes, 0 when unknown.
func (h Host) hostMemTotal() uint64 {
	b, err := os.ReadFile(filepath.Join(h.Proc, "meminfo"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// netColumns are /proc/net/dev's receive then transmit columns LXD reports, by position.
var netColumns = []struct {
	col            int
	metric, help   string
	receive, bytes bool
}{
	{0, "lxd_network_receive_bytes_total", "The amount of received bytes on a given interface.", true, true},
	{1, "lxd_network_receive_packets_total", "The amount of received packets on a given interface.", true, false},
	{2, "lxd_network_receive_errs_total", "The amount of received errors on a given interface.", true, false},
	{3, "lxd_network_receive_drop_total", "The amount of received dropped bytes on a given interface.", true, false},
	{8, "lxd_network_transmit_bytes_total", "The amount of transmitted bytes on a given interface.", false, true},
	{9, "lxd_network_transmit_packets_total", "The amount of transmitted packets on a given interface.", false, false},
	{10, "lxd_network_transmit_errs_total", "The amount of transmitted errors on a given interface.", false, false},
	{11, "lxd_network_transmit_drop_total", "The amount of transmitted dropped bytes on a given interface.", false, false},
}

// addNetwork reads the container's interfaces' counters from its network namespace.
func (h Host) addNetwork(s *Set, l Labels, pid int) error {
	path := filepath.Join(h.Proc, strconv.Itoa(pid), "net", "dev")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		dev, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			return fmt.Errorf("%s: %q: %d columns", path, strings.TrimSpace(dev), len(f))
		}
		for _, c := range netColumns {
			v, _ := strconv.ParseUint(f[c.col], 10, 64)
			s.Add(c.metric, c.help, Counter, with(l, "device", strings.TrimSpace(dev)), float64(v))
		}
	}
	return sc.Err()
}

// readKeyed reads a cgroup "key value" file.
func readKeyed(path string) (map[string]uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 {
			out[f[0]], _ = strconv.ParseUint(f[1], 10, 64)
		}
	}
	return out, nil
}

// readUint reads a cgroup file holding one number.
func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// countCPUs counts a cpuset list such as "0-3,6".
func countCPUs(list string) int {
	n := 0
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			continue
		}
		if !isRange {
			n++
			continue
		}
		if b, err := strconv.Atoi(hi); err == nil && b >= a {
			n += b - a + 1
		}
	}
	return n
}

// with is l plus the key/value pairs kv.
func with(l Labels, kv ...string) Labels {
	out := make(Labels, len(l)+len(kv)/2)
	for k, v := range l {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}
