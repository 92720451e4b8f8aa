package hostmods_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"orch/playbooks"
	"orch/playbooks/hostmods"
)

// localConn runs commands on this machine with sh -c: a real shell on real files, the
// transport of these tests (integration/hostmods runs the same modules over SSH on lab hosts).
// wrap, when set, rewrites each command (firewalld's test runs them in a mount namespace).
type localConn struct {
	runs *atomic.Int64
	wrap func(string) string
}

func (c localConn) Run(ctx context.Context, cmd string, stdin io.Reader, _ bool) ([]byte, []byte, int, error) {
	c.runs.Add(1)
	if c.wrap != nil {
		cmd = c.wrap(cmd)
	}
	return playbooks.LocalConn{}.Run(ctx, cmd, stdin, false)
}

func (localConn) Push(_ context.Context, local, remote string, mode fs.FileMode) (bool, error) {
	data, err := os.ReadFile(local)
	if err != nil {
		return false, err
	}
	return true, os.WriteFile(remote, data, mode)
}

type localConnector struct {
	runs *atomic.Int64
	wrap func(string) string
}

func (c localConnector) Connect(context.Context, playbooks.Host) (playbooks.Conn, error) {
	return localConn{c.runs, c.wrap}, nil
}

// harness runs one-task playbooks with hostmods' registry against this machine.
type harness struct {
	t    testing.TB
	dir  string        // the playbook's directory, also {{ d }} in tasks
	runs *atomic.Int64 // commands run on the host so far
	wrap func(string) string
	// limit bounds one playbook run (a hung module fails its test rather than the
	// package's timeout); newHarness sets a minute.
	limit time.Duration
}

func newHarness(t *testing.T) *harness {
	return &harness{t: t, dir: t.TempDir(), runs: &atomic.Int64{}, limit: time.Minute}
}

// outcome is one task's result on the host.
type outcome struct {
	status playbooks.Status
	res    playbooks.Result
	out    string
}

// run runs task (YAML of one task, indented by nothing) once; check/diff as --check/--diff.
func (h *harness) run(task string, check, diff bool) outcome {
	h.t.Helper()
	return h.runSrc("- hosts: h1\n  gather_facts: false\n  tasks:\n    - "+strings.TrimPrefix(indent(task, "      "), "      "), check, diff)
}

// playFile runs a whole playbook and fails the test unless every host ends without failure.
func (h *harness) playFile(src string) {
	h.t.Helper()
	if o := h.runSrc(src, false, false); o.status == playbooks.StatusFailed {
		h.t.Fatalf("playbook failed:\n%s", o.out)
	}
}

// runSrc runs a playbook and returns the last host result.
func (h *harness) runSrc(src string, check, diff bool) outcome {
	h.t.Helper()
	var text bytes.Buffer
	var last outcome
	rep := playbooks.MultiReporter(playbooks.NewTextReporter(&text, playbooks.TextOptions{Diff: diff}),
		playbooks.ReporterFunc(func(e playbooks.Event) {
			if e.Kind == playbooks.EventHostResult {
				last.status, last.res = e.Status, e.Result
			}
		}))
	path := filepath.Join(h.dir, "site.yml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		h.t.Fatal(err)
	}
	pb, err := playbooks.Load(path)
	if err != nil {
		h.t.Fatalf("parse: %v\n%s", err, src)
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.limit)
	defer cancel()
	_, err = playbooks.Run(ctx, pb, playbooks.Options{
		Hosts:     []playbooks.Host{{Name: "h1", Vars: map[string]any{"d": h.dir}}},
		Connector: localConnector{h.runs, h.wrap}, Modules: hostmods.Registry(), NoFacts: true, Check: check, Diff: diff, Reporter: rep,
	})
	if err != nil {
		h.t.Fatalf("run: %v\n%s", err, text.String())
	}
	last.out = text.String()
	return last
}

func indent(s, prefix string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(prefix + l + "\n")
	}
	return b.String()
}

// snapshot fingerprints every file under dir (path, mode, content) but site.yml and
// SQLite -shm files.
func snapshot(t testing.TB, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "site.yml" || strings.HasSuffix(rel, "-shm") {
			return nil // the playbook, and SQLite's shared-memory index (rpm's database) that any read rewrites
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		sum := ""
		if info.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			sum = fmt.Sprintf("%x", sha256.Sum256(b))
		}
		lines = append(lines, fmt.Sprintf("%s %v %s", rel, info.Mode(), sum))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// converge is the check every module gets: --check reports a change and changes nothing,
// a run changes, a second run and a second --check report ok. It returns the first real run.
func (h *harness) converge(task string) outcome {
	h.t.Helper()
	before := snapshot(h.t, h.dir)
	c := h.run(task, true, true)
	if c.status != playbooks.StatusChanged {
		h.t.Fatalf("--check: status %s, want changed\n%s\nresult: %v %q", c.status, c.out, c.res.Data, c.res.Msg)
	}
	if after := snapshot(h.t, h.dir); after != before {
		h.t.Fatalf("--check changed files:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	first := h.run(task, false, true)
	if first.status != playbooks.StatusChanged {
		h.t.Fatalf("first run: status %s, want changed\n%s", first.status, first.out)
	}
	if again := h.run(task, false, false); again.status != playbooks.StatusOK {
		h.t.Fatalf("second run: status %s, want ok (idempotent)\n%s\nchanges: %q", again.status, again.out, again.res.Changes)
	}
	if c := h.run(task, true, false); c.status != playbooks.StatusOK {
		h.t.Fatalf("--check after converging: status %s, want ok\n%s", c.status, c.out)
	}
	return first
}

func (h *harness) write(name, content string) string {
	h.t.Helper()
	p := filepath.Join(h.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) read(name string) string {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join(h.dir, name))
	if err != nil {
		h.t.Fatal(err)
	}
	return string(b)
}
