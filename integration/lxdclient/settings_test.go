package lxdclient

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// A container's limits as its cgroups on the host hold them (cgroup v1 controller and file,
// cgroup v2 file).
var (
	memoryLimit = cgroupFile{"memory", "memory.limit_in_bytes", "memory.max"}
	pidsLimit   = cgroupFile{"pids", "pids.max", "pids.max"}
	cpuset      = cgroupFile{"cpuset", "cpuset.cpus", "cpuset.cpus"}
)

// cgroupFile is one limit's file under cgroup v1 (controller, v1) and v2.
type cgroupFile struct{ controller, v1, v2 string }

// read is the file's content for the process pid (the container's init, seen from the host).
func (f cgroupFile) read(pid string) (string, error) {
	b, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var path string
		switch {
		case slices.Contains(strings.Split(parts[1], ","), f.controller):
			path = filepath.Join("/sys/fs/cgroup", f.controller, parts[2], f.v1)
		case parts[0] == "0" && parts[1] == "" && !hasV1(string(b), f.controller):
			path = filepath.Join("/sys/fs/cgroup", parts[2], f.v2)
		default:
			continue
		}
		v, err := os.ReadFile(path)
		return strings.TrimSpace(string(v)), err
	}
	return "", fmt.Errorf("pid %s: no %s cgroup", pid, f.controller)
}

// hasV1 reports whether a /proc/PID/cgroup content lists controller in a v1 hierarchy.
func hasV1(procCgroup, controller string) bool {
	for _, line := range strings.Split(procCgroup, "\n") {
		if parts := strings.SplitN(line, ":", 3); len(parts) == 3 && slices.Contains(strings.Split(parts[1], ","), controller) {
			return true
		}
	}
	return false
}

// pidRE finds init's PID in `lxc info`.
var pidRE = regexp.MustCompile(`(?m)^PID: (\d+)$`)

// TestInstanceSettingsWithLXC changes a running container's limits with the real lxc
// client through a member that does not own it (the owner applies them at once: the
// container's cgroups show them), adds a profile that carries a limit, changes that
// profile (the change reaches the container), and adds a profile with a disk device: given
// to the running container at once, taken away with the profile; a further interface is
// given at once too (one on a missing bridge refused, nothing recorded); the instance's own
// disks (a host path, an attached custom volume) are given live, and deleting the
// instance leaves their sources alone. Bad values are refused naming the key, changing
// nothing.
func TestInstanceSettingsWithLXC(t *testing.T) {
	NeedLXC(t)
	ms := instanceCluster(t)
	ms[0].MustRun("launch", "busybox", "c1", "--target", "node2")
	c := NewLXC(t)
	c.AddRemoteTrusted("orch", ms[0])
	inside := func(cmd string) string {
		t.Helper()
		return strings.TrimSpace(c.MustRun("exec", "c1", "--", "sh", "-c", cmd))
	}
	limit := func(f cgroupFile) string {
		t.Helper()
		m := pidRE.FindStringSubmatch(c.MustRun("info", "c1"))
		if m == nil {
			t.Fatal("no PID in lxc info c1")
		}
		v, err := f.read(m[1])
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	c.MustRun("config", "set", "c1", "limits.memory", "128MiB")
	c.MustRun("config", "set", "c1", "limits.processes", "100")
	c.MustRun("config", "set", "c1", "limits.cpu", "1")
	if got := limit(memoryLimit); got != "134217728" {
		t.Fatalf("memory limit inside c1 = %q after limits.memory=128MiB", got)
	}
	if got := limit(pidsLimit); got != "100" {
		t.Fatalf("pids.max inside c1 = %q after limits.processes=100", got)
	}
	if got := limit(cpuset); got != "0" {
		t.Fatalf("cpuset inside c1 = %q after limits.cpu=1", got)
	}
	wantAll(t, "lxc config show c1", c.MustRun("config", "show", "c1"), "limits.memory: 128MiB", `limits.processes: "100"`)

	c.WantFailure([]string{"config", "set", "c1", "limits.memory", "lots"}, "limits.memory", `"lots" is not a size`)
	c.WantFailure([]string{"config", "set", "c1", "limits.cpu", "0-x"}, "limits.cpu")
	c.WantFailure([]string{"config", "set", "c1", "security.nesting", "true"}, `config key "security.nesting" cannot change`)
	if got := limit(memoryLimit); got != "134217728" {
		t.Fatalf("memory limit inside c1 = %q after refused changes", got)
	}

	// A profile's limit applies once the instance has the profile and the instance itself
	// no longer sets it; a change of the profile reaches the running container.
	c.MustRun("config", "unset", "c1", "limits.memory")
	if got := limit(memoryLimit); got == "134217728" {
		t.Fatalf("memory limit inside c1 still %s after unset", got)
	}
	c.MustRun("profile", "create", "small")
	c.MustRun("profile", "set", "small", "limits.memory", "96MiB")
	c.MustRun("profile", "add", "c1", "small")
	if got := limit(memoryLimit); got != "100663296" {
		t.Fatalf("memory limit inside c1 = %q after adding profile small (96MiB)", got)
	}
	c.MustRun("profile", "set", "small", "limits.memory", "80MiB")
	if got := limit(memoryLimit); got != "83886080" {
		t.Fatalf("memory limit inside c1 = %q after profile small set to 80MiB", got)
	}
	c.WantFailure([]string{"profile", "set", "small", "limits.memory", "1KB"}, "limits.memory", "below 4MiB")
	c.WantFailure([]string{"profile", "delete", "small"}, "c1")

	// Devices: a disk from a profile, given to the running container at once (hotplug) and
	// taken away when the profile is removed; a further interface given at once too, and
	// again after a restart; one on a bridge the owner lacks is refused, nothing recorded.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.MustRun("profile", "create", "data")
	c.MustRun("profile", "device", "add", "data", "data", "disk", "source="+dir, "path=/srv/data", "readonly=true")
	c.MustRun("profile", "add", "c1", "data")
	if got := inside("cat /srv/data/hello; touch /srv/data/x 2>/dev/null && echo writable || true"); got != "from the host" {
		t.Fatalf("/srv/data inside the running c1 after profile add data = %q", got)
	}
	c.MustRun("profile", "remove", "c1", "data")
	if got := inside("grep -c ' /srv/data ' /proc/self/mountinfo || true"); got != "0" {
		t.Fatalf("/srv/data still mounted after the profile was removed: %q", got)
	}
	bridge := eth0Parent(t, c.MustRun("profile", "show", "default"))
	c.MustRun("config", "device", "add", "c1", "eth1", "nic", "parent="+bridge, "name=eth1")
	if got := inside("ip -o link show eth1 | grep -c 'eth1.*UP'"); got != "1" {
		t.Fatalf("eth1 inside the running c1 after device add: %q", got)
	}
	c.WantFailure([]string{"config", "device", "add", "c1", "eth2", "nic", "parent=nosuchbr0", "name=eth2"}, "nosuchbr0", "does not exist on member node2")
	if out := c.MustRun("config", "show", "c1"); strings.Contains(out, "eth2") {
		t.Fatalf("a refused device add was recorded:\n%s", out)
	}
	c.MustRun("restart", "c1", "--force")
	if got := inside("ip -o link show eth1 | grep -c eth1"); got != "1" {
		t.Fatalf("eth1 inside c1 after a restart: %q", got)
	}
	if got := limit(memoryLimit); got != "83886080" {
		t.Fatalf("memory limit inside c1 = %q after a restart", got)
	}

	// The instance's own disks, live: a host directory and a custom volume (lxc storage
	// volume attach); an attached volume lists c1 in used_by and cannot be deleted until
	// detached; eth0 cannot be overridden; a bad device is refused naming it.
	c.MustRun("storage", "volume", "create", "default", "vol1", "--target", "node2")
	c.MustRun("config", "device", "add", "c1", "more", "disk", "source="+dir, "path=/srv/more")
	c.MustRun("storage", "volume", "attach", "default", "vol1", "c1", "/srv/vol")
	c.WantFailure([]string{"config", "device", "add", "c1", "bad", "disk", "source=relative", "path=/srv/bad"}, "device bad", "not an absolute host path")
	c.WantFailure([]string{"config", "device", "override", "c1", "eth0", "hwaddr=00:16:3e:00:00:01"}, "eth0")
	if got := inside("cat /srv/more/hello; echo kept > /srv/vol/f; cat /srv/vol/f"); got != "from the host\nkept" {
		t.Fatalf("inside c1 with its own devices: %q", got)
	}
	wantAll(t, "lxc config show c1", c.MustRun("config", "show", "c1"), "more:", "source: "+dir, "vol1")
	wantAll(t, "lxc storage volume show", c.MustRun("storage", "volume", "show", "default", "vol1", "--target", "node2"), "used_by:", "- /1.0/instances/c1")
	c.WantFailure([]string{"storage", "volume", "delete", "default", "vol1", "--target", "node2"}, "in use", "/1.0/instances/c1")
	c.MustRun("storage", "volume", "detach", "default", "vol1", "c1")
	c.MustRun("config", "device", "remove", "c1", "more")
	c.MustRun("storage", "volume", "delete", "default", "vol1", "--target", "node2")
	if got := inside("grep -cE ' /srv/(vol|more) ' /proc/self/mountinfo || true"); got != "0" {
		t.Fatalf("devices still mounted after detach and remove: %q", got)
	}
	c.MustRun("delete", "c1", "--force")
	if _, err := os.Stat(filepath.Join(dir, "hello")); err != nil {
		t.Fatalf("deleting c1 reached a disk's source: %v", err)
	}
}

// eth0Parent is the parent bridge of eth0 in `lxc profile show default`.
func eth0Parent(t *testing.T, profile string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s+parent: (\S+)$`).FindStringSubmatch(profile)
	if m == nil {
		t.Fatalf("no eth0 parent in the default profile:\n%s", profile)
	}
	return m[1]
}
