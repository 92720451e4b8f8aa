package lxc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzOpenInRoot opens fuzzed paths in a rootfs full of symlinks that point outside it
// (absolute, relative, through directories, loops): whatever opens must really be inside
// the rootfs, for reading and for creating.
func FuzzOpenInRoot(f *testing.F) {
	for _, p := range []string{"/etc/hosts", "../secret", "/abs", "/rel", "/dir/../../secret", "/updir/secret",
		"/loop", "/inside/hosts", "etc/../../../secret", "/proc/self/root/secret", "/abs/x", "/."} {
		f.Add(p, false)
		f.Add(p, true)
	}
	base := f.TempDir()
	root := filepath.Join(base, "rootfs")
	secret := filepath.Join(base, "secret")
	if err := os.WriteFile(secret, []byte("host only"), 0o600); err != nil {
		f.Fatal(err)
	}
	for _, d := range []string{"etc", "tmp", "proc/self"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/hosts"), []byte("inside"), 0o644); err != nil {
		f.Fatal(err)
	}
	for link, target := range map[string]string{
		"abs": secret, "rel": "../../../../../../.." + secret, "updir": "..", "dir": base,
		"loop": "loop", "inside": "/etc", "proc/self/root": "/",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			f.Fatal(err)
		}
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, path string, create bool) {
		flags := unix.O_RDONLY
		if create {
			flags = unix.O_WRONLY | unix.O_CREAT
		}
		fh, err := OpenInRoot(root, path, flags, 0o600)
		if err != nil {
			return
		}
		defer fh.Close()
		where, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fh.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		if where != realRoot && !strings.HasPrefix(where, realRoot+"/") {
			t.Fatalf("OpenInRoot(%q, create=%v) opened %s, outside the rootfs %s", path, create, where, realRoot)
		}
		if create && where != filepath.Join(realRoot, "etc/hosts") {
			_ = os.Remove(where) // keep the tree as it was for the next input
		}
	})
}
