package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// tarball makes a small gzip'd rootfs tarball with the tar CLI and returns its bytes.
func tarball(t *testing.T, files map[string]string) []byte {
	t.Helper()
	src := t.TempDir()
	for name, body := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "x.tar.gz")
	if b, err := exec.Command("tar", "--numeric-owner", "-czf", out, "-C", src, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sum(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestImportListShowAliasDelete(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	root := tarball(t, map[string]string{"etc/hostname": "one\n"})
	img, err := s.Import(ctx, bytes.NewReader(root), ImportOptions{Aliases: []string{"busybox"}})
	if err != nil {
		t.Fatal(err)
	}
	if img.Fingerprint != sum(root) || img.Rootfs != "rootfs.tar.gz" || img.Size != int64(len(root)) {
		t.Fatalf("imported %+v", img)
	}
	// Importing again is idempotent and adds aliases.
	again, err := s.Import(ctx, bytes.NewReader(root), ImportOptions{Aliases: []string{"bbox"}})
	if err != nil || strings.Join(again.Aliases, ",") != "bbox,busybox" {
		t.Fatalf("re-import: %+v %v", again, err)
	}
	// A split image: fingerprint over meta then rootfs; metadata.yaml read from meta.
	meta := tarball(t, map[string]string{"metadata.yaml": "architecture: x86_64\nproperties:\n  os: busybox\n"})
	root2 := tarball(t, map[string]string{"etc/hostname": "two\n"})
	split, err := s.Import(ctx, bytes.NewReader(root2), ImportOptions{Meta: bytes.NewReader(meta), Expect: sum(meta, root2)})
	if err != nil {
		t.Fatal(err)
	}
	if split.Architecture != "x86_64" || split.Properties["os"] != "busybox" || split.Meta != "meta.tar.gz" {
		t.Fatalf("split image %+v", split)
	}
	if _, err := s.Import(ctx, bytes.NewReader(root2), ImportOptions{Expect: sum(root)}); !errors.Is(err, ErrFingerprint) {
		t.Fatalf("wrong Expect: %v", err)
	}
	list, err := s.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %v, %v", list, err)
	}
	// Aliases move; prefixes resolve; ambiguity and absence are reported.
	if err := s.Alias("busybox", split.Fingerprint[:10]); err != nil {
		t.Fatal(err)
	}
	if fp, _ := s.Resolve("busybox"); fp != split.Fingerprint {
		t.Fatalf("alias did not move: %s", fp)
	}
	if got, _ := s.Show(img.Fingerprint); strings.Join(got.Aliases, ",") != "bbox" {
		t.Fatalf("old image aliases %v", got.Aliases)
	}
	if _, err := s.Resolve("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Resolve(nope) = %v", err)
	}
	if _, err := s.Resolve(""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Resolve(\"\") = %v", err)
	}
	if err := s.Alias("../x", "bbox"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad alias: %v", err)
	}
	// Unpack gives the rootfs.
	dir := t.TempDir()
	if err := s.Unpack(ctx, "bbox", dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "etc", "hostname")); string(b) != "one\n" {
		t.Fatalf("unpacked hostname %q", b)
	}
	if err := s.Delete("bbox"); err != nil {
		t.Fatal(err)
	}
	if s.Has(img.Fingerprint) {
		t.Fatal("deleted image still there")
	}
	if err := s.Delete("bbox"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestImportRejectsEmpty(t *testing.T) {
	s, _ := Open(t.TempDir(), nil)
	if _, err := s.Import(context.Background(), bytes.NewReader(nil), ImportOptions{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty import: %v", err)
	}
	entries, _ := os.ReadDir(s.Dir())
	if len(entries) != 0 {
		t.Fatalf("failed import left %v", entries)
	}
}
