package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestServeFileLendsOnlyForTheToken(t *testing.T) {
	file := filepath.Join(t.TempDir(), "agent")
	content := bytes.Repeat([]byte("agent!"), 100_000)
	if err := os.WriteFile(file, content, 0o755); err != nil {
		t.Fatal(err)
	}
	stdinR, stdinW := io.Pipe()
	outR, outW := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Main([]string{"serve-file", "--file", file, "--listen", "127.0.0.1:0"}, stdinR, outW, &stderr)
		outW.Close()
	}()
	fmt.Fprintln(stdinW, "s3cret-token")
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatalf("no listening line: %v (%s)", err, stderr.String())
	}
	var port int
	if _, err := fmt.Sscanf(line, "orch-relay listening %d", &port); err != nil {
		t.Fatalf("listening line %q: %v", line, err)
	}
	go io.Copy(io.Discard, outR)
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	if got := fetch(t, addr, "wrong-token"); len(got) != 0 {
		t.Errorf("a wrong token got %d bytes", len(got))
	}
	if got := fetch(t, addr, "s3cret-token"); !bytes.Equal(got, content) {
		t.Errorf("the right token got %d bytes, want the file's %d", len(got), len(content))
	}
	if strings.Contains(stderr.String(), "s3cret") {
		t.Errorf("the token reached stderr: %s", stderr.String())
	}

	stdinW.Close() // orch closes the session: the lender stops
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d after stdin closed: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve-file still running 10 s after stdin closed")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("still listening after stdin closed")
	}
}

func TestServeFileNeedsAToken(t *testing.T) {
	file := filepath.Join(t.TempDir(), "agent")
	os.WriteFile(file, []byte("x"), 0o644)
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"serve-file", "--file", file}, strings.NewReader("\n"), &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), "no token") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

// fetch speaks the lender's protocol: the token line, then everything it sends.
func fetch(t *testing.T, addr, token string) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintln(c, token)
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading from the lender: %v", err)
	}
	return b
}
