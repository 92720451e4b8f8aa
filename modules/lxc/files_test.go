package lxc

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestInsidePath(t *testing.T) {
	ok := map[string]string{
		"/etc/hosts": "etc/hosts", "etc/hosts": "etc/hosts", "/a/../b": "b", "/": ".",
		"./a//b/": "a/b",
	}
	for in, want := range ok {
		got, err := insidePath(in)
		if err != nil || got != want {
			t.Errorf("insidePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"../etc/passwd", "/a/../../etc", "..", "/.."} {
		if _, err := insidePath(in); !errors.Is(err, ErrPathEscapes) {
			t.Errorf("insidePath(%q) err = %v, want ErrPathEscapes", in, err)
		}
	}
}

// TestOpenInRootSymlinks checks that symlinks inside a rootfs resolve inside it, whether
// absolute or climbing with "..", so a container cannot point a path at the host.
func TestOpenInRootSymlinks(t *testing.T) {
	host := t.TempDir()
	secret := filepath.Join(host, "secret")
	must(t, os.WriteFile(secret, []byte("host secret"), 0o600))
	root := filepath.Join(host, "rootfs")
	must(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "etc", "hosts"), []byte("inside"), 0o644))
	must(t, os.Symlink(secret, filepath.Join(root, "abs")))
	must(t, os.Symlink("../../../../../../../../"+secret, filepath.Join(root, "etc", "rel")))
	must(t, os.Symlink("/etc/hosts", filepath.Join(root, "hostslink")))

	for _, p := range []string{"/abs", "etc/rel"} {
		f, err := OpenInRoot(root, p, unix.O_RDONLY, 0)
		if err == nil {
			f.Close()
			t.Fatalf("OpenInRoot(%s) reached %s outside the rootfs", p, secret)
		}
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("OpenInRoot(%s) = %v, want not exist", p, err)
		}
	}
	// Writing through the symlinks creates files inside the rootfs, never on the host.
	f, err := OpenInRoot(root, "/abs", unix.O_WRONLY|unix.O_CREAT, 0o644)
	if err == nil {
		f.Close()
		b, _ := os.ReadFile(secret)
		if string(b) != "host secret" {
			t.Fatalf("host file changed")
		}
	}
	f, err = OpenInRoot(root, "/hostslink", unix.O_RDONLY, 0)
	if err != nil {
		t.Fatalf("absolute symlink inside rootfs: %v", err)
	}
	defer f.Close()
	b := make([]byte, 16)
	n, _ := f.Read(b)
	if string(b[:n]) != "inside" {
		t.Fatalf("/hostslink read %q, want the rootfs's /etc/hosts", b[:n])
	}
}

func TestParseInfo(t *testing.T) {
	in, err := parseInfo("c1", "State:          RUNNING\nPID:            11457\nIP:             10.99.0.10\nIP:             fd42::5\nIP:             127.0.0.1\n")
	if err != nil {
		t.Fatal(err)
	}
	if in.State != StateRunning || in.PID != 11457 || len(in.IPv4) != 1 || in.IPv4[0] != "10.99.0.10" || len(in.IPv6) != 1 {
		t.Fatalf("parseInfo = %+v", in)
	}
	if _, err := parseInfo("c1", "garbage"); err == nil {
		t.Fatal("parseInfo accepted output without a state")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Directories below a root: make (twice: the second leaves it), open and list, remove;
// a path climbing out of the root is refused.
func TestDirsInRoot(t *testing.T) {
	root := t.TempDir()
	opts := PushOptions{Mode: 0o750, UID: os.Getuid(), GID: os.Getgid()}
	for range 2 {
		if err := MkdirInRoot(root, "/a", opts); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "a", "f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := OpenEntryInRoot(root, "/a")
	if err != nil {
		t.Fatal(err)
	}
	names, err := e.Names()
	e.File.Close()
	if err != nil || !e.Dir || e.Info.Mode != 0o750 || len(names) != 1 || names[0] != "f" {
		t.Fatalf("entry %+v names %v err %v", e, names, err)
	}
	if f, err := OpenEntryInRoot(root, "a/f"); err != nil || f.Dir || f.Info.Size != 1 {
		t.Fatalf("file entry %+v err %v", f, err)
	} else {
		f.File.Close()
	}
	if err := RemoveInRoot(root, "/a"); err == nil {
		t.Fatal("removed a non-empty directory")
	}
	for _, p := range []string{"/a/f", "/a"} {
		if err := RemoveInRoot(root, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "a")); !os.IsNotExist(err) {
		t.Fatalf("a still there: %v", err)
	}
	if err := MkdirInRoot(root, "../../x", opts); !errors.Is(err, ErrPathEscapes) {
		t.Fatalf("mkdir ../../x: %v", err)
	}
}
