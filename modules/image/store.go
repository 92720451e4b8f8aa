package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"orch/internal/atomicfile"
)

// Store is the image directory of one member.
type Store struct {
	dir        string
	log        *slog.Logger
	tarTimeout time.Duration
	mu         sync.Mutex // serializes changes to metadata.yaml files (aliases)
}

// Open returns the store in dir, creating dir. A nil logger means slog.Default().
func Open(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	return &Store{dir: dir, log: log, tarTimeout: 10 * time.Minute}, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// ImportOptions are the optional parts of an Import.
type ImportOptions struct {
	// Meta is the metadata tarball of a split image; nil for a rootfs-only image.
	Meta io.Reader
	// Aliases to point at the image (moved from any other image holding them).
	Aliases []string
	// Properties to record (merged over those of the metadata).
	Properties map[string]string
	// Expect, when set, is the fingerprint the content must hash to (replication, downloads).
	Expect string
}

// Import stores an image read from rootfs (and opts.Meta) and returns it. Importing an
// image that is already there only adds the aliases.
func (s *Store) Import(ctx context.Context, rootfs io.Reader, opts ImportOptions) (Image, error) {
	for _, a := range opts.Aliases {
		if err := ValidAlias(a); err != nil {
			return Image{}, err
		}
	}
	tmp, err := os.MkdirTemp(s.dir, ".import-")
	if err != nil {
		return Image{}, fmt.Errorf("image import: %w", err)
	}
	defer os.RemoveAll(tmp)
	img, err := s.receive(tmp, rootfs, opts)
	if err != nil {
		return Image{}, err
	}
	if err := s.readMeta(ctx, tmp, &img); err != nil {
		return Image{}, err
	}
	for k, v := range opts.Properties {
		if img.Properties == nil {
			img.Properties = map[string]string{}
		}
		img.Properties[k] = v
	}
	return s.commit(tmp, img, opts.Aliases)
}

// ImportFile imports the rootfs tarball at path (see Import).
func (s *Store) ImportFile(ctx context.Context, path string, opts ImportOptions) (Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return Image{}, fmt.Errorf("image import: %w", err)
	}
	defer f.Close()
	return s.Import(ctx, f, opts)
}

// receive writes the tarballs into tmp while hashing them.
func (s *Store) receive(tmp string, rootfs io.Reader, opts ImportOptions) (Image, error) {
	h := sha256.New()
	img := Image{ImportedAt: time.Now().UTC()}
	if opts.Meta != nil {
		name, n, err := save(tmp, "meta", opts.Meta, h)
		if err != nil {
			return img, fmt.Errorf("image import: metadata tarball: %w", err)
		}
		img.Meta, img.Size = name, n
	}
	name, n, err := save(tmp, "rootfs", rootfs, h)
	if err != nil {
		return img, fmt.Errorf("image import: rootfs tarball: %w", err)
	}
	img.Rootfs, img.Size = name, img.Size+n
	img.Fingerprint = hex.EncodeToString(h.Sum(nil))
	if opts.Expect != "" && opts.Expect != img.Fingerprint {
		return img, fmt.Errorf("%w: got %s, want %s", ErrFingerprint, img.Fingerprint, opts.Expect)
	}
	return img, nil
}

// save copies r into dir/base.tar[.xz|.gz|.zst], named after its compression, atomically
// and durably (internal/atomicfile), hashing it into h.
func save(dir, base string, r io.Reader, h io.Writer) (string, int64, error) {
	head := make([]byte, 6)
	k, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return "", 0, fmt.Errorf("%w: empty or unreadable: %v", ErrInvalid, err)
	}
	head = head[:k]
	name := base + ".tar" + compressionExt(head)
	body := io.TeeReader(io.MultiReader(bytes.NewReader(head), r), h)
	n, err := atomicfile.WriteFrom(filepath.Join(dir, name), body, 0o600)
	return name, n, err
}

// compressionExt names a compression from a file's first bytes.
func compressionExt(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return ".xz"
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return ".gz"
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return ".zst"
	case bytes.HasPrefix(head, []byte("BZh")):
		return ".bz2"
	}
	return ""
}

// commit moves tmp to its fingerprint's directory (or keeps the existing one) and sets
// the aliases.
func (s *Store) commit(tmp string, img Image, aliases []string) (Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	final := filepath.Join(s.dir, img.Fingerprint)
	if old, err := s.load(img.Fingerprint); err == nil {
		img = old
	} else {
		if err := writeMeta(tmp, img); err != nil {
			return Image{}, err
		}
		if err := os.Rename(tmp, final); err != nil {
			return Image{}, fmt.Errorf("image %s: %w", img.Fingerprint, err)
		}
		if err := atomicfile.SyncDir(s.dir); err != nil {
			return Image{}, fmt.Errorf("image %s: %w", img.Fingerprint, err)
		}
		s.log.Info("image stored", "fingerprint", img.Fingerprint, "size", img.Size)
	}
	for _, a := range aliases {
		if err := s.setAlias(a, img.Fingerprint); err != nil {
			return Image{}, err
		}
	}
	return s.load(img.Fingerprint)
}

// readMeta reads metadata.yaml out of the metadata tarball, if there is one.
func (s *Store) readMeta(ctx context.Context, dir string, img *Image) error {
	if img.Meta == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.tarTimeout)
	defer cancel()
	var out []byte
	var err error
	for _, member := range []string{"metadata.yaml", "./metadata.yaml"} {
		out, err = exec.CommandContext(ctx, "tar", "-xOf", filepath.Join(dir, img.Meta), member).Output()
		if err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("%w: metadata tarball has no readable metadata.yaml: %v", ErrInvalid, err)
	}
	var md struct {
		Architecture string            `yaml:"architecture"`
		Properties   map[string]string `yaml:"properties"`
	}
	if err := yaml.Unmarshal(out, &md); err != nil {
		return fmt.Errorf("%w: metadata.yaml: %v", ErrInvalid, err)
	}
	img.Architecture, img.Properties = md.Architecture, md.Properties
	return nil
}

// writeMeta writes dir/metadata.yaml atomically and durably (internal/atomicfile): a
// crash never leaves an image, and so the store's List, with a truncated one.
func writeMeta(dir string, img Image) error {
	b, err := yaml.Marshal(img)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, "metadata.yaml"), b, 0o600); err != nil {
		return fmt.Errorf("image %s: %w", img.Fingerprint, err)
	}
	return nil
}

// load reads the image with that full fingerprint.
func (s *Store) load(fp string) (Image, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, fp, "metadata.yaml"))
	if errors.Is(err, os.ErrNotExist) {
		return Image{}, fmt.Errorf("%s: %w", fp, ErrNotFound)
	}
	if err != nil {
		return Image{}, fmt.Errorf("image %s: %w", fp, err)
	}
	var img Image
	if err := yaml.Unmarshal(b, &img); err != nil {
		return Image{}, fmt.Errorf("image %s: metadata.yaml: %w", fp, err)
	}
	return img, nil
}

// List returns every stored image, sorted by fingerprint.
func (s *Store) List() ([]Image, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	var out []Image
	for _, e := range entries {
		if !e.IsDir() || !fpRE().MatchString(e.Name()) {
			continue
		}
		img, err := s.load(e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Fingerprint < out[j].Fingerprint })
	return out, nil
}

// Resolve returns the full fingerprint for an alias, a fingerprint or a unique prefix of one.
func (s *Store) Resolve(ref string) (string, error) {
	if ref == "" {
		return "", fmt.Errorf("%w: empty image reference", ErrInvalid)
	}
	all, err := s.List()
	if err != nil {
		return "", err
	}
	for _, img := range all {
		for _, a := range img.Aliases {
			if a == ref {
				return img.Fingerprint, nil
			}
		}
	}
	var match []string
	for _, img := range all {
		if strings.HasPrefix(img.Fingerprint, strings.ToLower(ref)) {
			match = append(match, img.Fingerprint)
		}
	}
	switch len(match) {
	case 0:
		return "", fmt.Errorf("%s: %w", ref, ErrNotFound)
	case 1:
		return match[0], nil
	}
	return "", fmt.Errorf("%s: %w (%d images)", ref, ErrAmbiguous, len(match))
}

// Show returns the image an alias or fingerprint (prefix) refers to.
func (s *Store) Show(ref string) (Image, error) {
	fp, err := s.Resolve(ref)
	if err != nil {
		return Image{}, err
	}
	return s.load(fp)
}

// Has reports whether the image with that full fingerprint is stored.
func (s *Store) Has(fp string) bool {
	_, err := s.load(fp)
	return err == nil
}

// Delete removes the image an alias or fingerprint (prefix) refers to.
func (s *Store) Delete(ref string) error {
	fp, err := s.Resolve(ref)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	trash := filepath.Join(s.dir, ".delete-"+fp)
	if err := os.Rename(filepath.Join(s.dir, fp), trash); err != nil {
		return fmt.Errorf("image %s: %w", fp, err)
	}
	s.log.Info("image deleted", "fingerprint", fp)
	return os.RemoveAll(trash)
}

// Alias points alias name at the image ref refers to, taking it from any other image.
func (s *Store) Alias(name, ref string) error {
	if err := ValidAlias(name); err != nil {
		return err
	}
	fp, err := s.Resolve(ref)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setAlias(name, fp)
}

// Unalias removes alias name from whichever image holds it.
func (s *Store) Unalias(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setAlias(name, "")
}

// setAlias removes name from every image, then adds it to fp (when not empty).
func (s *Store) setAlias(name, fp string) error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	for _, e := range entries {
		if !fpRE().MatchString(e.Name()) {
			continue
		}
		img, err := s.load(e.Name())
		if err != nil {
			return err
		}
		kept := img.Aliases[:0:0]
		for _, a := range img.Aliases {
			if a != name {
				kept = append(kept, a)
			}
		}
		if img.Fingerprint == fp {
			kept = append(kept, name)
			sort.Strings(kept)
		}
		if len(kept) == len(img.Aliases) && img.Fingerprint != fp {
			continue
		}
		img.Aliases = kept
		if err := writeMeta(filepath.Join(s.dir, img.Fingerprint), img); err != nil {
			return err
		}
	}
	return nil
}
