package transport

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"orch/orchestrator/transport/sshdtest"
)

// pushMethods are the explicit methods every push test runs with.
var pushMethods = []PushMethod{PushStream, PushGzip, PushZstd, PushSFTP}

// writeRandom writes n random bytes to a new file and returns its path and content.
func writeRandom(t testing.TB, dir, name string, n int) (string, []byte) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b[:n/2]) // half random, half zeros: compressible like a binary
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, b
}

// remoteDir is a directory the sshd host sees (same machine), removed at cleanup.
func remoteDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "transport-push-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// push pushes and fails the test on error.
func push(t *testing.T, c *Conn, local, remote string, mode os.FileMode) bool {
	t.Helper()
	changed, err := c.Push(testCtx(t), local, remote, mode)
	if err != nil {
		t.Fatal(err)
	}
	return changed
}

// assertFile checks content and mode of a file the remote side wrote.
func assertFile(t *testing.T, path string, want []byte, mode os.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: content differs (%d bytes, want %d)", path, len(got), len(want))
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != mode {
		t.Fatalf("%s: mode %v, want %v", path, st.Mode().Perm(), mode)
	}
}

// assertNoTemps fails if a push left temporary files in dir.
func assertNoTemps(t *testing.T, dir string) {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.tmp-*"))
	if len(m) > 0 {
		t.Fatalf("temporary files left: %v", m)
	}
}

func TestPushChangedThenUnchanged(t *testing.T) {
	h := startHost(t, sshdtest.Options{})
	for _, m := range pushMethods {
		t.Run(m.String(), func(t *testing.T) {
			cfg := h.cfg
			cfg.PushMethod = m
			c := dial(t, cfg)
			local, content := writeRandom(t, t.TempDir(), "bin", 3<<20)
			remote := filepath.Join(remoteDir(t), "new", "dir", "nodeagent")
			if !push(t, c, local, remote, 0o755) {
				t.Fatal("first push: changed=false")
			}
			assertFile(t, remote, content, 0o755)
			if push(t, c, local, remote, 0o755) {
				t.Fatal("same content pushed again: changed=true")
			}
			if !push(t, c, local, remote, 0o700) {
				t.Fatal("mode change: changed=false")
			}
			assertFile(t, remote, content, 0o700)
			local2, content2 := writeRandom(t, t.TempDir(), "bin", 1<<20)
			if !push(t, c, local2, remote, 0o700) {
				t.Fatal("new content: changed=false")
			}
			assertFile(t, remote, content2, 0o700)
			assertNoTemps(t, filepath.Dir(remote))
		})
	}
}

// While a big file replaces a small one, the final name always shows one of the two
// complete versions.
func TestPushIsAtomic(t *testing.T) {
	h := startHost(t, sshdtest.Options{})
	for _, m := range pushMethods {
		t.Run(m.String(), func(t *testing.T) {
			cfg := h.cfg
			cfg.PushMethod = m
			c := dial(t, cfg)
			dir := remoteDir(t)
			remote := filepath.Join(dir, "f")
			oldLocal, _ := writeRandom(t, t.TempDir(), "old", 64<<10)
			newLocal, newContent := writeRandom(t, t.TempDir(), "new", 16<<20)
			push(t, c, oldLocal, remote, 0o644)
			var stop atomic.Bool
			var wg sync.WaitGroup
			var bad error
			var seen int
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					st, err := os.Stat(remote)
					seen++
					if err != nil || (st.Size() != 64<<10 && st.Size() != 16<<20) {
						bad = fmt.Errorf("observed %v size %d under the final name", err, sizeOf(st))
						return
					}
				}
			}()
			push(t, c, newLocal, remote, 0o644)
			stop.Store(true)
			wg.Wait()
			if bad != nil {
				t.Fatal(bad)
			}
			assertFile(t, remote, newContent, 0o644)
			assertNoTemps(t, dir)
			t.Logf("%d observations during the push", seen)
		})
	}
}

// sizeOf is st's size, or -1.
func sizeOf(st os.FileInfo) int64 {
	if st == nil {
		return -1
	}
	return st.Size()
}

func TestPushBecomeIntoRootOwnedDir(t *testing.T) {
	sshdtest.EnsureUser(t, "orchtest", true)
	h := startHost(t, sshdtest.Options{})
	rootDir := filepath.Join(remoteDir(t), "root-only")
	if err := os.Mkdir(rootDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, m := range pushMethods {
		t.Run(m.String(), func(t *testing.T) {
			cfg := h.cfg
			cfg.User, cfg.PushMethod = "orchtest", m
			local, content := writeRandom(t, t.TempDir(), "bin", 2<<20)
			remote := filepath.Join(rootDir, m.String(), "nodeagent")
			c := dial(t, cfg)
			if _, err := c.Push(testCtx(t), local, remote, 0o755); err == nil {
				t.Fatal("push without become into a root-only dir succeeded")
			}
			cfg.Become = true
			c = dial(t, cfg)
			if !push(t, c, local, remote, 0o755) || push(t, c, local, remote, 0o755) {
				t.Fatal("want changed, then unchanged")
			}
			assertFile(t, remote, content, 0o755)
			st, _ := os.Stat(remote)
			if ownerUID(st) != 0 {
				t.Fatalf("owner uid %d, want root", ownerUID(st))
			}
		})
	}
}

func TestPushBecomeWithoutSudoRights(t *testing.T) {
	sshdtest.EnsureUser(t, "orchtestpw", false)
	h := startHost(t, sshdtest.Options{})
	for _, m := range pushMethods {
		cfg := h.cfg
		cfg.User, cfg.Become, cfg.PushMethod = "orchtestpw", true, m
		c := dial(t, cfg)
		local, _ := writeRandom(t, t.TempDir(), "bin", 1024)
		_, err := c.Push(testCtx(t), local, filepath.Join(remoteDir(t), "x"), 0o644)
		if !errors.Is(err, ErrBecome) || !strings.HasPrefix(err.Error(), cfg.Name+": ") {
			t.Fatalf("%v: got %v, want ErrBecome", m, err)
		}
	}
}

// Hosts without sha256sum: SFTP upload, digests by reading back over SFTP.
func TestPushWithoutRemoteTools(t *testing.T) {
	h := startHost(t, sshdtest.Options{})
	cfg := h.cfg
	cfg.PushMethod = PushSFTP
	c := dial(t, cfg)
	tools, err := c.remoteTools(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	c.tools = &remoteTools{sftpServer: tools.sftpServer} // as if gzip and sha256sum were absent
	local, content := writeRandom(t, t.TempDir(), "bin", 1<<20)
	remote := filepath.Join(remoteDir(t), "f")
	if !push(t, c, local, remote, 0o640) || push(t, c, local, remote, 0o640) {
		t.Fatal("want changed, then unchanged")
	}
	assertFile(t, remote, content, 0o640)
}

// An upload whose digest differs from the expected one (a truncated or corrupted
// transfer) is never renamed into place, and its temporary file is removed.
func TestPushRefusesContentWithWrongDigest(t *testing.T) {
	h := startHost(t, sshdtest.Options{})
	for _, m := range pushMethods {
		t.Run(m.String(), func(t *testing.T) {
			cfg := h.cfg
			cfg.PushMethod = m
			c := dial(t, cfg)
			dir := remoteDir(t)
			local, _ := writeRandom(t, t.TempDir(), "bin", 256<<10)
			p := &pusher{c: c, local: local, remote: filepath.Join(dir, "f"), mode: 0o644,
				sum: strings.Repeat("ab", 32)} // not the file's digest
			_, err := p.run(testCtx(t))
			if err == nil || !strings.Contains(err.Error(), "sha256") {
				t.Fatalf("got %v, want a sha256 mismatch", err)
			}
			if _, statErr := os.Stat(p.remote); statErr == nil {
				t.Fatal("content with a wrong digest was renamed into place")
			}
			assertNoTemps(t, dir)
		})
	}
}

func TestPushOntoDirectoryFails(t *testing.T) {
	h := startHost(t, sshdtest.Options{})
	c := dial(t, h.cfg)
	dir := remoteDir(t)
	local, _ := writeRandom(t, t.TempDir(), "bin", 1024)
	if _, err := c.Push(testCtx(t), local, dir, 0o644); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("got %v, want an error about a directory", err)
	}
	if _, err := c.Push(testCtx(t), local, "relative/path", 0o644); err == nil {
		t.Fatal("relative remote path accepted")
	}
}

// Compare tells an absent, a different, a same-content-other-mode and an identical file
// apart, and a Push after it still replaces the file.
func TestCompare(t *testing.T) {
	h := startHost(t, sshdtest.Options{})
	c := dial(t, h.cfg)
	local, content := writeRandom(t, t.TempDir(), "bin", 256<<10)
	other, _ := writeRandom(t, t.TempDir(), "other", 1<<10)
	remote := filepath.Join(remoteDir(t), "bin", "agent")
	check := func(what string, want Comparison) {
		t.Helper()
		got, err := c.Compare(testCtx(t), local, remote, 0o755)
		if err != nil || got != want {
			t.Fatalf("%s: %+v %v, want %+v", what, got, err, want)
		}
	}
	check("absent", Comparison{})
	if !push(t, c, local, remote, 0o755) {
		t.Fatal("push after Compare: changed=false")
	}
	assertFile(t, remote, content, 0o755)
	check("pushed", Comparison{Exists: true, Same: true})
	os.Chmod(remote, 0o700)
	check("other mode", Comparison{Exists: true})
	push(t, c, other, remote, 0o755)
	check("other content", Comparison{Exists: true})
	if !push(t, c, local, remote, 0o755) {
		t.Fatal("push over other content: changed=false")
	}
	assertFile(t, remote, content, 0o755)
}

func TestFileCacheHashesAndCompressesOnce(t *testing.T) {
	fc := NewFileCache()
	local, content := writeRandom(t, t.TempDir(), "bin", 1<<20)
	sum, err := fc.Sum(local)
	if want := fmt.Sprintf("%x", sha256.Sum256(content)); err != nil || sum != want {
		t.Fatalf("sum %s %v, want %s", sum, err, want)
	}
	gz1, _ := fc.Gzip(local)
	gz2, _ := fc.Gzip(local)
	if len(gz1) == 0 || &gz1[0] != &gz2[0] {
		t.Fatal("gzip not cached")
	}
	os.WriteFile(local, []byte("changed"), 0o644)
	if sum2, _ := fc.Sum(local); sum2 == sum {
		t.Fatal("changed file kept its old digest")
	}
}

// ownerUID returns the file's owner.
func ownerUID(st os.FileInfo) uint32 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Uid
	}
	return 0
}

// The stream script widens its stdin pipe to 1 MiB before it asks for the content: sshd then
// hands the channel's data on at once instead of growing a buffer packet by packet (the first
// upload on a connection was three to four times slower than the next).
func TestStreamScriptWidensStdinPipe(t *testing.T) {
	p := &pusher{remote: "/x/nodeagent", sum: strings.Repeat("0", 64), mode: 0o755}
	script := p.streamScript("/x/nodeagent.tmp-1")
	widen, state := strings.Index(script, widenStdinPipe), strings.Index(script, `echo "orch-push state`)
	if widen < 0 || widen > state {
		t.Fatalf("the stream script does not widen its stdin pipe before it reports the file's state:\n%s", script)
	}
	if _, err := exec.LookPath("perl"); err != nil {
		t.Skip("no perl here: the pipe keeps its size")
	}
	h := startHost(t, sshdtest.Options{})
	c := dial(t, h.cfg)
	// A streamed stdin, as a push's content: a session of its own, stdin a pipe from sshd.
	in, w := io.Pipe()
	t.Cleanup(func() { w.Close() })
	res := run(t, c, widenStdinPipe+"\nperl -e 'print fcntl(STDIN, 1032, 0)'", RunOptions{Stdin: in})
	if got := strings.TrimSpace(string(res.Stdout)); got != "1048576" {
		t.Fatalf("stdin pipe size after widening: %q (stderr %q), want 1048576", got, res.Stderr)
	}
}

// With the tools the command runner probed, the stream script hashes with the probed tool
// and starts no program to find one (openssl's start was ~3 ms of every push); without a
// probe it still finds one itself.
func TestStreamScriptUsesProbedHashTool(t *testing.T) {
	p := &pusher{remote: "/x/nodeagent", sum: strings.Repeat("0", 64), mode: 0o755,
		tools: &remoteTools{sha256: "sha256sum"}}
	script := p.streamScript("/x/nodeagent.tmp-1")
	if !strings.Contains(script, "sha() { sha256sum; }") || strings.Contains(script, "echo | openssl") {
		t.Fatalf("with sha256sum probed, the script does not hash with it alone:\n%s", script)
	}
	p.tools = nil
	if script := p.streamScript("/x/nodeagent.tmp-1"); !strings.Contains(script, "echo | openssl dgst -sha256 -r") {
		t.Fatalf("without a probe, the script does not look for a hashing tool:\n%s", script)
	}
}
