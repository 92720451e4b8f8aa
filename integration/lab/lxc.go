package lab

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"orch/internal/wait"
	"orch/modules/lxc"
)

// lxcCgroupPrefixes start the names of the cgroups LXC makes for a container, at the top
// of each hierarchy. LXC's monitor removes them when the container stops; killing a host
// kills the monitor too, so the lab removes them instead.
var lxcCgroupPrefixes = []string{"lxc.monitor.", "lxc.payload."}

// lxcCgroups returns the LXC container cgroups (paths relative to a hierarchy's root, such
// as /lxc.payload.c1) that any of pids runs in.
func lxcCgroups(pids []int) []string {
	set := map[string]bool{}
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.SplitN(line, ":", 3); len(f) == 3 {
				if p := lxcTop(f[2]); p != "" {
					set[p] = true
				}
			}
		}
	}
	var out []string
	for p := range set {
		out = append(out, p)
	}
	return out
}

// lxcTop cuts a cgroup path after its first LXC container element, or returns "".
func lxcTop(p string) string {
	elems := strings.Split(p, "/")
	for i, e := range elems {
		for _, prefix := range lxcCgroupPrefixes {
			if strings.HasPrefix(e, prefix) {
				return strings.Join(elems[:i+1], "/")
			}
		}
	}
	return ""
}

// removeLXCCgroups removes the given LXC cgroups from every cgroup hierarchy (v1 and v2)
// once their processes are gone. Best effort: a cgroup still in use stays.
func removeLXCCgroups(rel []string) {
	if len(rel) == 0 {
		return
	}
	for _, mount := range lxc.CgroupMounts() {
		for _, r := range rel {
			cg := cgroup(filepath.Join(mount, r))
			_ = wait.UntilEvery(2*time.Second, 5*time.Millisecond, cg.removeOnce) // while killed processes exit
		}
	}
}
