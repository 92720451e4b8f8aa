package simplestreams

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"orch/modules/image"
)

var built struct{ dir, rootfs, meta string }

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// busyboxImage builds the busybox image with scripts/mkimage.sh and its metadata tarball,
// once per test binary.
func busyboxImage(t *testing.T) (rootfs, meta string) {
	t.Helper()
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("no /bin/busybox: install busybox-static")
	}
	if built.dir != "" {
		return built.rootfs, built.meta
	}
	dir, err := os.MkdirTemp("", "orch-ss-test-")
	if err != nil {
		t.Fatal(err)
	}
	built.dir = dir
	suffix := ".tar.xz"
	if _, err := exec.LookPath("xz"); err != nil {
		suffix = ".tar.gz"
	}
	built.rootfs = filepath.Join(dir, "rootfs"+suffix)
	if b, err := exec.Command("../../../scripts/mkimage.sh", built.rootfs).CombinedOutput(); err != nil {
		t.Fatalf("mkimage.sh: %v: %s", err, b)
	}
	built.meta = filepath.Join(dir, "lxd"+suffix)
	if err := WriteMeta(context.Background(), built.meta, "x86_64", map[string]string{"os": "busybox", "description": "tiny"}); err != nil {
		t.Fatal(err)
	}
	return built.rootfs, built.meta
}

// serve publishes entries on an httptest server on 127.0.0.1.
func serve(t *testing.T, entries []Entry) *httptest.Server {
	t.Helper()
	dir := t.TempDir()
	if err := Write(dir, entries); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv
}

func TestPullBusybox(t *testing.T) {
	rootfs, meta := busyboxImage(t)
	srv := serve(t, []Entry{
		{Aliases: []string{"busybox", "busybox/1"}, OS: "busybox", Release: "1", Arch: runtime.GOARCH, Version: "20260101_0000", Rootfs: rootfs, Meta: meta},
		{Aliases: []string{"busybox", "busybox/1"}, OS: "busybox", Release: "1", Arch: runtime.GOARCH, Version: "20250101_0000", Rootfs: meta, Meta: rootfs},
		{Aliases: []string{"plain"}, OS: "plain", Release: "1", Arch: runtime.GOARCH, Version: "1", Rootfs: rootfs},
	})
	store, err := image.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{URL: srv.URL}
	ctx := context.Background()
	found, err := c.Find(ctx, "busybox/1")
	if err != nil {
		t.Fatal(err)
	}
	if found.Version != "20260101_0000" || found.Meta.Path == "" {
		t.Fatalf("Find picked %+v, want the newest split build", found)
	}
	img, err := c.Pull(ctx, store, "busybox", image.ImportOptions{Aliases: []string{"bb"}})
	if err != nil {
		t.Fatal(err)
	}
	if img.Fingerprint != found.Fingerprint || img.Properties["os"] != "busybox" || img.Architecture != "x86_64" {
		t.Fatalf("pulled %+v, want fingerprint %s and the metadata", img, found.Fingerprint)
	}
	// Pulling again keeps the stored copy and only adds the alias.
	again, err := c.Pull(ctx, store, "busybox", image.ImportOptions{Aliases: []string{"bb2"}})
	if err != nil || len(again.Aliases) != 2 {
		t.Fatalf("second pull: %+v %v", again, err)
	}
	dir := t.TempDir()
	if err := store.Unpack(ctx, "bb", dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bin", "busybox")); err != nil {
		t.Fatalf("unpacked image has no busybox: %v", err)
	}
	plain, err := c.Pull(ctx, store, "plain", image.ImportOptions{})
	if err != nil || plain.Meta != "" {
		t.Fatalf("rootfs-only pull: %+v %v", plain, err)
	}
	if _, err := c.Find(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Find(nope) = %v", err)
	}
	if _, err := (&Client{URL: srv.URL, Arch: "s390x"}).Find(ctx, "busybox"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("other arch: %v", err)
	}
}

// TestChecksumRefused serves a tampered rootfs: the download is refused and nothing stored.
func TestChecksumRefused(t *testing.T) {
	rootfs, _ := busyboxImage(t)
	dir := t.TempDir()
	if err := Write(dir, []Entry{{Aliases: []string{"bb"}, OS: "bb", Release: "1", Arch: runtime.GOARCH, Version: "1", Rootfs: rootfs}}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "images/bb/1", runtime.GOARCH, "1/root.tar"+ext(rootfs))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("tampered")
	f.Close()
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	store, _ := image.Open(t.TempDir(), nil)
	if _, err := (&Client{URL: srv.URL}).Pull(context.Background(), store, "bb", image.ImportOptions{}); !errors.Is(err, ErrChecksum) {
		t.Fatalf("tampered pull: %v, want ErrChecksum", err)
	}
	if list, _ := store.List(); len(list) != 0 {
		t.Fatalf("tampered image stored: %v", list)
	}
}
