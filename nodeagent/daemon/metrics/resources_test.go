package metrics

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestResourcesFromProc: two sockets of two cores with two threads each (processors listed
// in the kernel's interleaved order) come out grouped by socket and core, and memory used
// is total less available, huge pages in bytes.
func TestResourcesFromProc(t *testing.T) {
	var cpuinfo strings.Builder
	for p := range 8 {
		sock, core := p%2, (p/2)%2
		fmt.Fprintf(&cpuinfo, "processor\t: %d\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU\ncpu MHz\t\t: 2400.123\nphysical id\t: %d\ncore id\t\t: %d\n\n", p, sock, core)
	}
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"proc/cpuinfo": cpuinfo.String(),
		"proc/meminfo": "MemTotal:       4000 kB\nMemFree:         500 kB\nMemAvailable:   1000 kB\nHugePages_Total:       4\nHugePages_Free:        1\nHugepagesize:       2048 kB\n",
	})
	res, err := (Host{Proc: filepath.Join(root, "proc")}).Resources()
	if err != nil {
		t.Fatal(err)
	}
	if res.CPU.Total != 8 || len(res.CPU.Sockets) != 2 {
		t.Fatalf("cpu: %+v", res.CPU)
	}
	for i, s := range res.CPU.Sockets {
		if s.Socket != uint64(i) || s.Name != "Test CPU" || s.Frequency != 2400 || len(s.Cores) != 2 {
			t.Errorf("socket %d: %+v", i, s)
			continue
		}
		for j, c := range s.Cores {
			if c.Core != uint64(j) || len(c.Threads) != 2 || c.Threads[1].Thread != 1 || !c.Threads[0].Online {
				t.Errorf("socket %d core %d: %+v", i, j, c)
			}
		}
	}
	if got := res.CPU.Sockets[1].Cores[1].Threads; got[0].ID != 3 || got[1].ID != 7 {
		t.Errorf("socket 1 core 1 threads %+v, want processors 3 and 7", got)
	}
	m := res.Memory
	if m.Total != 4000*1024 || m.Used != 3000*1024 || m.HugepagesSize != 2<<20 || m.HugepagesTotal != 8<<20 || m.HugepagesUsed != 6<<20 {
		t.Errorf("memory: %+v", m)
	}
	if res.GPU.Cards == nil || res.Storage.Disks == nil || res.USB.Devices == nil {
		t.Errorf("inventories must be empty lists, not null: %+v", res)
	}
}
