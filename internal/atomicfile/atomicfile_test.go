package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// withUmask runs the test under umask mask (process-wide: these tests are not parallel).
func withUmask(t *testing.T, mask int) {
	t.Helper()
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

// entries lists dir's names.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// checkFile fails unless path holds want with exactly mode perm.
func checkFile(t *testing.T, path string, want []byte, perm fs.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s holds %q, want %q", path, got, want)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode() != perm {
		t.Errorf("%s has mode %v, want %v", path, st.Mode(), perm)
	}
}

// TestWriteContentAndMode: the file holds the data with exactly the mode asked for, even
// under a umask that would remove bits, and nothing else is left in the directory.
func TestWriteContentAndMode(t *testing.T) {
	withUmask(t, 0o077)
	dir := t.TempDir()
	for _, perm := range []fs.FileMode{0o600, 0o644, 0o440, 0o755} {
		path := filepath.Join(dir, fmt.Sprintf("f%o", perm))
		data := []byte("content " + path)
		if err := Write(path, data, perm); err != nil {
			t.Fatal(err)
		}
		checkFile(t, path, data, perm)
	}
	if got := entries(t, dir); len(got) != 4 {
		t.Errorf("directory holds %v, want the 4 files only", got)
	}
}

// TestWriteReplaces: an existing file is replaced, its old mode is not kept.
func TestWriteReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte("old, longer content"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, []byte("new"), 0o600)
}

// TestTempFileHasFinalModeFromStart: the temporary file is beside the target, hidden, and
// has its final mode before a byte is written, with no umask to help.
func TestTempFileHasFinalModeFromStart(t *testing.T) {
	withUmask(t, 0)
	dir := t.TempDir()
	for _, perm := range []fs.FileMode{0o600, 0o400, 0o644} {
		path := filepath.Join(dir, fmt.Sprintf("key%o", perm))
		f, err := Create(path, perm)
		if err != nil {
			t.Fatal(err)
		}
		tmp := f.tmp.Name()
		if filepath.Dir(tmp) != dir || !strings.HasPrefix(filepath.Base(tmp), ".") {
			t.Errorf("temporary file %s is not hidden in %s", tmp, dir)
		}
		for _, when := range []string{"before writing", "after writing"} {
			st, err := os.Stat(tmp)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode() != perm {
				t.Errorf("%s: temporary file has mode %v %s, want %v", path, st.Mode(), when, perm)
			}
			if _, err := f.Write([]byte("secret")); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		checkFile(t, path, []byte("secretsecret"), perm)
	}
}

// TestFailedRenameLeavesNothing: a target that is a directory makes the rename fail; the
// error names the target and no temporary file is left.
func TestFailedRenameLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "target")
	if err := os.MkdirAll(filepath.Join(path, "inside"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := Write(path, []byte("data"), 0o600)
	if err == nil {
		t.Fatal("replacing a directory succeeded")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name %s", err, path)
	}
	if got := entries(t, dir); len(got) != 1 || got[0] != "target" {
		t.Errorf("directory holds %v after the failure, want [target]", got)
	}
}

// TestMissingDirectory: the error names the target and wraps fs.ErrNotExist.
func TestMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "file")
	err := Write(path, []byte("data"), 0o600)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("Write into a missing directory: %v, want an error naming %s wrapping fs.ErrNotExist", err, path)
	}
}

// failingReader yields some bytes, then fails.
type failingReader struct{ sent bool }

var errRead = errors.New("connection lost")

func (r *failingReader) Read(p []byte) (int, error) {
	if r.sent {
		return 0, errRead
	}
	r.sent = true
	return copy(p, "partial"), nil
}

// TestReaderFailureKeepsOldFile: a stream that fails half way leaves the old content in
// place and no temporary file.
func TestReaderFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "download")
	if err := os.WriteFile(path, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	_, err := WriteFrom(path, &failingReader{}, 0o600)
	if !errors.Is(err, errRead) || !strings.Contains(err.Error(), path) {
		t.Errorf("WriteFrom with a failing reader: %v, want %v naming %s", err, errRead, path)
	}
	checkFile(t, path, []byte("old"), 0o640)
	if got := entries(t, dir); len(got) != 1 {
		t.Errorf("directory holds %v, want the old file only", got)
	}
}

// TestWriteFrom: the whole stream lands with the mode asked for.
func TestWriteFrom(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stream")
	data := bytes.Repeat([]byte("0123456789"), 100_000)
	n, err := WriteFrom(path, bytes.NewReader(data), 0o644)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("WriteFrom: %d bytes, %v; want %d", n, err, len(data))
	}
	checkFile(t, path, data, 0o644)
}

// TestAbort: an aborted replacement leaves the target and the directory as they were;
// Abort after Commit keeps the committed file, and a second Commit fails.
func TestAbort(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "conf")
	f, err := Create(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("half")); err != nil {
		t.Fatal(err)
	}
	f.Abort()
	f.Abort()
	if got := entries(t, dir); len(got) != 0 {
		t.Errorf("directory holds %v after Abort, want nothing", got)
	}
	if err := f.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	f, err = Create(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("whole")); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	f.Abort()
	checkFile(t, path, []byte("whole"), 0o600)
	if err := f.Commit(); err == nil {
		t.Error("second Commit succeeded")
	}
}

// TestChmodAfterWriting: a mode learnt once the data is written is the final one.
func TestChmodAfterWriting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pulled")
	f, err := Create(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	if _, err := f.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := f.Chmod(0o751); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, []byte("x"), 0o751)
}

// TestLongName: a name near NAME_MAX still gets a temporary file.
func TestLongName(t *testing.T) {
	path := filepath.Join(t.TempDir(), strings.Repeat("n", 250))
	if err := Write(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, []byte("x"), 0o600)
}

// TestConcurrentWriters: writers of one path never mix their data; a reader meanwhile
// always sees one writer's whole content, and so does the path at the end.
func TestConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shared")
	const writers, rounds, size = 4, 20, 256 << 10
	contents := make([][]byte, writers)
	for i := range contents {
		contents[i] = bytes.Repeat([]byte{byte('a' + i)}, size)
	}
	whole := func(b []byte) error {
		if len(b) != size || bytes.Count(b, b[:1]) != size {
			return fmt.Errorf("%s holds %d bytes starting %q, not one writer's whole content", path, len(b), b[:min(len(b), 8)])
		}
		return nil
	}
	if err := Write(path, contents[0], 0o644); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	readErr := make(chan error, 1)
	go func() { readErr <- readWhileWriting(path, stop, whole) }()
	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds)
	for i := range writers {
		wg.Go(func() {
			for range rounds {
				errs <- Write(path, contents[i], 0o644)
			}
		})
	}
	wg.Wait()
	close(stop)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if err := <-readErr; err != nil {
		t.Error(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := whole(b); err != nil {
		t.Error(err)
	}
	if got := entries(t, dir); len(got) != 1 {
		t.Errorf("directory holds %v, want the one file", got)
	}
}

// readWhileWriting reads path until stop closes and returns the first content check
// that fails.
func readWhileWriting(path string, stop <-chan struct{}, check func([]byte) error) error {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			return err
		}
		if err := check(b); err != nil {
			return err
		}
	}
}

// TestSyncDir: a directory syncs; a missing one is an error naming it.
func TestSyncDir(t *testing.T) {
	dir := t.TempDir()
	if err := SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "gone")
	if err := SyncDir(missing); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("SyncDir of a missing directory: %v, want an error naming %s", err, missing)
	}
}

// TestExistingPerm: a file's own mode, else the default.
func TestExistingPerm(t *testing.T) {
	path := filepath.Join(t.TempDir(), "conf")
	if got := ExistingPerm(path, 0o640); got != 0o640 {
		t.Errorf("ExistingPerm of a missing file = %v, want the default 0640", got)
	}
	if err := Write(path, []byte("x"), 0o604); err != nil {
		t.Fatal(err)
	}
	if got := ExistingPerm(path, 0o640); got != 0o604 {
		t.Errorf("ExistingPerm = %v, want the file's 0604", got)
	}
}
