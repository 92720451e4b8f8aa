package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"orch/internal/wait"
	"orch/inventory"
	"orch/orchestrator/transport"
	"orch/orchestrator/transport/sshdtest"
	"orch/playbooks"
)

// TestEngineAndModulesShareOneConnection: the engine passes the host's ansible_user (the
// inventory's own user) to Connect, and orch's modules ask for the host's SSH connection
// without a user; both must get the same connection. They got two (a second SSH handshake
// per host in every run: converged `orch up` of 3 hosts went from 0.25 to 0.37 s).
func TestEngineAndModulesShareOneConnection(t *testing.T) {
	c, inv, _ := connectorToSSHD(t)
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	engine, err := c.Connect(ctx, playbooks.Host{Name: "h1", Vars: inv.Host("h1").Vars()})
	if err != nil {
		t.Fatal(err)
	}
	modules, err := c.SSH(ctx, "h1")
	if err != nil {
		t.Fatal(err)
	}
	if engine.(connAdapter).c != modules {
		t.Error("the engine and the modules got two SSH connections to h1")
	}
	other, err := c.Connect(ctx, playbooks.Host{Name: "h1", Vars: map[string]any{"ansible_user": "nobody-else"}})
	if err == nil && other.(connAdapter).c == modules {
		t.Error("remote_user nobody-else shares the inventory user's connection")
	}
}

// TestResetConnectionClosesTheConnection: `meta: reset_connection` (and the reboot module)
// make the connector dial again; the connection it drops must be closed at once, not kept
// open (its sshd session and the client's goroutines) until the run ends.
func TestResetConnectionClosesTheConnection(t *testing.T) {
	c, inv, srv := connectorToSSHD(t)
	defer c.close()
	const resets = 5
	var tasks strings.Builder
	for i := 0; i < resets; i++ {
		fmt.Fprintf(&tasks, "    - command: \"true\"\n    - meta: reset_connection\n")
	}
	tasks.WriteString("    - command: \"true\"\n")
	pb, err := playbooks.Parse("resets.yml", []byte("- hosts: all\n  gather_facts: false\n  tasks:\n"+tasks.String()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before := runtime.NumGoroutine()
	recap, err := playbooks.Run(ctx, pb, playbooks.Options{
		Hosts: []playbooks.Host{{Name: "h1", Vars: inv.Host("h1").Vars()}}, Connector: c, Modules: playbooks.Builtins(),
	})
	if code := playbooks.ExitCode(recap, err); code != 0 {
		t.Fatalf("the play failed: exit %d, %v", code, err)
	}
	// The run's last connection may be open until c.close; the 5 dropped ones must be gone.
	wait.For(t, 10*time.Second, "at most one SSH connection left to h1", func() error {
		if n := srv.Connections(); n > 1 {
			return fmt.Errorf("sshd serves %d connections", n)
		}
		return nil
	})
	c.close()
	wait.For(t, 10*time.Second, "the client's goroutines gone", func() error {
		if n := runtime.NumGoroutine(); n > before {
			return fmt.Errorf("%d goroutines, %d before the run", n, before)
		}
		return nil
	})
}

// TestLostConnectionIsRedialled: a connection the host reset (sshd's process for it killed,
// as a reboot or a network fault does) is closed and dialled again on the next use; it was
// kept and handed out dead to orch's modules until the run ended.
func TestLostConnectionIsRedialled(t *testing.T) {
	c, _, srv := connectorToSSHD(t)
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	first, err := c.SSH(ctx, "h1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Run(ctx, "true", transport.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	srv.KillConnections()
	wait.For(t, 10*time.Second, "the client to see its connection lost", func() error {
		if !first.Lost() {
			return errors.New("the connection still looks alive")
		}
		return nil
	})
	again, err := c.SSH(ctx, "h1")
	if err != nil {
		t.Fatal(err)
	}
	if again == first {
		t.Fatal("the connector handed out the lost connection again")
	}
	if _, err := again.Run(ctx, "true", transport.RunOptions{}); err != nil {
		t.Errorf("running on the new connection: %v", err)
	}
	if _, err := first.Run(ctx, "true", transport.RunOptions{}); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("the lost connection was not closed: Run says %v, want %v", err, transport.ErrClosed)
	}
}

// connectorToSSHD starts a real sshd that lets root in with a new key and returns a
// connector to it through a one-host inventory (h1, as root), the inventory and the
// server; it skips when not root.
func connectorToSSHD(t *testing.T) (*connector, *inventory.Inventory, *sshdtest.Server) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("logs in as root over a real sshd: run as root")
	}
	key := sshdtest.NewUserKey(t)
	srv := sshdtest.Start(t, sshdtest.Options{AuthorizedKeys: []ssh.PublicKey{key.Public}})
	kh := filepath.Join(t.TempDir(), "known_hosts")
	sshdtest.WriteKnownHosts(t, kh, srv.KnownHostsLine("ed25519"))
	inv, err := inventory.ParseINI("inventory.ini", []byte(fmt.Sprintf(
		"h1 ansible_host=%s ansible_port=%d ansible_user=root ansible_ssh_private_key_file=%s\n", srv.IP, srv.Port, key.Path)))
	if err != nil {
		t.Fatal(err)
	}
	return newConnector(inv, kh, false, slog.New(slog.DiscardHandler), transport.NewFileCache()), inv, srv
}
