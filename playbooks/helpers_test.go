package playbooks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// localConn runs commands on this machine with sh -c: a real transport
// for engine tests. It records what it ran.
type localConn struct {
	host string
	log  *connLog
}

type connLog struct {
	mu       sync.Mutex
	connects []string // hosts Connect was called for
	users    []string // their ansible_user, as host=user
	runs     []string // "conn-host: cmd"
	become   []bool
}

func (l *connLog) add(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f()
}

func (c *localConn) Run(ctx context.Context, cmd string, stdin io.Reader, become bool) ([]byte, []byte, int, error) {
	c.log.add(func() {
		c.log.runs = append(c.log.runs, c.host+": "+cmd)
		c.log.become = append(c.log.become, become)
	})
	return runLocal(ctx, []string{"sh", "-c", cmd}, stdin) // become is recorded, not applied
}

func (c *localConn) Push(ctx context.Context, local, remote string, mode fs.FileMode) (bool, error) {
	return LocalConn{}.Push(ctx, local, remote, mode)
}

// localConnector connects every host to the local machine, except the
// hosts listed as down.
type localConnector struct {
	down map[string]bool
	log  *connLog
}

func (c *localConnector) Connect(ctx context.Context, h Host) (Conn, error) {
	c.log.add(func() {
		c.log.connects = append(c.log.connects, h.Name)
		if u, ok := h.Vars["ansible_user"].(string); ok {
			c.log.users = append(c.log.users, h.Name+"="+u)
		}
	})
	if c.down[h.Name] {
		return nil, fmt.Errorf("dial %s: connection refused", h.Name)
	}
	return &localConn{host: h.Name, log: c.log}, nil
}

// recorder collects events.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Report(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// results returns host → status for the task named task (last occurrence).
func (r *recorder) results(task string) map[string]Event {
	out := map[string]Event{}
	for _, e := range r.events {
		if e.Kind == EventHostResult && e.Task == task {
			out[e.Host] = e
		}
	}
	return out
}

func (r *recorder) count(kind EventKind, task string) int {
	n := 0
	for _, e := range r.events {
		if e.Kind == kind && (task == "" || e.Task == task) {
			n++
		}
	}
	return n
}

// harness runs playbooks against local hosts.
type harness struct {
	t       *testing.T
	dir     string
	hosts   []Host
	groups  map[string][]string
	conn    *localConnector
	rec     *recorder
	out     bytes.Buffer
	modules Registry
}

func newHarness(t *testing.T, names ...string) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), groups: map[string][]string{}, rec: &recorder{}, modules: Registry{}}
	h.conn = &localConnector{down: map[string]bool{}, log: &connLog{}}
	for _, n := range names {
		h.hosts = append(h.hosts, Host{Name: n, Vars: map[string]any{"tmp": h.dir}})
	}
	return h
}

func (h *harness) options() Options {
	return Options{
		Hosts: h.hosts, Groups: h.groups, Connector: h.conn, Modules: h.modules, Forks: 8, NoFacts: true,
		Reporter: MultiReporter(h.rec, NewTextReporter(&h.out, TextOptions{})),
	}
}

// run parses src (written to the harness dir) and runs it.
func (h *harness) run(src string, mod ...func(*Options)) *Recap {
	h.t.Helper()
	recap, err := h.runErr(src, mod...)
	if err != nil {
		h.t.Fatalf("run: %v\noutput:\n%s", err, h.out.String())
	}
	return recap
}

func (h *harness) runErr(src string, mod ...func(*Options)) (*Recap, error) {
	h.t.Helper()
	path := filepath.Join(h.dir, "site.yml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		h.t.Fatal(err)
	}
	pb, err := Load(path)
	if err != nil {
		return nil, err
	}
	opts := h.options()
	for _, m := range mod {
		m(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return Run(ctx, pb, opts)
}

// stats asserts one host's recap counters.
func (h *harness) stats(recap *Recap, host string, want Stats) {
	h.t.Helper()
	got := recap.Hosts[host]
	if got == nil {
		got = &Stats{}
	}
	if *got != want {
		h.t.Errorf("%s stats = %+v, want %+v\noutput:\n%s", host, *got, want, h.out.String())
	}
}

// fact returns a host's fact (set_fact/register) after a run.
func (h *harness) file(name string) string {
	b, err := os.ReadFile(filepath.Join(h.dir, name))
	if err != nil {
		return ""
	}
	return string(b)
}

func (h *harness) outputContains(parts ...string) {
	h.t.Helper()
	for _, p := range parts {
		if !strings.Contains(h.out.String(), p) {
			h.t.Errorf("output lacks %q:\n%s", p, h.out.String())
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
