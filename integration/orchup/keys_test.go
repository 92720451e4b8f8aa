package orchup

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"strconv"
	"testing"

	"golang.org/x/crypto/ssh"
)

// writeKey writes a fresh ed25519 private key no host accepts.
func writeKey(t *testing.T, path string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
