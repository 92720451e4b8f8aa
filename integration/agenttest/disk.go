package agenttest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// MountSmallDisk mounts a fresh ext4 filesystem of mib MiB, on a loop file, over a's agent
// directory (call it before the daemon starts), so that a test can fill the member's disk.
// The test is skipped without root or the tools. Cleanup kills the daemon, then unmounts.
func MountSmallDisk(tb testing.TB, a *Agent, mib int64) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root to mount a loop filesystem")
	}
	for _, tool := range []string{"mkfs.ext4", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Skipf("needs %s (apt-get install e2fsprogs mount)", tool)
		}
	}
	img := filepath.Join(tb.TempDir(), "disk.img")
	f, err := os.Create(img)
	if err == nil {
		err = errors.Join(f.Truncate(mib<<20), f.Close())
	}
	if err != nil {
		tb.Fatalf("%s: creating %s: %v", a.Name, img, err)
	}
	run := func(name string, args ...string) {
		tb.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			tb.Fatalf("%s: %s %s: %v\n%s", a.Name, name, strings.Join(args, " "), err, out)
		}
	}
	run("mkfs.ext4", "-q", "-F", img)
	run("mount", "-o", "loop", img, a.Dir)
	tb.Cleanup(func() {
		a.KillQuietly()
		if out, err := exec.Command("umount", a.Dir).CombinedOutput(); err != nil {
			tb.Logf("%s: umount %s: %v: %s", a.Name, a.Dir, err, out)
			_ = exec.Command("umount", "-l", a.Dir).Run()
		}
	})
	if err := os.Chmod(a.Dir, 0o700); err != nil {
		tb.Fatal(err)
	}
}
