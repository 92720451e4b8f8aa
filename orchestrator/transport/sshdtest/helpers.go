package sshdtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"orch/internal/atomicfile"
)

// UserKey is a client key pair written to a file.
type UserKey struct {
	// Path is the private key file (mode 0600).
	Path string
	// Public is the public key, for Options.AuthorizedKeys.
	Public ssh.PublicKey
}

// NewUserKey writes a fresh unencrypted ed25519 key into a test temp dir.
func NewUserKey(t testing.TB) UserKey {
	return newUserKey(t, "")
}

// NewEncryptedUserKey writes a fresh ed25519 key encrypted with passphrase.
func NewEncryptedUserKey(t testing.TB, passphrase string) UserKey {
	return newUserKey(t, passphrase)
}

// newUserKey writes a key pair into t.TempDir().
func newUserKey(t testing.TB, passphrase string) UserKey {
	t.Helper()
	pub, pemBytes := generateKey(t, "ed25519", passphrase)
	path := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(pub), 0o644); err != nil {
		t.Fatal(err)
	}
	return UserKey{Path: path, Public: pub}
}

// WriteKnownHosts writes lines (newline-terminated) to path.
func WriteKnownHosts(t testing.TB, path string, lines ...string) {
	t.Helper()
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// RequireRoot skips the test unless it runs as root.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root to %s: run the tests as root", why)
	}
}

// EnsureUser creates a local login user (home dir, /bin/sh, no password but not locked)
// if missing; with sudo it also grants passwordless sudo in /etc/sudoers.d/NAME.
// Idempotent and safe against concurrent test binaries. Skips when not root.
func EnsureUser(t testing.TB, name string, sudo bool) {
	t.Helper()
	RequireRoot(t, "create user "+name)
	if _, err := exec.LookPath("sudo"); sudo && err != nil {
		t.Skip("sudo not found: install sudo (apt-get install sudo)")
	}
	if exec.Command("id", "-u", name).Run() != nil {
		out, err := exec.Command("useradd", "-m", "-s", "/bin/sh", "-p", "*", name).CombinedOutput()
		if err != nil && exec.Command("id", "-u", name).Run() != nil {
			t.Fatalf("useradd %s: %v: %s", name, err, out)
		}
	}
	if sudo {
		// The same line as integration/lab writes for its test user: test binaries of both
		// running at once then leave the file as it is.
		writeIfChanged(t, "/etc/sudoers.d/"+name, name+" ALL=(ALL) NOPASSWD:ALL\n", 0o440)
	}
}

// writeIfChanged replaces path atomically (internal/atomicfile) when its content differs:
// test binaries running at once share the machine's sudoers files. The temporary file's
// name holds a dot, so sudo's includedir never reads it.
func writeIfChanged(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, []byte(content)) {
		return
	}
	if err := atomicfile.Write(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// WaitFor polls cond until it returns nil, failing the test with cond's last error
// after timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v: %v", what, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
