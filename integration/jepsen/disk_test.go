package jepsen

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"
)

// Small disks: with smallDisks, every member's database directory is a small ext4
// filesystem on a loop device, mounted inside the member's mount namespace, so that the
// nemesis can fill it (disk-full-leader) and free it again.

// smallDiskSize is the size of a member's database filesystem (a sparse image, mounted
// with discard, filled with fallocate: its size costs nothing). raft-wal preallocates each
// log segment (8 MiB, nodeagent/store) and creates one after every truncation of the log's
// suffix; with its default 64 MiB segments a member of a 30-minute soak ran out of 1 GiB.
const smallDiskSize = "1G"

// fillFile is the file the nemesis fills a member's database filesystem with.
const fillFile = agentDir + "/database/jepsen-fill"

// mountSmallDisks makes and mounts a member's database filesystem on every member and
// unmounts them when the test ends (after the agents are killed).
func (c *cluster) mountSmallDisks() {
	c.t.Helper()
	for _, m := range c.members {
		img, ok := m.host.Path(agentDir + "/database.img")
		if !ok {
			c.t.Fatalf("%s: %s is not a host mount", m.name, agentDir)
		}
		if err := os.MkdirAll(img[:len(img)-len("/database.img")], 0o755); err != nil {
			c.t.Fatal(err)
		}
		if out, err := exec.Command("sh", "-c", fmt.Sprintf("truncate -s %s %s && mkfs.ext4 -q -F -m 0 %s", smallDiskSize, img, img)).CombinedOutput(); err != nil {
			c.t.Fatalf("%s: making its database filesystem: %v %s", m.name, err, out)
		}
		m.exec(c.t, fmt.Sprintf("mkdir -p %[1]s/database && mount -o loop,discard %[1]s/database.img %[1]s/database", agentDir))
		c.t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if out, err := m.host.Exec(ctx, "umount", agentDir+"/database"); err != nil {
				c.t.Logf("%s: unmounting its database filesystem: %v %s", m.name, err, out)
			}
		})
	}
}

// exec runs a shell script inside m's host and fails the test when it fails.
func (m *member) exec(t interface {
	Helper()
	Fatalf(string, ...any)
}, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := m.host.Exec(ctx, "sh", "-c", script)
	if err != nil {
		t.Fatalf("%s: %s: %v %s", m.name, script, err, out)
	}
	return string(out)
}

// fillDisk fills m's database filesystem: fallocate takes what df says is free, dd the
// rest (its ENOSPC is expected).
func (m *member) fillDisk(t interface {
	Helper()
	Fatalf(string, ...any)
}) {
	t.Helper()
	m.exec(t, fmt.Sprintf("fallocate -l $(df --output=avail -B1 %[1]s/database | tail -1) %[2]s; dd if=/dev/zero of=%[2]s.rest bs=4k 2>/dev/null; true", agentDir, fillFile))
	m.mu.Lock()
	m.filled = true
	m.mu.Unlock()
}

// freeDisk removes the fill file; it reports whether there was one.
func (m *member) freeDisk() bool {
	m.mu.Lock()
	filled := m.filled
	m.filled = false
	m.mu.Unlock()
	if !filled {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = m.host.Exec(ctx, "rm", "-f", fillFile, fillFile+".rest")
	return true
}
