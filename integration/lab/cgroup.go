package lab

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"orch/internal/wait"
)

// cgroup is the path of a cgroup v2 directory; "" means cgroup v2 is not available, and
// every operation is then a no-op (processes are still found through the network namespace).
// Each host runs in its own cgroup so that Kill catches daemons that double-forked and
// Pause can freeze the whole host at once.
type cgroup string

// cgroup2Mount returns where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup on a
// unified system, /sys/fs/cgroup/unified on a hybrid one), or "".
func cgroup2Mount() string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		sep := slices.Index(fields, "-")
		if sep > 4 && sep+1 < len(fields) && fields[sep+1] == "cgroup2" {
			return fields[4]
		}
	}
	return ""
}

// newCgroup creates (if needed) the cgroup at path elems below the cgroup v2 mount.
func newCgroup(elems ...string) (cgroup, error) {
	root := cgroup2Mount()
	if root == "" {
		return "", nil
	}
	p := filepath.Join(append([]string{root}, elems...)...)
	if err := os.MkdirAll(p, 0o755); err != nil {
		return "", fmt.Errorf("cgroup %s: %w", p, err)
	}
	return cgroup(p), nil
}

// child creates the sub-cgroup name.
func (c cgroup) child(name string) (cgroup, error) {
	if c == "" {
		return "", nil
	}
	p := filepath.Join(string(c), name)
	if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("cgroup %s: %w", p, err)
	}
	return cgroup(p), nil
}

// open returns the cgroup directory for SysProcAttr.CgroupFD, or nil without cgroup v2.
func (c cgroup) open() (*os.File, error) {
	if c == "" {
		return nil, nil
	}
	f, err := os.Open(string(c))
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	return f, nil
}

// procs lists the processes in the cgroup and its descendants.
func (c cgroup) procs() ([]int, error) {
	if c == "" {
		return nil, nil
	}
	var pids []int
	err := filepath.WalkDir(string(c), func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return ignoreNotExist(err)
		}
		b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			return ignoreNotExist(err)
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids, err
}

// kill SIGKILLs every process in the cgroup subtree at once (cgroup.kill, Linux 5.14+).
func (c cgroup) kill() error { return c.write("cgroup.kill", "1") }

// freeze stops (or thaws) every process in the cgroup subtree.
func (c cgroup) freeze(on bool) error {
	if c == "" {
		return ErrNoCgroup
	}
	v := "0"
	if on {
		v = "1"
	}
	return c.write("cgroup.freeze", v)
}

func (c cgroup) write(file, v string) error {
	if c == "" {
		return nil
	}
	err := os.WriteFile(filepath.Join(string(c), file), []byte(v), 0)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cgroup %s: %w", file, err)
	}
	return nil
}

// remove deletes the cgroup subtree, deepest first. Killed processes leave a cgroup
// shortly after the signal, so a busy cgroup is retried until killTimeout.
func (c cgroup) remove() error {
	if c == "" {
		return nil
	}
	return wait.UntilEvery(killTimeout, 5*time.Millisecond, c.removeOnce) // while processes exit
}

func (c cgroup) removeOnce() error {
	var dirs []string
	err := filepath.WalkDir(string(c), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return ignoreNotExist(err)
	})
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", c, err)
	}
	for _, d := range slices.Backward(dirs) {
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cgroup %s: %w", d, err)
		}
	}
	return nil
}

func ignoreNotExist(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// CPUTime is the CPU time every process of every host of the lab has used so far (user
// and system, from the lab cgroup's cpu.stat usage_usec, which keeps what exited processes
// and removed host cgroups used): what hosts cost, apart from the rest of the machine.
func (l *Lab) CPUTime() (time.Duration, error) {
	if l.cg == "" {
		return 0, ErrNoCgroup
	}
	b, err := os.ReadFile(filepath.Join(string(l.cg), "cpu.stat"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
			us, err := strconv.ParseInt(v, 10, 64)
			return time.Duration(us) * time.Microsecond, err
		}
	}
	return 0, fmt.Errorf("%s/cpu.stat: no usage_usec", l.cg)
}
