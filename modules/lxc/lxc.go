// Package lxc drives LXC system containers through LXC's own command-line tools
// (lxc-create, lxc-start, lxc-stop, lxc-attach, lxc-destroy, lxc-info, lxc-ls).
//
// Every container lives under one lxcpath (passed to each tool with -P), normally the
// agent directory's "containers" folder, so several agents on one machine never see each
// other's containers. Each tool call has a timeout and its exit code and stderr end up in
// the error. The container's root filesystem is a directory the caller provides (a storage
// volume); this package never deletes it.
package lxc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"
)

// Errors callers can test with errors.Is.
var (
	// ErrNotFound means no container of that name exists under the lxcpath.
	ErrNotFound = errors.New("container not found")
	// ErrExists means a container of that name already exists.
	ErrExists = errors.New("container already exists")
	// ErrInvalidName means the name is not a valid container (host) name.
	ErrInvalidName = errors.New("invalid container name")
	// ErrRunning means the operation needs a stopped container (or --force).
	ErrRunning = errors.New("container is running")
	// ErrNotRunning means the operation needs a running container.
	ErrNotRunning = errors.New("container is not running")
	// ErrPathEscapes means a file path would leave the container's rootfs.
	ErrPathEscapes = errors.New("path escapes the container rootfs")
	// ErrTool means an LXC tool failed; the error also carries a *ToolError.
	ErrTool = errors.New("lxc tool failed")
)

// Config configures a Manager.
type Config struct {
	// LXCPath is the directory holding one sub-directory per container (lxc -P).
	LXCPath string
	// CgroupPrefix distinguishes this agent's container cgroups from those of other agents
	// on the same machine: a container NAME runs in the cgroup lxc.payload.PREFIX-NAME.
	// Empty means the host name.
	CgroupPrefix string
	// Timeout bounds each LXC tool call except Exec (whose context decides). Default 60s.
	Timeout time.Duration
	// StopTimeout is how long a clean stop waits for init to exit before killing it.
	// Default 10s.
	StopTimeout time.Duration
	// Logger receives one debug line per tool call. Default slog.Default().
	Logger *slog.Logger
}

// Manager creates and operates the containers under one lxcpath.
type Manager struct {
	cfg Config
	log *slog.Logger
}

var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9-]{0,62}$`) })

// New checks the configuration, creates the lxcpath and returns a Manager.
func New(cfg Config) (*Manager, error) {
	if cfg.LXCPath == "" {
		return nil, errors.New("lxc: LXCPath is empty")
	}
	abs, err := filepath.Abs(cfg.LXCPath)
	if err != nil {
		return nil, fmt.Errorf("lxc: %s: %w", cfg.LXCPath, err)
	}
	cfg.LXCPath = abs
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.CgroupPrefix == "" {
		cfg.CgroupPrefix, _ = os.Hostname()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.LXCPath, 0o750); err != nil {
		return nil, fmt.Errorf("lxc: %w", err)
	}
	return &Manager{cfg: cfg, log: cfg.Logger}, nil
}

// LXCPath returns the directory holding the containers.
func (m *Manager) LXCPath() string { return m.cfg.LXCPath }

// ValidName reports an error wrapping ErrInvalidName when name cannot name a container.
func ValidName(name string) error {
	if !nameRE().MatchString(name) {
		return fmt.Errorf("%w: %q (letters, digits and '-', at most 63, not starting with '-')", ErrInvalidName, name)
	}
	return nil
}

// Exists reports whether a container of that name exists.
func (m *Manager) Exists(name string) bool {
	if ValidName(name) != nil {
		return false
	}
	_, err := os.Stat(m.configPath(name))
	return err == nil
}

func (m *Manager) dir(name string) string        { return filepath.Join(m.cfg.LXCPath, name) }
func (m *Manager) configPath(name string) string { return filepath.Join(m.dir(name), "config") }
func (m *Manager) logPath(name string) string    { return filepath.Join(m.dir(name), "lxc.log") }

// need returns an error when name is invalid or no such container exists.
func (m *Manager) need(name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if !m.Exists(name) {
		return fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	return nil
}

// withTimeout bounds ctx by the per-call timeout.
func (m *Manager) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, m.cfg.Timeout)
}
