package metrics

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/rest"
)

// getResources is GET /1.0/resources (`lxc info --resources [--target M]`): this member's
// CPUs and memory, or ?target='s.
func (s *Service) getResources(w http.ResponseWriter, r *http.Request) error {
	if t := rest.Target(r); t != "" && t != s.d.Members.Self() {
		ctx, cancel := context.WithTimeout(r.Context(), scrapeTimeout)
		defer cancel()
		return s.forward(ctx, w, t, "/1.0/resources")
	}
	res, err := s.d.Host.Resources()
	if err != nil {
		return err
	}
	return rest.WriteOK(w, res, "")
}

// Resources reads the host's CPUs (/proc/cpuinfo: sockets, cores, threads) and memory
// (/proc/meminfo: used is total less available) as LXD's resources API shows them.
func (h Host) Resources() (api.Resources, error) {
	res := api.Resources{GPU: api.ResourcesList{Cards: []any{}}, Network: api.ResourcesList{Cards: []any{}},
		Storage: api.ResourcesStorage{Disks: []any{}}, USB: api.ResourcesDevices{Devices: []any{}}, PCI: api.ResourcesDevices{Devices: []any{}}}
	b, err := os.ReadFile(filepath.Join(h.Proc, "cpuinfo"))
	if err != nil {
		return res, err
	}
	res.CPU = parseCPUInfo(b)
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		res.CPU.Architecture = unix.ByteSliceToString(u.Machine[:])
	}
	mem, err := readMeminfo(filepath.Join(h.Proc, "meminfo"))
	if err != nil {
		return res, err
	}
	res.Memory = api.ResourcesMemory{Total: mem["MemTotal"], HugepagesSize: mem["Hugepagesize"]}
	if avail, ok := mem["MemAvailable"]; ok && avail <= res.Memory.Total {
		res.Memory.Used = res.Memory.Total - avail
	}
	pages, free := mem["HugePages_Total"]/1024, mem["HugePages_Free"]/1024 // counts, not kB (readMeminfo multiplied)
	res.Memory.HugepagesTotal = pages * res.Memory.HugepagesSize
	res.Memory.HugepagesUsed = (pages - min(free, pages)) * res.Memory.HugepagesSize
	return res, nil
}

// parseCPUInfo groups /proc/cpuinfo's processors by "physical id" (socket) and "core id"
// (core); a processor without them is its own core of socket 0.
func parseCPUInfo(b []byte) api.ResourcesCPU {
	type key struct{ socket, core uint64 }
	sockets := map[uint64]*api.ResourcesCPUSocket{}
	cores := map[key]*api.ResourcesCPUCore{}
	var out api.ResourcesCPU
	for _, block := range bytes.Split(b, []byte("\n\n")) {
		f := cpuFields(block)
		id, err := strconv.ParseInt(f["processor"], 10, 64)
		if err != nil {
			continue
		}
		sock, _ := strconv.ParseUint(f["physical id"], 10, 64)
		core, err := strconv.ParseUint(f["core id"], 10, 64)
		if err != nil {
			core = uint64(id)
		}
		mhz, _ := strconv.ParseFloat(f["cpu MHz"], 64)
		s := sockets[sock]
		if s == nil {
			s = &api.ResourcesCPUSocket{Socket: sock, Name: f["model name"], Vendor: f["vendor_id"], Frequency: uint64(mhz)}
			sockets[sock] = s
		}
		c := cores[key{sock, core}]
		if c == nil {
			c = &api.ResourcesCPUCore{Core: core, Frequency: uint64(mhz)}
			cores[key{sock, core}] = c
		}
		c.Threads = append(c.Threads, api.ResourcesCPUThread{ID: id, Thread: uint64(len(c.Threads)), Online: true})
		out.Total++
	}
	for k, c := range cores {
		sockets[k.socket].Cores = append(sockets[k.socket].Cores, *c)
	}
	for _, s := range sockets {
		sort.Slice(s.Cores, func(i, j int) bool { return s.Cores[i].Core < s.Cores[j].Core })
		out.Sockets = append(out.Sockets, *s)
	}
	sort.Slice(out.Sockets, func(i, j int) bool { return out.Sockets[i].Socket < out.Sockets[j].Socket })
	if out.Sockets == nil {
		out.Sockets = []api.ResourcesCPUSocket{}
	}
	return out
}

// cpuFields reads one processor's "key : value" lines.
func cpuFields(block []byte) map[string]string {
	f := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(block))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			f[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return f
}

// readMeminfo reads /proc/meminfo in bytes (its kB values ×1024; the HugePages_ counts
// come out ×1024 too).
func readMeminfo(path string) (map[string]uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, k, err)
		}
		out[k] = n * 1024
	}
	return out, nil
}
