package lxc

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Start starts a stopped container; starting a running one is a no-op.
func (m *Manager) Start(ctx context.Context, name string) error {
	st, err := m.state(ctx, name)
	if err != nil {
		return err
	}
	if st == StateRunning {
		return nil
	}
	ctx, cancel := m.withTimeout(ctx)
	defer cancel()
	_ = os.Truncate(m.logPath(name), 0)
	m.removeStaleCgroups(name)
	if err := m.ensureShmounts(name); err != nil {
		return err
	}
	if _, err := m.run(ctx, call{tool: "lxc-start", name: name, args: m.args(name)}); err != nil {
		err = m.withLog(name, err)
		m.removeStaleCgroupsWait(name)
		return err
	}
	return nil
}

// withLog adds the tail of the container's LXC log to err (lxc-start says little itself).
func (m *Manager) withLog(name string, err error) error {
	b, rerr := os.ReadFile(m.logPath(name))
	if rerr != nil || len(strings.TrimSpace(string(b))) == 0 {
		return err
	}
	return fmt.Errorf("%w; %s: %s", err, m.logPath(name), tail(string(b), 1024))
}

// Stop stops a running container: a clean shutdown (init gets SIGUSR1/SIGPWR) killed after
// StopTimeout, or at once when force is set. Stopping a stopped container is a no-op.
func (m *Manager) Stop(ctx context.Context, name string, force bool) error {
	st, err := m.state(ctx, name)
	if err != nil {
		return err
	}
	if st == StateStopped {
		return nil
	}
	ctx, cancel := m.withTimeout(ctx)
	defer cancel()
	args := m.args(name, "-t", strconv.Itoa(int(m.cfg.StopTimeout.Seconds()+0.5)))
	if force {
		args = m.args(name, "-k")
	}
	_, err = m.run(ctx, call{tool: "lxc-stop", name: name, args: args})
	return err
}

// Restart stops (cleanly unless force) and starts the container again.
func (m *Manager) Restart(ctx context.Context, name string, force bool) error {
	if err := m.Stop(ctx, name, force); err != nil {
		return err
	}
	return m.Start(ctx, name)
}

// Delete removes a stopped container's definition; force stops a running one first. The
// rootfs directory is left to its owner (the storage volume the caller gave to Create).
func (m *Manager) Delete(ctx context.Context, name string, force bool) error {
	st, err := m.state(ctx, name)
	if err != nil {
		return err
	}
	if st != StateStopped {
		if !force {
			return fmt.Errorf("%s: %w: stop it first or pass --force", name, ErrRunning)
		}
		if err := m.Stop(ctx, name, true); err != nil {
			return err
		}
	}
	// lxc-destroy removes the container's directory: nothing may be mounted in it then.
	if err := m.releaseShmounts(name); err != nil {
		return err
	}
	// lxc-destroy removes a "dir" rootfs recursively; keep the caller's volume out of it.
	if err := m.dropRootfs(name); err != nil {
		return err
	}
	ctx, cancel := m.withTimeout(ctx)
	defer cancel()
	if _, err := m.run(ctx, call{tool: "lxc-destroy", name: name, args: m.args(name)}); err != nil {
		return err
	}
	m.removeStaleCgroups(name)
	return os.RemoveAll(m.dir(name))
}

// dropRootfs rewrites the container's config without its lxc.rootfs.path lines, atomically
// like every config rewrite (writeConfig).
func (m *Manager) dropRootfs(name string) error {
	path := m.configPath(name)
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	var keep []string
	for _, line := range strings.Split(string(b), "\n") {
		k, _, _ := strings.Cut(line, "=")
		if strings.TrimSpace(k) != "lxc.rootfs.path" {
			keep = append(keep, line)
		}
	}
	if err := writeConfig(path, strings.Join(keep, "\n")); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// Freeze freezes a running container's processes (lxc-freeze: its cgroup's freezer);
// freezing a frozen one is a no-op, a stopped one is refused.
func (m *Manager) Freeze(ctx context.Context, name string) error {
	return m.freezer(ctx, name, "lxc-freeze", StateFrozen)
}

// Unfreeze thaws a frozen container (lxc-unfreeze); a running one is left alone.
func (m *Manager) Unfreeze(ctx context.Context, name string) error {
	return m.freezer(ctx, name, "lxc-unfreeze", StateRunning)
}

// freezer runs tool unless the container is already in state done.
func (m *Manager) freezer(ctx context.Context, name, tool string, done State) error {
	st, err := m.state(ctx, name)
	if err != nil {
		return err
	}
	switch st {
	case done:
		return nil
	case StateStopped:
		return fmt.Errorf("%s: %w", name, ErrNotRunning)
	}
	ctx, cancel := m.withTimeout(ctx)
	defer cancel()
	_, err = m.run(ctx, call{tool: tool, name: name, args: m.args(name)})
	return err
}
