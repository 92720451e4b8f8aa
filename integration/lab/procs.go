package lab

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"orch/internal/wait"

	"golang.org/x/sys/unix"
)

// killTimeout bounds how long killing a host's processes may take.
const killTimeout = 15 * time.Second

// proc is one line of the process table.
type proc struct {
	pid, ppid int
	state     byte   // 'Z' for a zombie
	comm      string // command name
	start     uint64 // start time in clock ticks after boot
	flags     uint64 // the kernel's PF_* flags
}

// pfExiting is the kernel's PF_EXITING: the process is in exit and never runs its own code
// again (its namespaces are already released: it is no longer found in the host's network
// namespace), though the kernel may take a while to make it a zombie.
const pfExiting = 0x4

// dead reports whether p is a zombie or in exit.
func (p proc) dead() bool { return p.state == 'Z' || p.flags&pfExiting != 0 }

// processTable reads /proc/*/stat. Processes that vanish while it reads are skipped.
func processTable() (map[int]proc, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("reading /proc: %w", err)
	}
	table := make(map[int]proc, len(entries))
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readProc(pid); ok {
			table[pid] = p
		}
	}
	return table, nil
}

// readProc parses /proc/PID/stat: "pid (comm) S ppid ...", where comm may hold spaces and
// parentheses, so the fields are found after the last ')'.
func readProc(pid int) (proc, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return proc{}, false
	}
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return proc{}, false
	}
	f := strings.Fields(string(b[end+1:])) // f[0] is field 3 of proc(5)
	if len(f) < 20 {
		return proc{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	flags, _ := strconv.ParseUint(f[6], 10, 64)
	start, _ := strconv.ParseUint(f[19], 10, 64)
	return proc{pid: pid, ppid: ppid, state: f[0][0], comm: string(b[open+1 : end]), start: start, flags: flags}, true
}

// withDescendants adds every live descendant of roots (by parent PID) and drops zombies,
// init and this process (and what descends only through them).
// It catches what left the host's namespaces, such as an LXC container's init.
func withDescendants(roots []int, table map[int]proc) []int {
	children := map[int][]int{}
	for _, p := range table {
		children[p.ppid] = append(children[p.ppid], p.pid)
	}
	seen := map[int]bool{}
	queue := append([]int(nil), roots...)
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] || pid == 1 || pid == os.Getpid() {
			continue // never init or this process, nor their children
		}
		seen[pid] = true
		queue = append(queue, children[pid]...)
	}
	var out []int
	for pid := range seen {
		if p, ok := table[pid]; ok && p.state != 'Z' {
			out = append(out, pid)
		}
	}
	slices.Sort(out)
	return out
}

// netnsMembers returns the PIDs of the processes inside the named network namespace (what
// `ip netns pids` prints). A namespace that does not exist has no members.
func netnsMembers(name string) ([]int, error) {
	var want unix.Stat_t
	if err := unix.Stat(filepath.Join(netnsDir, name), &want); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, nil
		}
		return nil, fmt.Errorf("netns %s: %w", name, err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("reading /proc: %w", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+e.Name()+"/ns/net", &st) == nil && st.Dev == want.Dev && st.Ino == want.Ino {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// killAll sends SIGKILL to what find returns, plus descendants, until nothing is left
// (processes may fork while being killed) or killTimeout passes. It also waits for every
// process it signalled to be dead (gone, a zombie or in exit): an LXC container's init is
// found only as its monitor's child, and once the monitor is dead it is nobody's
// descendant here (its own network namespace and cgroup); the host was reported killed
// with that init not yet dying (TestLXCContainerDiesWithHost, under load).
// Processes in seed (found before, as the host's members were) are killed and waited
// for too.
func killAll(what string, find func() ([]int, error), seed ...int) error {
	signalled := map[int]uint64{} // pid -> start time, so that a reused PID is not waited for
	for _, pid := range seed {
		if p, ok := readProc(pid); ok {
			signalled[pid] = p.start
		}
	}
	// Poll every 5ms while the kernel tears processes down.
	return wait.UntilEvery(killTimeout, 5*time.Millisecond, func() error {
		pids, table, err := findLive(find)
		if err != nil {
			return wait.Stop(fmt.Errorf("%s: %w", what, err))
		}
		for pid, start := range signalled {
			if p, ok := readProc(pid); ok && p.start == start && !p.dead() && !slices.Contains(pids, pid) {
				pids = append(pids, pid)
				if table == nil {
					table = map[int]proc{}
				}
				table[pid] = p
			}
		}
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			if _, ok := signalled[pid]; !ok {
				signalled[pid] = table[pid].start
			}
			_ = syscall.Kill(pid, syscall.SIGKILL) // ESRCH: already gone
		}
		return fmt.Errorf("%s: processes still alive after %s: %s", what, killTimeout, describe(pids, table))
	})
}

func findLive(find func() ([]int, error)) ([]int, map[int]proc, error) {
	roots, err := find()
	if err != nil || len(roots) == 0 {
		return nil, nil, err
	}
	table, err := processTable()
	if err != nil {
		return nil, nil, err
	}
	return withDescendants(roots, table), table, nil
}

func describe(pids []int, table map[int]proc) string {
	var parts []string
	for _, pid := range pids {
		parts = append(parts, fmt.Sprintf("%d(%s)", pid, table[pid].comm))
	}
	return strings.Join(parts, " ")
}

// listening reports (as nil) whether a TCP socket listens on port in pid's network
// namespace, from /proc/PID/net/tcp: "sl local_address(hexIP:hexPort) rem_address st ...",
// where st 0A is LISTEN.
func listening(pid, port int) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return err
	}
	suffix := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 3 && strings.HasSuffix(f[1], suffix) && f[3] == "0A" {
			return nil
		}
	}
	return fmt.Errorf("nothing listens on port %d", port)
}
