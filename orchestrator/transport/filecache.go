package transport

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// gzipLevel trades compression time (paid once per file per run) for bytes on the wire
// (paid once per host). See BenchmarkGzipLevel.
const gzipLevel = gzip.BestSpeed

// FileCache remembers, per local file, its SHA-256 and a gzip-compressed copy, so that a
// file pushed to many hosts is read, hashed and compressed once. An entry is refreshed
// when the file's size or modification time changes. Safe for concurrent use.
type FileCache struct {
	mu    sync.Mutex
	files map[string]*cachedFile
}

// NewFileCache returns an empty cache.
func NewFileCache() *FileCache {
	return &FileCache{files: map[string]*cachedFile{}}
}

// cachedFile is one file's digest and compressed bytes, each computed at most once.
type cachedFile struct {
	path    string
	size    int64
	modTime time.Time

	sumOnce sync.Once
	sum     string
	sumErr  error

	gzOnce sync.Once
	gz     []byte
	gzErr  error
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
		e = &cachedFile{path: path, size: st.Size(), modTime: st.ModTime()}
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

// Gzip returns the file compressed with gzip. It fails if the file changed since Sum.
func (fc *FileCache) Gzip(path string) ([]byte, error) {
	sum, err := fc.Sum(path)
	if err != nil {
		return nil, err
	}
	e, err := fc.entry(path)
	if err != nil {
		return nil, err
	}
	e.gzOnce.Do(func() { e.gz, e.gzErr = compressFile(path, sum, e.size) })
	return e.gz, e.gzErr
}

// compressFile gzips path, checking that its content still hashes to want.
func compressFile(path, want string, size int64) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(int(size / 2))
	zw, err := gzip.NewWriterLevel(&buf, gzipLevel)
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
