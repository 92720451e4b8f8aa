package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"orch/internal/wait"

	"github.com/vishvananda/netlink"
)

// SweepGlob matches the directories of every lab made by New and by `make demo`.
const SweepGlob = "/tmp/orch-lab*"

// Purge closes the lab and deletes the files it created in Dir (keys, known_hosts, hosts,
// inventory.ini, host data); Dir itself is removed too if that leaves it empty.
func (l *Lab) Purge() error {
	if err := l.Close(); err != nil {
		return err
	}
	files := []string{"id_ed25519", "id_ed25519.pub", "authorized_keys", "known_hosts", "hosts", "ssh_config", "inventory.ini"}
	for _, hs := range l.st.Hosts {
		files = append(files, hs.Name)
	}
	var err error
	for _, f := range files {
		err = errors.Join(err, os.RemoveAll(filepath.Join(l.st.Dir, f)))
	}
	_ = os.Remove(l.st.Dir) // only if empty
	return err
}

// Sweep removes every lab whose directory matches dirGlob (e.g. SweepGlob) and then any
// network namespace, link, cgroup or NAT table left without a state file whose name starts with
// prefix (which must start with "orl", the prefix of every lab name; "orl" sweeps all).
func Sweep(dirGlob, prefix string, opts ...Option) error {
	if !strings.HasPrefix(prefix, namePrefix) {
		return fmt.Errorf("sweep prefix %q: must start with %q", prefix, namePrefix)
	}
	states, err := filepath.Glob(filepath.Join(dirGlob, stateFile))
	if err != nil {
		return fmt.Errorf("sweep %s: %w", dirGlob, err)
	}
	for _, p := range states {
		err = errors.Join(err, sweepLab(filepath.Dir(p), opts))
	}
	return errors.Join(err, sweepNetns(prefix), sweepLinks(prefix), sweepCgroups(prefix), sweepNAT(prefix))
}

// sweepNAT removes the NAT tables of labs (named like their bridge) left without a lab.
func sweepNAT(prefix string) error {
	var err error
	for name := range natTables() {
		if strings.HasPrefix(name, prefix) {
			err = errors.Join(err, deleteNAT(name))
		}
	}
	return err
}

// SweepOrphans removes the labs under dirGlob that New made for a test process which no
// longer runs (killed, timed out, crashed); labs of running tests and labs made by Create
// stay.
func SweepOrphans(dirGlob string, opts ...Option) error {
	states, err := filepath.Glob(filepath.Join(dirGlob, stateFile))
	if err != nil {
		return fmt.Errorf("sweep %s: %w", dirGlob, err)
	}
	for _, p := range states {
		st, lerr := loadState(filepath.Dir(p))
		if lerr == nil && st.Ephemeral && st.Owner != nil && !st.Owner.alive() {
			err = errors.Join(err, sweepLab(filepath.Dir(p), opts))
		}
	}
	return err
}

func sweepLab(dir string, opts []Option) error {
	l, err := Load(dir, opts...)
	if err != nil {
		return err
	}
	if l.st.Ephemeral {
		if err := l.Close(); err != nil {
			return err
		}
		return os.RemoveAll(dir)
	}
	return l.Purge()
}

func sweepNetns(prefix string) error {
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		return ignoreNotExist(err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		find := func() ([]int, error) { return netnsMembers(name) }
		err = errors.Join(err, killAll("netns "+name, find), deleteNetns(name))
	}
	return err
}

func sweepLinks(prefix string) error {
	links, err := listLinks()
	if err != nil {
		return fmt.Errorf("listing links: %w", err)
	}
	for _, link := range links {
		if name := link.Attrs().Name; strings.HasPrefix(name, prefix) {
			err = errors.Join(err, deleteLink(name))
		}
	}
	return err
}

// listLinks lists this namespace's links, dumping again while the kernel says a dump was
// interrupted (links added or removed meanwhile, as other labs on the machine do): the
// list is then incomplete (TestSweep failed on it under load).
func listLinks() ([]netlink.Link, error) {
	var links []netlink.Link
	err := wait.UntilEvery(5*time.Second, time.Millisecond, func() error {
		var err error
		links, err = netlink.LinkList()
		switch {
		case err == nil:
			return nil
		case errors.Is(err, netlink.ErrDumpInterrupted):
			return err
		}
		return wait.Stop(err)
	})
	return links, err
}

// sweepCgroups removes lab cgroups (orch-lab/<id>, named prefix+id) after killing what
// is left in them.
func sweepCgroups(prefix string) error {
	root := cgroup2Mount()
	if root == "" {
		return nil
	}
	dir := filepath.Join(root, "orch-lab")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ignoreNotExist(err)
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(namePrefix+e.Name(), prefix) {
			continue
		}
		cg := cgroup(filepath.Join(dir, e.Name()))
		err = errors.Join(err, cg.kill(), killAll("cgroup "+string(cg), cg.procs), cg.remove())
	}
	return err
}
