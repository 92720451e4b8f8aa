package metrics

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orch/nodeagent/api"
)

// writeFiles writes files (path relative to root: content).
func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const netDev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     840      10    0    0    0     0          0         0      840      10    0    0    0     0       0          0
  eth0:    1500       5    1    2    0     0          0         0      700       7    3    4    0     0       0          0
`

// TestInstanceMetricsCgroupV1 reads a container on a legacy/hybrid host (fixtures of
// /proc and the cgroup v1 mounts; TestMetrics in integration/instances scrapes a real one):
// the container's directories are the lxc.payload.* ancestors of its init's cgroups.
func TestInstanceMetricsCgroupV1(t *testing.T) {
	root := t.TempDir()
	cg := filepath.Join(root, "cg")
	writeFiles(t, root, map[string]string{
		"proc/self/mounts": "cgroup " + cg + "/cpuacct cgroup rw,cpuacct 0 0\ncgroup " + cg + "/memory cgroup rw,memory 0 0\n" +
			"cgroup " + cg + "/pids cgroup rw,pids 0 0\ncgroup2 " + cg + "/unified cgroup2 rw 0 0\n",
		"proc/meminfo":    "MemTotal:        4000 kB\n",
		"proc/42/cgroup":  "4:memory:/agent/lxc.payload.n1-c1/init.scope\n3:pids:/lxc.payload.n1-c1\n2:cpuacct:/lxc.payload.n1-c1\n0::/lxc.payload.n1-c1\n",
		"proc/42/net/dev": netDev,
		"cg/cpuacct/lxc.payload.n1-c1/cpuacct.stat":                   "user 250\nsystem 50\n",
		"cg/cpuacct/lxc.payload.n1-c1/cpuacct.usage":                  "3000000000\n",
		"cg/memory/agent/lxc.payload.n1-c1/memory.max_usage_in_bytes": "4096\n",
		"cg/memory/agent/lxc.payload.n1-c1/memory.stat":               "rss 1\ntotal_rss 2048\ntotal_cache 1024\ntotal_inactive_file 512\n",
		"cg/memory/agent/lxc.payload.n1-c1/memory.usage_in_bytes":     "3072\n",
		"cg/memory/agent/lxc.payload.n1-c1/memory.limit_in_bytes":     "9223372036854771712\n",
		"cg/memory/agent/lxc.payload.n1-c1/memory.oom_control":        "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
		"cg/pids/lxc.payload.n1-c1/pids.current":                      "7\n",
		"cg/unified/lxc.payload.n1-c1/cgroup.procs":                   "42\n",
	})
	s := NewSet()
	if err := (Host{Proc: filepath.Join(root, "proc")}).addInstance(s, Instance{Name: "c1", Project: "default", Type: "container", PID: 42}); err != nil {
		t.Fatal(err)
	}
	text := s.String()
	l := `name="c1",project="default",type="container"`
	for _, want := range []string{
		"# TYPE lxd_cpu_seconds_total counter\n",
		`lxd_cpu_seconds_total{cpu="0",mode="user",` + l + "} 2.5\n",
		`lxd_cpu_seconds_total{cpu="0",mode="system",` + l + "} 0.5\n",
		"lxd_memory_RSS_bytes{" + l + "} 2048\n",
		"lxd_memory_Cached_bytes{" + l + "} 1024\n",
		"lxd_memory_MemTotal_bytes{" + l + "} 4.096e+06\n",
		"lxd_memory_MemFree_bytes{" + l + "} 4.092928e+06\n",
		"lxd_memory_OOM_kills_total{" + l + "} 3\n",
		"lxd_procs_total{" + l + "} 7\n",
		`lxd_network_receive_bytes_total{device="eth0",` + l + "} 1500\n",
		`lxd_network_transmit_drop_total{device="eth0",` + l + "} 4\n",
		`lxd_network_transmit_packets_total{device="lo",` + l + "} 10\n",
		"# EOF\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
	checkUsage(t, root, api.InstanceState{CPU: api.InstanceStateCPU{Usage: 3e9}, Processes: 7,
		Memory: api.InstanceStateMemory{Usage: 3072, UsagePeak: 4096}})
}

// TestInstanceMetricsCgroupV2 reads a container on a unified host, its init in a child
// cgroup of the container's.
func TestInstanceMetricsCgroupV2(t *testing.T) {
	root := t.TempDir()
	cg := filepath.Join(root, "cg")
	d := "cg/lxc.payload.n1-c1/"
	writeFiles(t, root, map[string]string{
		"proc/self/mounts":          "cgroup2 " + cg + " cgroup2 rw 0 0\n",
		"proc/meminfo":              "MemTotal:        4000 kB\n",
		"proc/42/cgroup":            "0::/lxc.payload.n1-c1/init.scope\n",
		"proc/42/net/dev":           netDev,
		d + "cpu.stat":              "usage_usec 3000000\nuser_usec 2000000\nsystem_usec 1000000\n",
		d + "memory.stat":           "anon 4096\nfile 1024\ninactive_file 100\n",
		d + "memory.current":        "5120\n",
		d + "memory.peak":           "6000\n",
		d + "memory.max":            "8192\n",
		d + "memory.events":         "oom 0\noom_kill 1\n",
		d + "pids.current":          "3\n",
		d + "cpuset.cpus.effective": "0-1,3\n",
	})
	s := NewSet()
	if err := (Host{Proc: filepath.Join(root, "proc")}).addInstance(s, Instance{Name: "c1", Project: "default", Type: "container", PID: 42}); err != nil {
		t.Fatal(err)
	}
	text := s.String()
	l := `name="c1",project="default",type="container"`
	for _, want := range []string{
		`lxd_cpu_seconds_total{cpu="0",mode="user",` + l + "} 2\n",
		"lxd_cpu_effective_total{" + l + "} 3\n",
		"lxd_memory_RSS_bytes{" + l + "} 4096\n",
		"lxd_memory_MemTotal_bytes{" + l + "} 8192\n",
		"lxd_memory_MemAvailable_bytes{" + l + "} 3172\n",
		"lxd_memory_OOM_kills_total{" + l + "} 1\n",
		"lxd_procs_total{" + l + "} 3\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
	checkUsage(t, root, api.InstanceState{CPU: api.InstanceStateCPU{Usage: 3e9}, Processes: 3,
		Memory: api.InstanceStateMemory{Usage: 5120, UsagePeak: 6000}})
}

// checkUsage: Host.Usage on the fixtures under root (PID 42) gives want's CPU, memory and
// processes, and eth0's counters by LXD's names (lo left out).
func checkUsage(t *testing.T, root string, want api.InstanceState) {
	t.Helper()
	var st api.InstanceState
	if err := (Host{Proc: filepath.Join(root, "proc")}).Usage(42, &st); err != nil {
		t.Fatal(err)
	}
	if st.CPU != want.CPU || st.Memory != want.Memory || st.Processes != want.Processes {
		t.Errorf("usage: cpu %+v memory %+v processes %d; want %+v %+v %d", st.CPU, st.Memory, st.Processes, want.CPU, want.Memory, want.Processes)
	}
	eth0 := st.Network["eth0"].Counters
	if len(st.Network) != 1 || eth0["bytes_received"] != 1500 || eth0["packets_sent"] != 7 || eth0["packets_dropped_outbound"] != 4 {
		t.Errorf("usage: network %+v", st.Network)
	}
}

// TestLabelsEscaped checks the text format's escaping of label values and help.
func TestLabelsEscaped(t *testing.T) {
	s := NewSet()
	s.Add("x_total", "a \\ b\nc", Counter, Labels{"b": "q\"uote", "a": "back\\slash\nnl"}, 1)
	want := "# HELP x_total a \\\\ b\\nc\n# TYPE x_total counter\nx_total{a=\"back\\\\slash\\nnl\",b=\"q\\\"uote\"} 1\n# EOF\n"
	if got := s.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// noCluster is a member without a database (raft and member metrics left out).
type noCluster struct{}

func (noCluster) Raft() (Raft, bool)                              { return Raft{}, false }
func (noCluster) Members(context.Context) ([]MemberHealth, error) { return nil, nil }

// TestInstanceMetricsCached: instance metrics are collected once per InstanceCacheTTL,
// whatever the number of scrapes (each lists every container and reads its cgroups), a
// failed listing is not cached, and the internal metrics stay live.
func TestInstanceMetricsCached(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"proc/self/mounts": "", "proc/42/cgroup": "", "proc/42/net/dev": netDev})
	now := time.Unix(1000, 0)
	lists, fail := 0, false
	s := New(Deps{Cluster: noCluster{}, Host: Host{Proc: filepath.Join(root, "proc")}, Started: now,
		Now: func() time.Time { return now }, Log: slog.New(slog.DiscardHandler),
		Instances: func(context.Context) ([]Instance, error) {
			lists++
			if fail {
				return nil, errors.New("lxc-ls failed")
			}
			return []Instance{{Name: "c1", Project: "default", Type: "container", PID: 42}}, nil
		}})
	scrape := func() string { return s.collect(context.Background()).String() }
	for range 3 {
		if text := scrape(); !strings.Contains(text, `lxd_network_receive_bytes_total{device="eth0",name="c1"`) || !strings.Contains(text, "lxd_uptime_seconds") {
			t.Fatalf("scrape:\n%s", text)
		}
		now = now.Add(InstanceCacheTTL / 4)
	}
	if lists != 1 {
		t.Errorf("3 scrapes within %v listed the instances %d times, want 1", InstanceCacheTTL, lists)
	}
	now = now.Add(InstanceCacheTTL)
	fail = true
	scrape()
	fail = false
	scrape()
	if lists != 3 {
		t.Errorf("after the cache expired and one listing failed: %d listings, want 3", lists)
	}
}
