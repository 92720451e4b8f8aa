package storage

import (
	"context"
	"os"
	"path/filepath"
	"strings"
)

// mounted reports whether path is a mount point (from /proc/self/mountinfo).
func mounted(path string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	path = filepath.Clean(path)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && unescapeMount(f[4]) == path {
			return true
		}
	}
	return false
}

// unescapeMount undoes mountinfo's octal escapes of space, tab, newline and backslash.
func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

// unmount unmounts path (every stacked mount) if mounted, then removes the directory.
func (r runner) unmount(ctx context.Context, path string) error {
	for i := 0; i < 8 && mounted(path); i++ {
		if _, err := r.run(ctx, "umount", path); err != nil {
			return err
		}
	}
	return ignoreNotExist(os.Remove(path))
}
