package store

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// smallFS mounts a fresh ext4 filesystem of sizeMiB on a loop file and returns its mount
// point; cleanup unmounts it. It skips without root or the tools.
func smallFS(t *testing.T, sizeMiB int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a loop filesystem")
	}
	for _, tool := range []string{"mkfs.ext4", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (apt-get install e2fsprogs mount)", tool)
		}
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "fs.img"), filepath.Join(dir, "mnt")
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	run("truncate", "-s", fmt.Sprintf("%dM", sizeMiB), img)
	run("mkfs.ext4", "-q", "-F", "-m", "0", img)
	run("mount", "-o", "loop", img, mnt)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s", mnt, err, out)
			_ = exec.Command("umount", "-l", mnt).Run()
		}
	})
	return mnt
}

// fillFS fills the filesystem of dir with a file, a MiB at a time then a block at a time,
// until it refuses more; it returns the file's path.
func fillFS(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var size int64
	for _, step := range []int64{1 << 20, 4 << 10} {
		for {
			err := syscall.Fallocate(int(f.Fd()), 0, size, step)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				t.Fatalf("fallocate %s: %v", path, err)
			}
			size += step
		}
	}
	return path
}

// entries makes raft log entries first..last of term.
func entries(first, last, term uint64) []*raft.Log {
	var out []*raft.Log
	for i := first; i <= last; i++ {
		out = append(out, &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: []byte(fmt.Sprintf("entry %d term %d", i, term))})
	}
	return out
}

// TestLogStoreRecoversFromFullDisk: a follower truncating its log suffix (entries of a
// deposed leader) on a full disk fails; once space is freed, the truncation and the
// appends that follow must succeed without a restart. raft-wal commits the new tail
// segment to its meta database before creating the file; when preallocating the file
// fails, the file is left behind and raft-wal's in-memory state still holds the same
// segment ID, so every retry failed with "file exists" until the process restarted
// (seen in a soak: the member never caught up).
func TestLogStoreRecoversFromFullDisk(t *testing.T) {
	dir := smallFS(t, 48)
	cfg := Config{Dir: dir, walSegmentSize: 4 << 20}
	logs, err := openWAL(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logs.Close() })
	if err := logs.StoreLogs(entries(1, 100, 1)); err != nil {
		t.Fatal(err)
	}
	filler := fillFS(t, dir)

	// The leader of term 2 has no entries after 60: the suffix goes. raft takes a failed
	// truncation for one that changed nothing (its idea of the last index stays), so the
	// log must say what the call said.
	err = logs.DeleteRange(61, 100)
	last, lerr := logs.LastIndex()
	t.Logf("truncating on a full disk: %v; last index then %d (%v)", err, last, lerr)
	switch {
	case err == nil && last != 60:
		t.Fatalf("truncating the suffix 61-100 succeeded on a full disk but the log ends at %d (%v)", last, lerr)
	case err != nil && last != 100:
		t.Fatalf("truncating the suffix 61-100 failed on a full disk (%v) but the log ends at %d (%v), not 100: raft would look for entries the log lacks", err, last, lerr)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// raft retries the truncation with the next AppendEntries, then appends.
	if err := logs.DeleteRange(61, 100); err != nil {
		t.Fatalf("truncating the log suffix again after space was freed: %v", err)
	}
	if err := logs.StoreLogs(entries(61, 80, 2)); err != nil {
		t.Fatalf("appending after the truncation: %v", err)
	}
	checkLog := func(when string, ls logStore) {
		t.Helper()
		last, err := ls.LastIndex()
		if err != nil || last != 80 {
			t.Fatalf("%s: last index %d, %v; want 80", when, last, err)
		}
		for _, i := range []uint64{1, 60, 61, 80} {
			var l raft.Log
			if err := ls.GetLog(i, &l); err != nil {
				t.Fatalf("%s: entry %d: %v", when, i, err)
			}
			if want := uint64(1 + i/61); l.Term != want {
				t.Fatalf("%s: entry %d has term %d, want %d", when, i, l.Term, want)
			}
		}
	}
	checkLog("after the truncation", logs)
	if err := logs.Close(); err != nil {
		t.Fatal(err)
	}
	logs, err = openWAL(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatalf("reopening the log: %v", err)
	}
	checkLog("after reopening", logs)
}

// TestLogTruncationsFitSmallDisk: every truncation of the log's suffix (a follower
// dropping a deposed leader's uncommitted entries, after most leader changes) seals the
// tail segment early and preallocates a whole new one, and sealed segments are freed only
// when a snapshot's head truncation passes them. With raft-wal's 64 MiB segments a soak
// (a fault every ten seconds) left fourteen segments, 896 MiB, on a member's 1 GiB
// filesystem, which then ran out of space. Sixteen truncations must fit in 256 MiB.
func TestLogTruncationsFitSmallDisk(t *testing.T) {
	dir := smallFS(t, 256)
	logs, err := openWAL(Config{Dir: dir}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logs.Close() })
	next := uint64(1)
	for term := uint64(1); term <= 16; term++ {
		if err := logs.StoreLogs(entries(next, next+49, term)); err != nil {
			t.Fatalf("term %d: appending entries %d-%d: %v", term, next, next+49, err)
		}
		if err := logs.DeleteRange(next+40, next+49); err != nil {
			var st syscall.Statfs_t
			_ = syscall.Statfs(dir, &st)
			t.Fatalf("term %d: truncating the suffix %d-%d: %v (%d MiB free)", term, next+40, next+49, err, st.Bavail*uint64(st.Bsize)>>20)
		}
		next += 40
	}
}
