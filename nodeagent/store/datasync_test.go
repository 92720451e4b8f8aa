package store

import (
	"errors"
	"os"
	"testing"

	"github.com/hashicorp/raft-wal/fs"
)

// A segment's first Sync is raft-wal's (file and directory), the later ones fdatasync on
// the same descriptor; a failing fdatasync names the file.
func TestDatasyncFSSyncs(t *testing.T) {
	dir := t.TempDir()
	vfs := datasyncFS{FS: fs.New()}
	f, err := vfs.Create(dir, "seg", 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := f.WriteAt([]byte("entry"), int64(i*5)); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatalf("sync %d: %v", i, err)
		}
	}
	if df := f.(*datasyncFile); df.first {
		t.Error("the first Sync was not recorded: every Sync would fsync the directory too")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	g, err := vfs.OpenWriter(dir, "seg")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Sync(); err != nil {
		t.Fatalf("fdatasync of a reopened segment: %v", err)
	}
	g.Close()
	var pe *os.PathError
	if err := g.Sync(); err == nil || errors.As(err, &pe) && pe.Path == "" {
		t.Errorf("fdatasync of a closed segment: %v, want an error naming it", err)
	}
	got, err := os.ReadFile(dir + "/seg")
	if err != nil || string(got[:15]) != "entryentryentry" {
		t.Errorf("segment holds %q (%v)", got[:15], err)
	}
}
