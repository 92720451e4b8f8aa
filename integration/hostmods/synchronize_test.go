package hostmods

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"orch/orchestrator/transport/sshdtest"
	"orch/playbooks"
	"orch/playbooks/hostmods"
)

// syncEnv is a real sshd on a 127.0.0.x address reached by rsync over OpenSSH's client,
// as synchronize reaches an inventory host: the host's vars carry its address, port, user
// and key, and the task runs with a local connection for its other commands.
type syncEnv struct {
	t    *testing.T
	dir  string
	vars map[string]any
}

func newSyncEnv(t *testing.T) *syncEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: starts a real sshd")
	}
	for _, bin := range []string{"rsync", "ssh"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (scripts/install-deps.sh installs it)", bin)
		}
	}
	key := sshdtest.NewUserKey(t)
	srv := sshdtest.Start(t, sshdtest.Options{AuthorizedKeys: []ssh.PublicKey{key.Public}})
	return &syncEnv{t: t, dir: t.TempDir(), vars: map[string]any{
		"ansible_host": srv.IP, "ansible_port": srv.Port, "ansible_user": "root",
		"ansible_ssh_private_key_file": key.Path,
	}}
}

// play runs one task for host h1 and returns its status and output.
func (e *syncEnv) play(task string, check bool) (playbooks.Status, playbooks.Result, string) {
	e.t.Helper()
	src := "- hosts: h1\n  gather_facts: false\n  tasks:\n    - " + strings.TrimPrefix(indent(task, "      "), "      ")
	path := filepath.Join(e.dir, "site.yml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		e.t.Fatal(err)
	}
	pb, err := playbooks.Load(path)
	if err != nil {
		e.t.Fatalf("parse: %v\n%s", err, src)
	}
	var text bytes.Buffer
	var st playbooks.Status
	var res playbooks.Result
	rep := playbooks.MultiReporter(playbooks.NewTextReporter(&text, playbooks.TextOptions{Diff: true}),
		playbooks.ReporterFunc(func(ev playbooks.Event) {
			if ev.Kind == playbooks.EventHostResult {
				st, res = ev.Status, ev.Result
			}
		}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err = playbooks.Run(ctx, pb, playbooks.Options{
		Hosts:     []playbooks.Host{{Name: "h1", Vars: e.vars}},
		Connector: localConnector{}, Modules: hostmods.Registry(), NoFacts: true, Check: check, Reporter: rep,
	})
	if err != nil {
		e.t.Fatalf("run: %v\n%s", err, text.String())
	}
	return st, res, text.String()
}

// converge: --check reports changed and copies nothing, a run copies, a second run and
// a second --check are ok.
func (e *syncEnv) converge(task string, done func() bool) {
	e.t.Helper()
	if st, _, out := e.play(task, true); st != playbooks.StatusChanged || done() {
		e.t.Fatalf("--check: status %s (want changed), copied: %v\n%s", st, done(), out)
	}
	if st, _, out := e.play(task, false); st != playbooks.StatusChanged || !done() {
		e.t.Fatalf("run: status %s (want changed), copied: %v\n%s", st, done(), out)
	}
	if st, _, out := e.play(task, false); st != playbooks.StatusOK {
		e.t.Fatalf("second run: status %s, want ok\n%s", st, out)
	}
	if st, _, out := e.play(task, true); st != playbooks.StatusOK {
		e.t.Fatalf("second --check: status %s, want ok\n%s", st, out)
	}
}

type localConnector struct{}

func (localConnector) Connect(context.Context, playbooks.Host) (playbooks.Conn, error) {
	return playbooks.LocalConn{}, nil
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
}

func sameFile(a, b string) bool {
	x, err1 := os.ReadFile(a)
	y, err2 := os.ReadFile(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// TestSynchronizeOverSSH pushes a tree to the host over rsync and ssh (a real sshd), pulls
// a file back, deletes with delete=true, and copies on the host itself with delegate_to the
// host (kubespray's use): each converges.
func TestSynchronizeOverSSH(t *testing.T) {
	e := newSyncEnv(t)
	src, dest := filepath.Join(e.dir, "src"), filepath.Join(e.dir, "dest")
	writeFile(t, filepath.Join(src, "a.txt"), "a\n")
	writeFile(t, filepath.Join(src, "sub", "b.txt"), "b\n")

	t.Run("push", func(t *testing.T) {
		e.t = t
		e.converge("synchronize:\n  src: "+src+"/\n  dest: "+dest+"\n", func() bool {
			return sameFile(filepath.Join(src, "sub", "b.txt"), filepath.Join(dest, "sub", "b.txt"))
		})
		writeFile(t, filepath.Join(src, "a.txt"), "a changed\n")
		if st, res, out := e.play("synchronize:\n  src: "+src+"/\n  dest: "+dest+"\n", false); st != playbooks.StatusChanged ||
			!sameFile(filepath.Join(src, "a.txt"), filepath.Join(dest, "a.txt")) || !strings.Contains(res.Msg, "a.txt") {
			t.Fatalf("a changed source: status %s, msg %q\n%s", st, res.Msg, out)
		}
	})
	t.Run("delete", func(t *testing.T) {
		e.t = t
		writeFile(t, filepath.Join(dest, "stray"), "x")
		e.converge("synchronize:\n  src: "+src+"/\n  dest: "+dest+"\n  delete: true\n", func() bool {
			_, err := os.Stat(filepath.Join(dest, "stray"))
			return os.IsNotExist(err)
		})
	})
	t.Run("pull", func(t *testing.T) {
		e.t = t
		pulled := filepath.Join(e.dir, "pulled.txt")
		e.converge("synchronize:\n  mode: pull\n  src: "+filepath.Join(dest, "sub", "b.txt")+"\n  dest: "+pulled+"\n", func() bool {
			return sameFile(pulled, filepath.Join(src, "sub", "b.txt"))
		})
	})
	t.Run("on the host", func(t *testing.T) {
		e.t = t
		bin := filepath.Join(e.dir, "bin", "yq")
		if err := os.Mkdir(filepath.Dir(bin), 0o755); err != nil { // rsync, as Ansible's, needs dest's parent
			t.Fatal(err)
		}
		e.converge("synchronize:\n  src: "+filepath.Join(src, "a.txt")+"\n  dest: "+bin+"\n  compress: false\n  perms: true\n  owner: false\n  group: false\ndelegate_to: \"{{ inventory_hostname }}\"\n", func() bool {
			return sameFile(bin, filepath.Join(src, "a.txt"))
		})
	})
	t.Run("unreachable port fails", func(t *testing.T) {
		e.t = t
		e.vars["ansible_port"] = 1
		st, res, out := e.play("synchronize:\n  src: "+src+"/\n  dest: "+dest+"\n", false)
		if st != playbooks.StatusFailed || !strings.Contains(res.Msg, "ssh") {
			t.Fatalf("status %s msg %q, want failed naming ssh\n%s", st, res.Msg, out)
		}
	})
}
