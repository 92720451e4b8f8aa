package lxc

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// A container whose start failed (or whose monitor was killed) can leave its cgroups
// behind, and LXC then refuses every later start of that name ("Failed to create monitor
// cgroup"). Before starting a stopped container, and after a failed start or a delete,
// the Manager removes the container's own cgroups (lxc.monitor.PREFIX-NAME and
// lxc.payload.PREFIX-NAME, see render) when they hold no process: rmdir refuses a cgroup
// in use, so a running container is never touched.

// cgroupNames are the names of the container's cgroups, as render configures them.
func (m *Manager) cgroupNames(name string) []string {
	cg := sanitize(m.cfg.CgroupPrefix) + "-" + name
	return []string{"lxc.monitor." + cg, "lxc.payload." + cg}
}

// removeStaleCgroups removes the container's empty cgroups from every hierarchy, at its
// root and under this process's own cgroup (where LXC makes them). Best effort.
func (m *Manager) removeStaleCgroups(name string) {
	for _, mount := range CgroupMounts() {
		for _, parent := range selfCgroups() {
			for _, cg := range m.cgroupNames(name) {
				dir := filepath.Join(mount, parent, cg)
				if _, err := os.Stat(dir); err == nil {
					removeTree(dir)
					m.log.Debug("stale cgroup", "container", name, "cgroup", dir, "removed", !exists(dir))
				}
			}
		}
	}
}

// removeStaleCgroupsWait is removeStaleCgroups after a failed start: the dying monitor
// may still be in its cgroup for a moment, so it retries until the cgroups are gone or a
// few seconds have passed.
func (m *Manager) removeStaleCgroupsWait(name string) {
	deadline := time.Now().Add(3 * time.Second)
	for {
		m.removeStaleCgroups(name)
		if !m.hasCgroups(name) || time.Now().After(deadline) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hasCgroups reports whether any of the container's cgroups exists.
func (m *Manager) hasCgroups(name string) bool {
	for _, mount := range CgroupMounts() {
		for _, parent := range selfCgroups() {
			for _, cg := range m.cgroupNames(name) {
				if exists(filepath.Join(mount, parent, cg)) {
					return true
				}
			}
		}
	}
	return false
}

// removeTree removes the cgroup dir after its child cgroups, deepest first.
func removeTree(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			removeTree(filepath.Join(dir, e.Name()))
		}
	}
	_ = os.Remove(dir)
}

// CgroupMounts lists the mount points of every cgroup hierarchy (v1 and v2).
func CgroupMounts() []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		for i, x := range f {
			if x == "-" && i > 4 && i+1 < len(f) && (f[i+1] == "cgroup" || f[i+1] == "cgroup2") {
				out = append(out, f[4])
			}
		}
	}
	return out
}

// selfCgroups are "/" and the distinct cgroup paths of this process (/proc/self/cgroup).
func selfCgroups() []string {
	out := []string{"/"}
	b, _ := os.ReadFile("/proc/self/cgroup")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.SplitN(line, ":", 3); len(f) == 3 && f[2] != "/" && !slices.Contains(out, f[2]) {
			out = append(out, f[2])
		}
	}
	return out
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
