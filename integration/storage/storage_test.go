package storage

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// needBtrfs skips unless the test runs as root with btrfs-progs and a btrfs-capable kernel.
func needBtrfs(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (loop devices, mounts)")
	}
	for _, tool := range []string{"mkfs.btrfs", "btrfs", "losetup"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install btrfs-progs", tool)
		}
	}
	if b, _ := os.ReadFile("/proc/filesystems"); !strings.Contains(string(b), "btrfs") {
		t.Skip("the kernel has no btrfs (modprobe btrfs)")
	}
}

// cleanupMounts unmounts everything below dir and detaches loop devices of files below it
// when the test ends, before the agent directory is removed (even on failure).
func cleanupMounts(t *testing.T, dir string) {
	t.Cleanup(func() {
		for _, mp := range mountsBelow(dir) {
			_ = exec.Command("umount", "-l", mp).Run()
		}
		out, _ := exec.Command("losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE").Output()
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) == 2 && strings.HasPrefix(f[1], dir) {
				_ = exec.Command("losetup", "--detach", f[0]).Run()
			}
		}
	})
}

// mountsBelow lists the mount points below dir, deepest first.
func mountsBelow(dir string) []string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			out = append([]string{f[4]}, out...)
		}
	}
	return out
}

func loopsBelow(dir string) []string {
	out, _ := exec.Command("losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE").Output()
	var devs []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 2 && strings.HasPrefix(f[1], dir) {
			devs = append(devs, f[0])
		}
	}
	return devs
}

// cluster3 forms a 3-member cluster whose bootstrap preseed declares a dir pool "local".
func cluster3(t *testing.T) []*agenttest.Agent {
	t.Helper()
	as := make([]*agenttest.Agent, 3)
	for i := range as {
		as[i] = agenttest.Start(t, fmt.Sprintf("m%d", i+1), agenttest.NewAddr(t))
		cleanupMounts(t, as[i].Dir)
	}
	agenttest.Bootstrap(t, as[0], api.Preseed{StoragePools: []api.StoragePool{{Name: "local", Driver: "dir"}}})
	agenttest.JoinWithToken(t, as[0], as[1])
	agenttest.JoinWithToken(t, as[0], as[2])
	return as
}

func pools(t *testing.T, a *agenttest.Agent) map[string]api.StoragePoolInfo {
	t.Helper()
	var ps []api.StoragePoolInfo
	if err := json.Unmarshal([]byte(a.MustRun("storage", "list", "--format", "json")), &ps); err != nil {
		t.Fatal(err)
	}
	out := map[string]api.StoragePoolInfo{}
	for _, p := range ps {
		out[p.Name] = p
	}
	return out
}

// wantFail is agenttest.WantFailure that also refuses an error saying a prefix twice.
func wantFail(t *testing.T, r agenttest.Result, substrings ...string) {
	t.Helper()
	agenttest.WantFailure(t, r, substrings...)
	if rep := repeatedPrefix(r.Stderr); rep != "" {
		t.Fatalf("error %q says %q twice in a row", strings.TrimSpace(r.Stderr), rep)
	}
}

// repeatedPrefix finds a "X: X: " stutter (as "member m2: m2: ..." was) and returns X.
func repeatedPrefix(msg string) string {
	parts := strings.Split(msg, ": ")
	for i := 1; i < len(parts)-1; i++ {
		prev := parts[i-1]
		if j := strings.LastIndexAny(prev, " ;("); j >= 0 {
			prev = prev[j+1:]
		}
		if parts[i] != "" && parts[i] == prev {
			return parts[i]
		}
	}
	return ""
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestPendingToCreated: a preseed's dir pool is Created on all three members; a btrfs pool
// on loop files is defined per member (--target), refused while one definition is missing,
// then created everywhere; volumes with the same name on two members need --target; a
// member holding volumes cannot be removed; deletion leaves no subvolume, mount, loop
// device or file.
func TestPendingToCreated(t *testing.T) {
	needBtrfs(t)
	as := cluster3(t)
	m1, m2, m3 := as[0], as[1], as[2]

	wait.For(t, 20*time.Second, "preseed pool created on every member", func() error {
		p := pools(t, m2)["local"]
		if p.Status != api.StatusCreated || len(p.Locations) != 3 {
			return fmt.Errorf("local = %+v", p)
		}
		for _, a := range as {
			if !exists(filepath.Join(a.Dir, "storage-pools/local/custom")) {
				return fmt.Errorf("%s has no local pool directory", a.Name)
			}
		}
		return nil
	})

	// Definitions: node-specific keys only.
	wantFail(t, m1.Run("storage", "create", "bt", "btrfs", "volume.size=1GiB", "--target", "m1"), `"volume.size" is not node-specific`)
	for _, a := range []*agenttest.Agent{m1, m2} {
		m3.MustRun("storage", "create", "bt", "btrfs", "size=128MiB", "--target", a.Name)
	}
	if p := pools(t, m1)["bt"]; p.Status != api.StatusPending || len(p.Locations) != 2 {
		t.Fatalf("bt after two definitions = %+v", p)
	}
	wantFail(t, m2.Run("storage", "create", "bt", "btrfs"), "not defined on member(s) m3")
	wantFail(t, m2.Run("storage", "create", "bt", "btrfs", "size=1GiB"), `"size" is node-specific`)
	for _, a := range as {
		if len(mountsBelow(a.Dir)) > 0 || len(loopsBelow(a.Dir)) > 0 {
			t.Fatalf("%s: something was made by a refused create", a.Name)
		}
	}
	m1.MustRun("storage", "create", "bt", "btrfs", "size=128MiB", "--target", "m3")
	m2.MustRun("storage", "create", "bt", "btrfs")
	p := pools(t, m3)["bt"]
	if p.Status != api.StatusCreated || strings.Join(p.Locations, ",") != "m1,m2,m3" || p.Driver != "btrfs" {
		t.Fatalf("bt = %+v", p)
	}
	for _, a := range as {
		if mps := mountsBelow(a.Dir); len(mps) != 1 || !strings.HasSuffix(mps[0], "storage-pools/bt") {
			t.Fatalf("%s: mounts %v, want the bt pool", a.Name, mps)
		}
	}
	show := m1.MustRun("storage", "show", "bt", "--target", "m2", "--format", "json")
	var shown api.StoragePoolInfo
	if err := json.Unmarshal([]byte(show), &shown); err != nil || shown.Config["size"] != "128MiB" {
		t.Fatalf("show --target m2 lacks its size: %s", show)
	}

	// A restarted member whose pool is no longer mounted (a reboot) mounts it again.
	m2.Stop()
	for _, mp := range mountsBelow(m2.Dir) {
		if out, err := exec.Command("umount", mp).CombinedOutput(); err != nil {
			t.Fatalf("umount %s: %v %s", mp, err, out)
		}
	}
	m2.Start()
	wait.For(t, 30*time.Second, "m2 remounting bt after a restart", func() error {
		if mps := mountsBelow(m2.Dir); len(mps) != 1 {
			return fmt.Errorf("mounts %v", mps)
		}
		return nil
	})

	volumes(t, as)

	// Deleting the pool leaves nothing anywhere.
	m3.MustRun("storage", "delete", "bt")
	for _, a := range as {
		if len(mountsBelow(a.Dir)) > 0 || len(loopsBelow(a.Dir)) > 0 || exists(filepath.Join(a.Dir, "disks/bt.img")) {
			t.Fatalf("%s: mount, loop device or loop file left after delete", a.Name)
		}
	}
	if _, ok := pools(t, m1)["bt"]; ok {
		t.Fatal("bt still listed")
	}
}

// volumes: same name on two members; --target required; removal refused; clean delete.
func volumes(t *testing.T, as []*agenttest.Agent) {
	m1, m2, m3 := as[0], as[1], as[2]
	m3.MustRun("storage", "volume", "create", "bt", "data", "--target", "m1")
	m3.MustRun("storage", "volume", "create", "bt", "data", "--target", "m2")
	m3.MustRun("storage", "volume", "create", "bt", "solo") // on the member asked: m3
	wantFail(t, m1.Run("storage", "volume", "create", "bt", "data", "--target", "m2"), "already exists")
	wantFail(t, m1.Run("storage", "volume", "show", "bt", "data"), "several members (m1, m2)", "--target")
	var v api.StorageVolume
	if out := m1.MustRun("storage", "volume", "show", "bt", "data", "--target", "m2", "--format", "json"); json.Unmarshal([]byte(out), &v) != nil || v.Location != "m2" {
		t.Fatalf("show --target m2: %s", out)
	}
	list := m2.MustRun("storage", "volume", "list", "bt")
	for _, want := range []string{"data", "m1", "m2", "solo", "m3", "NODE"} {
		if !strings.Contains(list, want) {
			t.Fatalf("volume list lacks %q:\n%s", want, list)
		}
	}
	out, err := exec.Command("btrfs", "subvolume", "list", filepath.Join(m2.Dir, "storage-pools/bt")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "custom/data") {
		t.Fatalf("m2 has no data subvolume: %s %v", out, err)
	}
	wantFail(t, m1.Run("storage", "delete", "bt"), "still holds volumes", "data (on m1)")
	wantFail(t, m1.Run("cluster", "remove", "m2"), "still holds storage volumes", "bt/data")
	wantFail(t, m1.Run("storage", "volume", "delete", "bt", "data"), "--target")
	for _, target := range []string{"m1", "m2"} {
		m3.MustRun("storage", "volume", "delete", "bt", "data", "--target", target)
	}
	m1.MustRun("storage", "volume", "delete", "bt", "solo")
	if exists(filepath.Join(m2.Dir, "storage-pools/bt/custom/data")) || exists(filepath.Join(m3.Dir, "storage-pools/bt/custom/solo")) {
		t.Fatal("subvolume left after volume delete")
	}
}

// TestRefusals: a member whose part fails rolls the others back (Errored, naming it); an
// OFFLINE member refuses the create at once, naming it, with nothing made anywhere.
func TestRefusals(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (loop devices, mounts)")
	}
	as := cluster3(t)
	m1, m3 := as[0], as[2]
	m1.MustRun("config", "set", "cluster.offline_threshold", "3")

	// btrfs source that is not a block device on m2: m1 and m3 roll back.
	needBtrfs(t)
	m1.MustRun("storage", "create", "bad", "btrfs", "size=128MiB", "--target", "m1")
	m1.MustRun("storage", "create", "bad", "btrfs", "source=/nonexistent", "--target", "m2")
	m1.MustRun("storage", "create", "bad", "btrfs", "size=128MiB", "--target", "m3")
	wantFail(t, m3.Run("storage", "create", "bad", "btrfs"), "member m2", "not a block device", "rolled back")
	p := pools(t, m1)["bad"]
	if p.Status != api.StatusErrored || !strings.Contains(p.Message, "m2") {
		t.Fatalf("bad = %+v, want Errored naming m2", p)
	}
	for _, a := range as {
		if len(mountsBelow(a.Dir)) > 0 || len(loopsBelow(a.Dir)) > 0 || exists(filepath.Join(a.Dir, "disks/bad.img")) {
			t.Fatalf("%s: leftovers of a rolled-back create", a.Name)
		}
	}
	m1.MustRun("storage", "delete", "bad")

	// A pool a profile uses cannot be deleted.
	m1.MustRunInput("devices:\n  root:\n    type: disk\n    path: /\n    pool: local\n", "profile", "edit", "default")
	wantFail(t, m1.Run("storage", "delete", "local"), "in use by profile(s) default")

	// lvm on a kernel without device-mapper: every member refuses, naming what is missing.
	if b, _ := os.ReadFile("/proc/misc"); !strings.Contains(string(b), "device-mapper") {
		for _, a := range as {
			m1.MustRun("storage", "create", "lv", "lvm", "--target", a.Name)
		}
		wantFail(t, m1.Run("storage", "create", "lv", "lvm"), "device-mapper")
		if p := pools(t, m3)["lv"]; p.Status != api.StatusErrored || !strings.Contains(p.Message, "device-mapper") {
			t.Fatalf("lv = %+v, want Errored naming device-mapper", p)
		}
		m1.MustRun("storage", "delete", "lv")
	}

	// An OFFLINE member.
	for _, a := range as {
		m1.MustRun("storage", "create", "d2", "dir", "--target", a.Name)
	}
	m3.Kill()
	wait.For(t, 30*time.Second, "m3 OFFLINE", func() error {
		out := m1.MustRun("cluster", "list", "--format", "json")
		var ms []api.ClusterMember
		_ = json.Unmarshal([]byte(out), &ms)
		for _, m := range ms {
			if m.ServerName == "m3" && m.Status == "Offline" {
				return nil
			}
		}
		return fmt.Errorf("members: %s", out)
	})
	wantFail(t, m1.Run("storage", "create", "d2", "dir"), "m3", "offline", "nothing was created")
	if p := pools(t, m1)["d2"]; p.Status != api.StatusPending {
		t.Fatalf("d2 = %+v, want Pending", p)
	}
	for _, a := range as[:2] {
		if exists(filepath.Join(a.Dir, "storage-pools/d2")) {
			t.Fatalf("%s: d2 made although m3 is offline", a.Name)
		}
	}
}
