package transport

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Encoding is a compressed form of a pushed file; the host expands it with the program of
// the same name (zstd -dc, gzip -dc or busybox gzip -dc).
type Encoding string

// The encodings a push can use, best first (see README.md, "Compression").
const (
	// EncZstd is Zstandard: on the agent binary 0.40 of the size at the default level, and
	// decompressed on the host at ~500 MB/s (gzip: 0.45, ~150 MB/s).
	EncZstd Encoding = "zstd"
	// EncGzip is gzip, which every host has (or busybox has).
	EncGzip Encoding = "gzip"
)

// gzipLevel and zstdLevel trade compression time (paid once per file version: the copies
// are kept on disk, see NewDiskFileCache) for bytes on the wire (paid per push from the
// control node). See BenchmarkCompression.
const (
	gzipLevel = gzip.BestSpeed
	zstdLevel = zstd.SpeedDefault
)

// cacheKeep is how many compressed copies a disk cache keeps (the most recently used):
// the agent versions an operator alternates between, ~8 MB each.
const cacheKeep = 8

// FileCache remembers, per local file, its SHA-256 and its compressed copies, so that a
// file pushed to many hosts is read, hashed and compressed once per run. With a directory
// (NewDiskFileCache) the compressed copies outlive the run, named by the file's SHA-256:
// the next run of the same agent reads ~8 MB instead of compressing 20 MB (~200-300 ms of
// CPU on the critical path of `orch up`). An entry is refreshed when the file's size or
// modification time changes. Safe for concurrent use.
type FileCache struct {
	dir string // "" keeps nothing on disk

	mu    sync.Mutex
	files map[string]*cachedFile
}

// NewFileCache returns an empty cache that keeps nothing on disk.
func NewFileCache() *FileCache {
	return &FileCache{files: map[string]*cachedFile{}}
}

// NewDiskFileCache returns a cache that also keeps compressed copies in dir (created on
// first write), the cacheKeep most recently used. A copy that does not match its own
// checksum there is ignored and written again.
func NewDiskFileCache(dir string) *FileCache {
	return &FileCache{dir: dir, files: map[string]*cachedFile{}}
}

// cachedFile is one file's digest and compressed copies, each computed at most once.
type cachedFile struct {
	path    string
	size    int64
	modTime time.Time

	sumOnce sync.Once
	sum     string
	sumErr  error

	mu   sync.Mutex
	encs map[Encoding]*compressed
}

// compressed is one compressed copy, made at most once.
type compressed struct {
	once sync.Once
	data []byte
	err  error
}

// entry returns the cache entry for path's current version.
func (fc *FileCache) entry(path string) (*cachedFile, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	e := fc.files[path]
	if e == nil || e.size != st.Size() || !e.modTime.Equal(st.ModTime()) {
		e = &cachedFile{path: path, size: st.Size(), modTime: st.ModTime(), encs: map[Encoding]*compressed{}}
		fc.files[path] = e
	}
	return e, nil
}

// Sum returns the hex SHA-256 of the file at path.
func (fc *FileCache) Sum(path string) (string, error) {
	e, err := fc.entry(path)
	if err != nil {
		return "", err
	}
	e.sumOnce.Do(func() { e.sum, e.sumErr = hashFile(path, io.Discard) })
	return e.sum, e.sumErr
}

// Gzip returns the file compressed with gzip (Compressed with EncGzip).
func (fc *FileCache) Gzip(path string) ([]byte, error) { return fc.Compressed(path, EncGzip) }

// Compressed returns the file compressed with enc: from memory, else from the disk cache,
// else compressed now (and kept on disk). It fails if the file changed since Sum.
func (fc *FileCache) Compressed(path string, enc Encoding) ([]byte, error) {
	if enc != EncZstd && enc != EncGzip {
		return nil, fmt.Errorf("%s: unknown encoding %q", path, enc)
	}
	sum, err := fc.Sum(path)
	if err != nil {
		return nil, err
	}
	e, err := fc.entry(path)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	c := e.encs[enc]
	if c == nil {
		c = &compressed{}
		e.encs[enc] = c
	}
	e.mu.Unlock()
	c.once.Do(func() { c.data, c.err = fc.load(path, sum, e.size, enc) })
	return c.data, c.err
}

// Warm computes the file's digest and its copy compressed with enc in the background, so
// that the first push finds them ready (`orch up` starts it while it connects to hosts).
func (fc *FileCache) Warm(path string, enc Encoding) {
	go fc.Compressed(path, enc) //nolint:errcheck // the push asks again and reports it
}

// load reads the compressed copy from the disk cache or makes (and stores) it.
func (fc *FileCache) load(path, sum string, size int64, enc Encoding) ([]byte, error) {
	if data, ok := fc.readCached(sum, enc); ok {
		return data, nil
	}
	data, err := compressFile(path, sum, size, enc)
	if err == nil {
		fc.writeCached(sum, enc, data)
	}
	return data, err
}

// cachePath is where the disk cache keeps the copy of content sum compressed with enc.
func (fc *FileCache) cachePath(sum string, enc Encoding) string {
	return filepath.Join(fc.dir, sum+"."+string(enc))
}

// A cached copy is the SHA-256 of the compressed bytes (32 bytes), then those bytes: a
// truncated or damaged copy is found before it is sent (the host would refuse it anyway:
// every push checks the expanded file's SHA-256).
func (fc *FileCache) readCached(sum string, enc Encoding) ([]byte, bool) {
	if fc.dir == "" {
		return nil, false
	}
	p := fc.cachePath(sum, enc)
	b, err := os.ReadFile(p)
	if err != nil || len(b) < sha256.Size {
		return nil, false
	}
	data := b[sha256.Size:]
	if got := sha256.Sum256(data); !bytes.Equal(got[:], b[:sha256.Size]) {
		return nil, false
	}
	now := time.Now()
	_ = os.Chtimes(p, now, now) // most recently used: kept by prune
	return data, true
}

// writeCached stores a compressed copy (temporary file, then rename) and prunes the
// cache; failures only cost the next run a compression.
func (fc *FileCache) writeCached(sum string, enc Encoding, data []byte) {
	if fc.dir == "" || os.MkdirAll(fc.dir, 0o700) != nil {
		return
	}
	f, err := os.CreateTemp(fc.dir, ".tmp-*")
	if err != nil {
		return
	}
	check := sha256.Sum256(data)
	_, err = f.Write(check[:])
	if err == nil {
		_, err = f.Write(data)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), fc.cachePath(sum, enc))
	}
	if err != nil {
		os.Remove(f.Name())
		return
	}
	fc.prune()
}

// prune removes all but the cacheKeep most recently used copies.
func (fc *FileCache) prune() {
	ents, err := os.ReadDir(fc.dir)
	if err != nil {
		return
	}
	type copyFile struct {
		name string
		used time.Time
	}
	var copies []copyFile
	for _, de := range ents {
		if strings.HasPrefix(de.Name(), ".") || !de.Type().IsRegular() {
			continue
		}
		if info, err := de.Info(); err == nil {
			copies = append(copies, copyFile{de.Name(), info.ModTime()})
		}
	}
	sort.Slice(copies, func(i, j int) bool { return copies[i].used.After(copies[j].used) })
	for i := cacheKeep; i < len(copies); i++ {
		os.Remove(filepath.Join(fc.dir, copies[i].name))
	}
}

// compressFile compresses path with enc, checking that its content still hashes to want.
func compressFile(path, want string, size int64, enc Encoding) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(int(size / 2))
	zw, err := newCompressor(&buf, enc)
	if err != nil {
		return nil, err
	}
	got, err := hashFile(path, zw)
	if err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if got != want {
		return nil, fmt.Errorf("%s changed while being read", path)
	}
	return buf.Bytes(), nil
}

// newCompressor returns a writer compressing into w with enc.
func newCompressor(w io.Writer, enc Encoding) (io.WriteCloser, error) {
	switch enc {
	case EncZstd:
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstdLevel))
	case EncGzip:
		return gzip.NewWriterLevel(w, gzipLevel)
	}
	return nil, errors.New("unknown encoding " + string(enc))
}

// hashFile copies the file to w and returns its hex SHA-256.
func hashFile(path string, w io.Writer) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(h, w), f); err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
