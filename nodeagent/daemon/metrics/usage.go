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

	"orch/nodeagent/api"
)

// Usage fills the measured part of a running container's state (GET .../state, what `lxc
// info` shows under Resources) from the same sources as its metrics: CPU time in
// nanoseconds, memory and swap usage with their peaks, processes, and the counters of each
// interface of its network namespace. PID is its init's PID on the host. What cannot be
// read stays zero and is named in the error; the rest is still filled.
func (h Host) Usage(pid int, st *api.InstanceState) error {
	var errs []error
	cg, err := h.cgroupsOf(pid)
	if err != nil {
		errs = append(errs, err)
	}
	if st.CPU.Usage, err = cg.cpuNanoseconds(); err != nil {
		errs = append(errs, fmt.Errorf("cpu: %w", err))
	}
	if err := cg.memoryUsage(&st.Memory); err != nil {
		errs = append(errs, fmt.Errorf("memory: %w", err))
	}
	if v, err := readUint(cg.file("pids", "pids.current", "pids.current")); err == nil {
		st.Processes = int64(v)
	}
	if err := h.networkCounters(pid, st); err != nil {
		errs = append(errs, fmt.Errorf("network: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("usage of the container of PID %d: %w", pid, err)
	}
	return nil
}

// cpuNanoseconds is the CPU time the cgroup used: cpu.stat's usage_usec (v2) or
// cpuacct.usage (v1, already in nanoseconds).
func (c cgroups) cpuNanoseconds() (int64, error) {
	if c.v2 != "" {
		if st, err := readKeyed(filepath.Join(c.v2, "cpu.stat")); err == nil {
			if us, ok := st["usage_usec"]; ok {
				return int64(us) * 1000, nil
			}
		}
	}
	ns, err := readUint(c.file("cpuacct", "", "cpuacct.usage"))
	return int64(ns), err
}

// memoryUsage reads memory usage and swap with their peaks (v2's memory.peak and
// memory.swap.peak exist from Linux 5.19 and 6.5: older kernels leave the peaks zero).
func (c cgroups) memoryUsage(m *api.InstanceStateMemory) error {
	v2 := c.v2 != "" && exists(filepath.Join(c.v2, "memory.current"))
	dir := c.v2
	if !v2 {
		if dir = c.v1["memory"]; dir == "" {
			return errors.New("no memory cgroup")
		}
	}
	usage, _, swap, _ := memoryFiles(dir, v2)
	used, err := readUint(usage)
	if err != nil {
		return err
	}
	m.Usage = int64(used)
	peak := filepath.Join(dir, "memory.max_usage_in_bytes")
	swapPeak := filepath.Join(dir, "memory.memsw.max_usage_in_bytes")
	if v2 {
		peak, swapPeak = filepath.Join(dir, "memory.peak"), filepath.Join(dir, "memory.swap.peak")
	}
	if v, err := readUint(peak); err == nil {
		m.UsagePeak = int64(v)
	}
	if v, err := readUint(swap); err == nil {
		if !v2 { // memsw counts memory and swap together
			v -= min(v, used)
		}
		m.SwapUsage = int64(v)
	}
	if v, err := readUint(swapPeak); err == nil {
		if !v2 {
			v -= min(v, uint64(m.UsagePeak))
		}
		m.SwapUsagePeak = int64(v)
	}
	return nil
}

// stateCounters are LXD's names of an interface's counters in an instance's state, by
// /proc/net/dev column.
var stateCounters = []struct {
	col  int
	name string
}{
	{0, "bytes_received"}, {1, "packets_received"}, {2, "errors_received"}, {3, "packets_dropped_inbound"},
	{8, "bytes_sent"}, {9, "packets_sent"}, {10, "errors_sent"}, {11, "packets_dropped_outbound"},
}

// networkCounters adds each interface of the container's network namespace (but lo) to
// st.Network with its counters, keeping the addresses already there.
func (h Host) networkCounters(pid int, st *api.InstanceState) error {
	path := filepath.Join(h.Proc, strconv.Itoa(pid), "net", "dev")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if st.Network == nil {
		st.Network = map[string]api.InstanceStateNetwork{}
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		dev, rest, ok := strings.Cut(sc.Text(), ":")
		if dev = strings.TrimSpace(dev); !ok || dev == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			return fmt.Errorf("%s: %q: %d columns", path, dev, len(f))
		}
		nic, ok := st.Network[dev]
		if !ok {
			nic = api.InstanceStateNetwork{Addresses: []api.InstanceStateNetworkAddress{}, State: "up", Type: "broadcast"}
		}
		nic.Counters = make(map[string]int64, len(stateCounters))
		for _, c := range stateCounters {
			v, _ := strconv.ParseInt(f[c.col], 10, 64)
			nic.Counters[c.name] = v
		}
		st.Network[dev] = nic
	}
	return sc.Err()
}
