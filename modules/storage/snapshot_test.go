package storage

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// checkSnapshots snapshots a container volume holding a file, changes the file, restores
// the snapshot (the file as it was, the volume writable), and deletes one snapshot and
// then all of them.
func checkSnapshots(t *testing.T, d Driver, p Pool) {
	t.Helper()
	ctx := context.Background()
	s, err := SnapshotsOf(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CreateTypedVolume(ctx, VolumeContainer, "c1", nil); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(p.VolumePathOf(VolumeContainer, "c1"), "rootfs", "etc", "motd")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Dir(f), 0o755))
	must(os.WriteFile(f, []byte("before\n"), 0o644))
	must(s.Snapshot(ctx, "c1", "snap0"))
	if err := s.Snapshot(ctx, "c1", "snap0"); !errors.Is(err, ErrVolumeExists) {
		t.Fatalf("a second snap0: %v", err)
	}
	must(s.Snapshot(ctx, "c1", "snap1"))
	must(os.WriteFile(f, []byte("after\n"), 0o644))
	must(s.Restore(ctx, "c1", "snap0"))
	if b, err := os.ReadFile(f); err != nil || string(b) != "before\n" {
		t.Fatalf("after restoring snap0: %q, %v", b, err)
	}
	must(os.WriteFile(f, []byte("writable\n"), 0o644))
	must(s.DeleteSnapshot(ctx, "c1", "snap1"))
	if exists(p.SnapshotPath("c1", "snap1")) || !exists(p.SnapshotPath("c1", "snap0")) {
		t.Fatal("deleting snap1 did not remove exactly it")
	}
	must(s.DeleteSnapshot(ctx, "c1", ""))
	if exists(filepath.Dir(p.SnapshotPath("c1", "snap0"))) {
		t.Fatal("snapshots left after deleting all")
	}
	if err := s.Restore(ctx, "c1", "gone"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("restoring a missing snapshot: %v", err)
	}
}

func TestDirSnapshots(t *testing.T) {
	p := Pool{Name: "p1", AgentDir: t.TempDir()}
	d, err := New("dir", p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Create(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkSnapshots(t, d, p)
}

func TestBtrfsSnapshots(t *testing.T) {
	requireRoot(t)
	for _, tool := range []string{"mkfs.btrfs", "btrfs", "losetup"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install btrfs-progs and util-linux", tool)
		}
	}
	if err := kernelHas("btrfs"); err != nil {
		t.Skipf("%v", err)
	}
	p := Pool{Name: "bts", AgentDir: t.TempDir(), Config: map[string]string{"size": "128MiB"}}
	t.Cleanup(func() { cleanupMount(t, p.MountPoint(), p.LoopFile()) })
	d, err := New("btrfs", p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Create(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkSnapshots(t, d, p)
	if err := d.DeleteTypedVolume(context.Background(), VolumeContainer, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(context.Background()); err != nil {
		t.Fatal(err)
	}
}
