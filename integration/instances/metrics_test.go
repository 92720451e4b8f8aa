package instances

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// TestMetrics scrapes GET /1.0/metrics of a member running an LXC container, as LXD
// serves it: the container's CPU seconds grow after work in it, its loopback counters
// after a ping inside it, memory is reported; the cluster gauges say who leads and how
// many members are online; ?target= reaches another member's metrics. Authentication as
// LXD: a trusted client certificate and a certificate of type metrics get the metrics (the
// latter nothing else), an untrusted one is refused until core.metrics_authentication is
// false.
func TestMetrics(t *testing.T) {
	needLXC(t)
	bridge := testBridge(t)
	xz, _ := busyboxTarballs(t, 0)
	ms := formInstanceCluster(t, 2, bridge)
	n1, n2 := ms[0], ms[1]
	n1.MustRun("image", "import", xz, "--alias", "busybox")
	n1.MustRun("launch", "busybox", "m1", "--target", n2.Name)

	trusted, trustedPEM := agenttest.NewClientCert(t, "metrics test: trusted")
	n1.MustRunInput(string(trustedPEM), "trust", "add", "scraper")
	onlyMetrics, onlyMetricsPEM := agenttest.NewClientCert(t, "metrics test: metrics type")
	n1.MustRunInput(string(onlyMetricsPEM), "trust", "add", "prometheus", "--type", "metrics")
	stranger, _ := agenttest.NewClientCert(t, "metrics test: untrusted")

	tc := n2.TLSClient(t, trusted)
	m := scrape(t, tc, "")
	cpu0 := m.sum("lxd_cpu_seconds_total", "name", "m1")
	for _, want := range []string{"lxd_memory_MemTotal_bytes", "lxd_memory_RSS_bytes", "lxd_procs_total", "lxd_network_receive_bytes_total"} {
		if _, ok := m.one(want, "name", "m1", "project", "default", "type", "container"); !ok {
			t.Errorf("%s: no %s for m1 in:\n%s", n2.Name, want, m.text)
		}
	}
	if _, ok := m.one("lxd_network_transmit_packets_total", "name", "m1", "device", "eth0"); !ok {
		t.Errorf("%s: no eth0 counters for m1 in:\n%s", n2.Name, m.text)
	}
	lo0 := m.sum("lxd_network_transmit_packets_total", "name", "m1", "device", "lo")

	n2.MustRun("exec", "m1", "--", "sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; ping -c 3 -i 0.2 127.0.0.1 >/dev/null")
	wait.For(t, 30*time.Second, "m1's CPU seconds and loopback packets to grow", func() error {
		m := scrape(t, tc, "")
		cpu, lo := m.sum("lxd_cpu_seconds_total", "name", "m1"), m.sum("lxd_network_transmit_packets_total", "name", "m1", "device", "lo")
		if cpu < cpu0+0.05 || lo < lo0+3 {
			return fmt.Errorf("cpu %.3f s (was %.3f), lo packets %v (was %v)", cpu, cpu0, lo, lo0)
		}
		return nil
	})

	t.Run("state", func(t *testing.T) {
		// What `lxc info m1` shows under Resources, asked of the member that does not run it.
		code, body := get(t, n1.TLSClient(t, trusted), "/1.0/instances/m1/state")
		var resp struct{ Metadata api.InstanceState }
		if code != http.StatusOK || json.Unmarshal([]byte(body), &resp) != nil {
			t.Fatalf("%s: GET /1.0/instances/m1/state answered %d: %.300s", n1.Name, code, body)
		}
		st := resp.Metadata
		if st.CPU.Usage < int64((cpu0+0.05)*1e9) || st.Memory.Usage <= 0 || st.Processes < 2 {
			t.Errorf("m1's state: cpu %d ns (metrics said %.3f s before the busy loop), memory %d B, %d processes", st.CPU.Usage, cpu0, st.Memory.Usage, st.Processes)
		}
		eth0, ok := st.Network["eth0"]
		if !ok || eth0.Counters["packets_sent"] <= 0 {
			t.Errorf("m1's eth0 in its state: %+v (present %v)", eth0, ok)
		}
		if _, ok := st.Network["lo"]; ok {
			t.Errorf("m1's state lists lo: %+v", st.Network)
		}
	})

	t.Run("cluster", func(t *testing.T) {
		leaders := 0.0
		for _, a := range ms {
			m := scrape(t, tc, a.Name)
			leaders += m.sum("orch_raft_role", "role", "database-leader")
			if v, _ := m.one("orch_members", "status", api.StatusOnline); v != 2 {
				t.Errorf("%s: orch_members{status=Online} = %v, want 2", a.Name, v)
			}
			for _, b := range ms {
				if age, ok := m.one("orch_member_heartbeat_age_seconds", "member", b.Name); !ok || age > 30 {
					t.Errorf("%s: heartbeat age of %s = %v (reported: %v)", a.Name, b.Name, age, ok)
				}
			}
			if roles := m.sum("orch_raft_role"); roles != 1 {
				t.Errorf("%s: %v roles set in orch_raft_role, want 1", a.Name, roles)
			}
			if v, _ := m.one("orch_raft_applied_index"); m.sum("orch_raft_role", "role", "database-leader") == 1 && v <= 0 {
				t.Errorf("%s: the leader's orch_raft_applied_index = %v in:\n%s", a.Name, v, m.text)
			}
		}
		if leaders != 1 {
			t.Errorf("%v members report role database-leader; want 1", leaders)
		}
		if m := scrape(t, n1.TLSClient(t, trusted), ""); m.sum("lxd_procs_total", "name", "m1") != 0 {
			t.Errorf("%s reports %s's container m1 without ?target=", n1.Name, n2.Name)
		}
		if m := scrape(t, n1.TLSClient(t, trusted), n2.Name); m.sum("lxd_procs_total", "name", "m1") == 0 {
			t.Errorf("%s?target=%s does not report m1:\n%s", n1.Name, n2.Name, m.text)
		}
	})

	t.Run("authentication", func(t *testing.T) {
		if code, body := get(t, n2.TLSClient(t, stranger), "/1.0/metrics"); code != http.StatusForbidden {
			t.Errorf("untrusted client: GET /1.0/metrics answered %d, want 403: %.300s", code, body)
		}
		mc := n2.TLSClient(t, onlyMetrics)
		if code, body := get(t, mc, "/1.0/metrics"); code != http.StatusOK || !strings.Contains(body, `name="m1"`) {
			t.Errorf("metrics certificate: GET /1.0/metrics answered %d: %.300s", code, body)
		}
		if code, _ := get(t, mc, "/1.0/instances"); code == http.StatusOK {
			t.Errorf("a certificate of type metrics may list instances")
		}
		n1.MustRun("config", "set", "core.metrics_authentication", "false")
		if code, body := get(t, n2.TLSClient(t, stranger), "/1.0/metrics"); code != http.StatusOK {
			t.Errorf("untrusted client with core.metrics_authentication=false: %d: %.300s", code, body)
		}
	})
}

// metricsText is one scrape, parsed.
type metricsText struct {
	text    string
	samples []metricSample
}

type metricSample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape is GET /1.0/metrics (?target= when target is set) through c.
func scrape(t *testing.T, c *api.Client, target string) metricsText {
	t.Helper()
	path := "/1.0/metrics"
	if target != "" {
		path += "?target=" + target
	}
	code, body := get(t, c, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %.300s", path, code, body)
	}
	if !strings.HasSuffix(body, "# EOF\n") {
		t.Errorf("GET %s: no # EOF at the end", path)
	}
	return parseMetrics(t, body)
}

func get(t *testing.T, c *api.Client, path string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.Raw(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// parseMetrics reads the text format: `name{k="v",...} value` lines and comments.
func parseMetrics(t *testing.T, text string) metricsText {
	t.Helper()
	out := metricsText{text: text}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		s := metricSample{name: line[:i], labels: map[string]string{}, value: v}
		if name, labels, ok := strings.Cut(line[:i], "{"); ok {
			s.name = name
			for _, kv := range strings.Split(strings.TrimSuffix(labels, "}"), ",") {
				k, v, _ := strings.Cut(kv, "=")
				s.labels[k] = strings.Trim(v, `"`)
			}
		}
		out.samples = append(out.samples, s)
	}
	return out
}

// sum adds the samples of name whose labels include the pairs kv.
func (m metricsText) sum(name string, kv ...string) float64 {
	var total float64
	for _, s := range m.samples {
		if s.name == name && s.has(kv) {
			total += s.value
		}
	}
	return total
}

// one is the first sample of name whose labels include the pairs kv.
func (m metricsText) one(name string, kv ...string) (float64, bool) {
	for _, s := range m.samples {
		if s.name == name && s.has(kv) {
			return s.value, true
		}
	}
	return 0, false
}

func (s metricSample) has(kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		if s.labels[kv[i]] != kv[i+1] {
			return false
		}
	}
	return true
}
