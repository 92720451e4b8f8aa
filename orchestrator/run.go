package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"orch/inventory"
	"orch/nodeagent/api"
	"orch/orchestrator/clientstore"
	"orch/orchestrator/modules"
	"orch/orchestrator/transport"
	"orch/playbooks"
)

// Options are the settings every playbook run shares (`orch up`, `orch play`, …).
type Options struct {
	// Inventory is the inventory file (-i, $ORCH_INVENTORY).
	Inventory string
	// Limit restricts the run to hosts matching a pattern (--limit).
	Limit string
	// Forks bounds how many hosts run a task at once.
	Forks int
	// AgentBinary is the nodeagent binary to push (--agent); default: next to orch.
	AgentBinary string
	// KnownHosts is the known_hosts file (--known-hosts); default ~/.ssh/known_hosts.
	KnownHosts string
	// AcceptNew records unknown host keys (--accept-new).
	AcceptNew bool
	// StateDir is orch's state directory; default $ORCH_CONFIG or ~/.config/orch.
	StateDir string
	// CacheDir keeps compressed copies of pushed agents between runs (a few, named by
	// their SHA-256); default DefaultCacheDir(). "-" keeps nothing.
	CacheDir string
	// Preseed is a preseed file supplying the cluster-wide settings (`up --preseed`).
	Preseed string
	// Check reports what would change without changing it.
	Check bool
	// Diff asks modules for diffs.
	Diff bool
	// Format is the output: "text" (live progress and recap) or "json".
	Format string
	// ExtraVars are -e variables.
	ExtraVars map[string]any
	// Tags, SkipTags and StartAtTask select tasks.
	Tags, SkipTags []string
	StartAtTask    string
	// Prompter asks vars_prompt questions (orch play on a terminal); nil: not interactive.
	Prompter playbooks.Prompter
	// Out receives the report.
	Out io.Writer
	// Logger receives debug logs; nil discards.
	Logger *slog.Logger
}

// ErrNoInventory means no inventory was given.
var ErrNoInventory = errors.New("no inventory: pass -i FILE or set ORCH_INVENTORY")

// session is one run's state: the inventory, orch's store, connections.
type session struct {
	opts  Options
	inv   *inventory.Inventory
	store *clientstore.Store
	conns *connector
	// agents are every inventory host's agent settings, read once (inventory.Host.Agent).
	agents map[string]inventory.AgentSettings
	// findings are what the modules found for the summary (refused downgrades, the plan).
	findings *modules.Findings
}

func openSession(opts Options) (*session, error) {
	if opts.Inventory == "" {
		return nil, ErrNoInventory
	}
	inv, err := inventory.Load(opts.Inventory)
	if err != nil {
		return nil, err
	}
	if opts.StateDir == "" {
		opts.StateDir = clientstore.DefaultDir()
	}
	st, err := clientstore.Open(opts.StateDir)
	if err != nil {
		return nil, err
	}
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	agents, err := agentSettings(inv)
	if err != nil {
		return nil, err
	}
	if opts.CacheDir == "" {
		opts.CacheDir = DefaultCacheDir()
	}
	conns := newConnector(inv, opts.KnownHosts, opts.AcceptNew, opts.Logger, fileCache(opts.CacheDir))
	return &session{opts: opts, inv: inv, store: st, conns: conns, agents: agents, findings: &modules.Findings{}}, nil
}

// DefaultCacheDir is orch's cache directory: $XDG_CACHE_HOME/orch or ~/.cache/orch; "-"
// (nothing kept) when there is no home directory.
func DefaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "-"
	}
	return filepath.Join(dir, "orch")
}

// fileCache is the run's cache of pushed files' digests and compressed copies, kept under
// dir/push ("-": in memory only).
func fileCache(dir string) *transport.FileCache {
	if dir == "-" {
		return transport.NewFileCache()
	}
	return transport.NewDiskFileCache(filepath.Join(dir, "push"))
}

// pushesAgent are the built-in playbooks that push the agent: their run starts reading or
// compressing it at once (transport.FileCache.Warm), while it connects to the hosts.
var pushesAgent = map[string]bool{"up": true, "upgrade": true}

// agentBinary is the agent the run pushes: --agent, else the one next to orch.
func (s *session) agentBinary() string {
	if s.opts.AgentBinary != "" {
		return s.opts.AgentBinary
	}
	return DefaultAgentBinary()
}

// agentSettings reads every host's agent settings, the one place they are read and
// validated.
func agentSettings(inv *inventory.Inventory) (map[string]inventory.AgentSettings, error) {
	out := map[string]inventory.AgentSettings{}
	for _, h := range inv.Hosts() {
		a, err := h.Agent()
		if err != nil {
			return nil, err
		}
		out[h.Name] = a
	}
	return out, nil
}

func (s *session) close() { s.conns.close() }

// hosts turns the inventory into the engine's hosts and groups. orch's own variables
// (node_name, agent_dir, …) reach the modules typed (modules.Deps.Agents), not here.
func (s *session) hosts() ([]playbooks.Host, map[string][]string, error) {
	var out []playbooks.Host
	for _, h := range s.inv.Hosts() {
		out = append(out, playbooks.Host{Name: h.Name, Vars: h.Vars()})
	}
	groups := map[string][]string{}
	for _, g := range s.inv.Groups() {
		sel, _, err := s.inv.Select(g.Name)
		if err != nil {
			return nil, nil, err
		}
		for _, h := range sel {
			groups[g.Name] = append(groups[g.Name], h.Name)
		}
	}
	return out, groups, nil
}

func (s *session) selector() playbooks.Selector {
	return func(pattern string) ([]string, []string, error) {
		hs, warn, err := s.inv.Select(pattern)
		names := make([]string, len(hs))
		for i, h := range hs {
			names[i] = h.Name
		}
		return names, warn, err
	}
}

// registry returns the modules bound to this session.
func (s *session) registry() (playbooks.Registry, error) {
	deps := modules.Deps{AgentBinary: s.agentBinary(), Store: s.store, Logger: s.opts.Logger, Findings: s.findings,
		Agents: s.agents, SSH: s.conns}
	if s.opts.Preseed != "" {
		data, err := os.ReadFile(s.opts.Preseed)
		if err != nil {
			return nil, err
		}
		if deps.Preseed, err = api.ParsePreseed(s.opts.Preseed, data); err != nil {
			return nil, err
		}
	}
	return modules.Registry(deps), nil
}

// SyntaxCheck checks a playbook without an inventory or a connection (`orch play
// --syntax-check`): everything it imports, its roles, templates and modules. The error
// lists every problem with its file:line:col.
func SyntaxCheck(path string) error {
	return playbooks.SyntaxCheck(path, modules.Registry(modules.Deps{}))
}

// DefaultAgentBinary is the nodeagent next to the running orch binary.
func DefaultAgentBinary() string {
	exe, err := os.Executable()
	if err != nil {
		return "nodeagent"
	}
	return filepath.Join(filepath.Dir(exe), "nodeagent")
}

// run executes a playbook with the session's hosts, connections and modules.
func (s *session) run(ctx context.Context, pb *playbooks.Playbook) (*playbooks.Recap, error) {
	hosts, groups, err := s.hosts()
	if err != nil {
		return nil, err
	}
	reg, err := s.registry()
	if err != nil {
		return nil, err
	}
	rep, finish := s.reporter()
	defer finish()
	return playbooks.Run(ctx, pb, playbooks.Options{
		Hosts: hosts, Groups: groups, Select: s.selector(), Connector: s.conns, Modules: reg,
		Check: s.opts.Check, Diff: s.opts.Diff, Forks: s.opts.Forks, ExtraVars: s.opts.ExtraVars,
		Limit: s.opts.Limit, Tags: s.opts.Tags, SkipTags: s.opts.SkipTags, StartAtTask: s.opts.StartAtTask,
		Reporter: rep, Logger: s.opts.Logger, Prompter: s.opts.Prompter,
	})
}

// Play runs a user's playbook file; it returns Ansible's exit code (0, 2 failed, 4
// unreachable).
func Play(ctx context.Context, path string, opts Options) (int, error) {
	s, err := openSession(opts)
	if err != nil {
		return 1, err
	}
	defer s.close()
	pb, err := playbooks.Load(path)
	if err != nil {
		return 1, err
	}
	recap, err := s.run(ctx, pb)
	return playbooks.ExitCode(recap, err), err
}

// RunBuiltin runs one of the built-in playbooks (up, upgrade, recover…).
func RunBuiltin(ctx context.Context, name string, opts Options) (*playbooks.Recap, int, error) {
	recap, _, code, err := runBuiltin(ctx, name, opts)
	return recap, code, err
}

// runBuiltin is RunBuiltin that also returns what the modules found for the summary.
func runBuiltin(ctx context.Context, name string, opts Options) (*playbooks.Recap, *modules.Findings, int, error) {
	s, err := openSession(opts)
	if err != nil {
		return nil, nil, 1, err
	}
	defer s.close()
	pb, err := loadBuiltin(name)
	if err != nil {
		return nil, nil, 1, err
	}
	if pushesAgent[name] && !opts.Check {
		s.conns.files.Warm(s.agentBinary(), transport.EncZstd)
	}
	recap, err := s.run(ctx, pb)
	return recap, s.findings, playbooks.ExitCode(recap, err), err
}

func loadBuiltin(name string) (*playbooks.Playbook, error) {
	data, err := builtinSource(name)
	if err != nil {
		return nil, fmt.Errorf("built-in playbook %q: %w", name, err)
	}
	return playbooks.Parse("builtin/"+name+".yml", data)
}
