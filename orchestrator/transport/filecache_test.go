package transport

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// unzstd expands a zstd stream, failing the test when it is not one.
func unzstd(t *testing.T, b []byte) []byte {
	t.Helper()
	r, err := zstd.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("not a zstd stream: %v", err)
	}
	return out
}

// A second run (a new FileCache over the same directory) reads the compressed copy the
// first one kept, by the file's SHA-256, instead of compressing again.
func TestDiskFileCacheReusesCopies(t *testing.T) {
	dir := t.TempDir()
	local, content := writeRandom(t, t.TempDir(), "agent", 1<<20)
	first, err := NewDiskFileCache(dir).Compressed(local, EncZstd)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(unzstd(t, first), content) {
		t.Fatal("compressed copy does not expand to the file")
	}
	sum := fmt.Sprintf("%x", sha256.Sum256(content))
	kept := filepath.Join(dir, sum+".zstd")
	// Put another valid copy in its place: only a read of the kept copy can return it.
	planted := plantCopy(t, kept, []byte("planted"))
	got, err := NewDiskFileCache(dir).Compressed(local, EncZstd)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, planted) {
		t.Fatal("second run compressed again instead of reading the kept copy")
	}
}

// A damaged copy (truncated, or bytes changed) is not sent: it is compressed again and
// replaced.
func TestDiskFileCacheIgnoresDamagedCopy(t *testing.T) {
	dir := t.TempDir()
	local, content := writeRandom(t, t.TempDir(), "agent", 1<<20)
	if _, err := NewDiskFileCache(dir).Compressed(local, EncZstd); err != nil {
		t.Fatal(err)
	}
	kept := filepath.Join(dir, fmt.Sprintf("%x", sha256.Sum256(content))+".zstd")
	b, _ := os.ReadFile(kept)
	for name, damaged := range map[string][]byte{"truncated": b[:len(b)/2], "flipped": flip(b, len(b)-10)} {
		t.Run(name, func(t *testing.T) {
			os.WriteFile(kept, damaged, 0o600)
			got, err := NewDiskFileCache(dir).Compressed(local, EncZstd)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(unzstd(t, got), content) {
				t.Fatal("damaged copy returned")
			}
			if again, _ := os.ReadFile(kept); bytes.Equal(again, damaged) {
				t.Fatal("damaged copy left in the cache")
			}
		})
	}
}

// The cache keeps the cacheKeep most recently used copies.
func TestDiskFileCachePrunes(t *testing.T) {
	dir := t.TempDir()
	src := t.TempDir()
	fc := NewDiskFileCache(dir)
	for i := range cacheKeep + 3 {
		local, _ := writeRandom(t, src, fmt.Sprintf("agent%d", i), 4<<10)
		if _, err := fc.Compressed(local, EncGzip); err != nil {
			t.Fatal(err)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != cacheKeep {
		t.Fatalf("%d copies kept, want %d", len(ents), cacheKeep)
	}
}

// decide sends the first compression the host can expand, else the file as is.
func TestPushPicksAnEncodingTheHostExpands(t *testing.T) {
	local, _ := writeRandom(t, t.TempDir(), "agent", 64<<10)
	f, _ := os.Open(local)
	defer f.Close()
	c := &Conn{cfg: Config{Files: NewFileCache()}}
	p := &pusher{c: c, local: local, sum: "x", mode: 0o755}
	for _, tc := range []struct {
		dec  []Encoding
		want string
	}{
		{[]Encoding{EncZstd, EncGzip}, actZstd},
		{[]Encoding{EncGzip}, actGzip},
		{nil, actRaw},
	} {
		action, _, err := p.decide(remoteFile{dec: tc.dec}, relayEncodings, f)
		if err != nil || action != tc.want {
			t.Errorf("host expands %v: %s (%v), want %s", tc.dec, action, err, tc.want)
		}
	}
	if action, _, _ := p.decide(remoteFile{dec: []Encoding{EncZstd}}, nil, f); action != actRaw {
		t.Errorf("plain stream push compressed: %s", action)
	}
}

// plantCopy writes a valid cache entry holding data at path and returns data.
func plantCopy(t *testing.T, path string, data []byte) []byte {
	t.Helper()
	sum := sha256.Sum256(data)
	if err := os.WriteFile(path, append(sum[:], data...), 0o600); err != nil {
		t.Fatal(err)
	}
	return data
}

// flip returns a copy of b with byte i changed.
func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0xff
	return c
}
