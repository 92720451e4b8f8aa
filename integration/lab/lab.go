// Package lab runs test hosts on one Linux machine. A host is a network namespace wired
// into a lab bridge, a private mount namespace in which the host's own directories are
// bind-mounted over /var/lib/nodeagent and LXC's directories, and a real OpenSSH sshd with
// its own host key. Hosts can be killed, restarted with the same data, partitioned, healed
// and paused. See DESIGN.md in this directory for the reasons behind the layout.
package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// Errors returned by the lab; test them with errors.Is.
var (
	// ErrExists means the directory already holds the state of a lab that is up.
	ErrExists = errors.New("a lab already exists in this directory")
	// ErrNoState means the directory holds no lab state file.
	ErrNoState = errors.New("no lab state in this directory")
	// ErrTooManyHosts means a lab was asked for more hosts than its /24 holds.
	ErrTooManyHosts = errors.New("too many hosts for one lab")
	// ErrNoSubnet means every candidate /24 is already routed on this machine.
	ErrNoSubnet = errors.New("no free subnet for a lab")
	// ErrHostDown means the host's sshd is not running (killed or never started).
	ErrHostDown = errors.New("host is down")
	// ErrNoCgroup means cgroup v2 is not mounted, so Pause and Resume cannot work.
	ErrNoCgroup = errors.New("cgroup v2 is not available")
	// ErrClosed means the lab was closed.
	ErrClosed = errors.New("lab is closed")
)

const (
	// namePrefix starts every bridge, veth and netns name a lab creates.
	namePrefix = "orl"
	// hostOffset is added to a host's index to form the last octet of its address.
	hostOffset = 10
	// MaxHosts is the most hosts one lab holds (its /24 has addresses .11 to .254).
	MaxHosts = 254 - hostOffset
	// stateVersion is written into the state file.
	stateVersion = 1
)

// DefaultMounts returns the directories private to each host: the host's own copies
// under DataDir()/fs are bind-mounted over them inside the host's mount namespace. /root
// is among them so that a host looks like a fresh machine (root's home made from
// /etc/skel), not like the machine running the lab, whose shell start-up files can cost
// every SSH session 100 ms (pyenv) and would skew every measurement.
func DefaultMounts() []string {
	return []string{"/root", "/var/lib/nodeagent", "/var/lib/lxc", "/var/cache/lxc", "/var/log/lxc", "/run/lxc"}
}

// Lab is a set of test hosts sharing one bridge, one client key and one known_hosts file.
type Lab struct {
	log *slog.Logger

	mu       sync.Mutex
	st       state
	hosts    []*Host
	cg       cgroup
	logFiles []string
	closed   bool
}

// Option changes how a lab is created.
type Option func(*config)

type config struct {
	log       *slog.Logger
	os        string
	mounts    []string
	ephemeral bool
	uplink    string // tc rate of the control-to-host link, "" unshaped
}

// WithLogger makes the lab log its steps (host started, killed, partitioned) to l.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithMounts adds directories (absolute paths) that each host gets its own copy of, on top
// of DefaultMounts. Missing mount points are created in the root namespace and stay there
// (empty), since other labs may be using them.
func WithMounts(paths ...string) Option {
	return func(c *config) { c.mounts = append(c.mounts, paths...) }
}

// WithOS makes the lab's hosts of kind os: OSNamespace (default) or OSDebian.
func WithOS(os string) Option { return func(c *config) { c.os = os } }

func newConfig(opts []Option) config {
	c := config{log: slog.New(slog.DiscardHandler), mounts: DefaultMounts()}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// Create brings up a lab of n hosts whose files live in dir, and writes dir/lab.json so that
// Load (and `orchlab down`) can find and remove it later, even after a crash.
func Create(ctx context.Context, dir string, n int, opts ...Option) (*Lab, error) {
	c := newConfig(opts)
	l, err := create(dir, c)
	if err != nil {
		return nil, err
	}
	if _, err := l.AddHosts(ctx, n); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

func create(dir string, c config) (*Lab, error) {
	if c.os != OSNamespace && c.os != OSDebian {
		return nil, fmt.Errorf("lab host OS %q: %w (namespace hosts: \"\", or %q)", c.os, errors.ErrUnsupported, OSDebian)
	}
	if c.uplink != "" {
		if _, err := ParseRate(c.uplink); err != nil {
			return nil, err
		}
	}
	for _, m := range c.mounts {
		if !filepath.IsAbs(m) {
			return nil, fmt.Errorf("lab mount %q: not an absolute path", m)
		}
	}
	dir, err := prepareDir(dir)
	if err != nil {
		return nil, err
	}
	if err := ensureTestUser(); err != nil {
		return nil, err
	}
	id, err := newID()
	if err != nil {
		return nil, err
	}
	l := &Lab{log: c.log.With("lab", id), st: state{
		Version: stateVersion, ID: id, Dir: dir, Bridge: namePrefix + id,
		Ephemeral: c.ephemeral, Mounts: c.mounts, OS: c.os, Uplink: c.uplink,
	}}
	if err := l.setUp(); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

// prepareDir makes dir (readable by everyone: sshd reads authorized_keys as the logging-in
// user) and refuses a directory that already holds a lab.
func prepareDir(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("lab dir %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("lab dir: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", fmt.Errorf("lab dir: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err == nil {
		return "", fmt.Errorf("%s: %w (run `orchlab down --dir %s` first)", dir, ErrExists, dir)
	}
	return dir, nil
}

// setUp creates what the hosts share: client key, subnet and bridge, cgroup, state file.
func (l *Lab) setUp() error {
	if err := writeClientKey(l.st.Dir); err != nil {
		return err
	}
	subnet, err := createBridge(l.st.Bridge)
	if err != nil {
		return err
	}
	l.st.Subnet = subnet.String()
	if err := shapeBridge(l.st.Bridge, l.st.Uplink); err != nil {
		return err
	}
	if l.st.OS == OSDebian {
		l.st.NAT = namePrefix + l.st.ID
		if err := l.saveLocked(); err != nil {
			return err
		}
		if err := addNAT(l.st.NAT, subnet); err != nil {
			return err
		}
	}
	cg, err := newCgroup("orch-lab", l.st.ID)
	if err != nil {
		return err
	}
	l.cg = cg
	l.st.Cgroup = string(cg)
	return l.saveLocked()
}

func (l *Lab) setOwner(o *owner) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st.Owner = o
	return l.saveLocked()
}

func newID() (string, error) {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("lab id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Load opens the lab whose state is in dir, so that it can be inspected or closed.
func Load(dir string, opts ...Option) (*Lab, error) {
	c := newConfig(opts)
	st, err := loadState(dir)
	if err != nil {
		return nil, err
	}
	l := &Lab{log: c.log.With("lab", st.ID), st: st, cg: cgroup(st.Cgroup)}
	for _, hs := range st.Hosts {
		l.hosts = append(l.hosts, l.newHost(hs))
	}
	return l, nil
}

// ID is the lab's short random id; every name the lab creates contains it.
func (l *Lab) ID() string { return l.st.ID }

// Dir is the directory holding the lab's keys, state and host data.
func (l *Lab) Dir() string { return l.st.Dir }

// KeyFile is the client private key (ed25519) authorised for root and orchtest on every host.
func (l *Lab) KeyFile() string { return filepath.Join(l.st.Dir, "id_ed25519") }

// SSHConfigFile is an OpenSSH client config naming every host (Host host1 ...) with the
// lab's key and known_hosts and StrictHostKeyChecking yes: `ssh -F FILE host1` just works,
// and so does ProxyJump (-J), whose jump connection only inherits -F.
func (l *Lab) SSHConfigFile() string { return filepath.Join(l.st.Dir, "ssh_config") }

// KnownHostsFile lists every host's key by address (plain, not hashed).
func (l *Lab) KnownHostsFile() string { return filepath.Join(l.st.Dir, "known_hosts") }

// Subnet is the lab's /24; the bridge in the root namespace has its .1 address.
func (l *Lab) Subnet() *net.IPNet {
	_, n, _ := net.ParseCIDR(l.st.Subnet)
	return n
}

// Gateway is the bridge's address, which is how hosts reach the root namespace.
func (l *Lab) Gateway() string { return gatewayOf(l.Subnet()).IP.String() }

// Hosts returns the lab's hosts in creation order (host1, host2, ...).
func (l *Lab) Hosts() []*Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Host(nil), l.hosts...)
}

// Host returns the host with the given name, or nil.
func (l *Lab) Host(name string) *Host {
	for _, h := range l.Hosts() {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// AddHosts creates k more hosts in parallel and waits until each one's sshd answers.
func (l *Lab) AddHosts(ctx context.Context, k int) ([]*Host, error) {
	added, err := l.reserveHosts(k)
	if err != nil {
		return nil, err
	}
	err = parallel(added, func(h *Host) error { return h.create(ctx) })
	l.mu.Lock()
	defer l.mu.Unlock()
	err = errors.Join(err, writeKnownHosts(l.KnownHostsFile(), l.hosts), l.writeSSHConfig())
	if err == nil {
		err = pinNeighbours(l.st.Bridge, net.ParseIP(l.Gateway()), l.hosts, added)
	}
	if err != nil {
		return nil, err
	}
	l.log.Info("hosts up", "added", k, "total", len(l.hosts))
	return added, nil
}

// reserveHosts records k new hosts in the state file before anything is created, so that a
// crash half-way leaves a lab that Close can still remove.
func (l *Lab) reserveHosts(k int) ([]*Host, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	if k < 0 || len(l.hosts)+k > MaxHosts {
		return nil, fmt.Errorf("%d + %d hosts: %w (at most %d)", len(l.hosts), k, ErrTooManyHosts, MaxHosts)
	}
	var added []*Host
	for range k {
		i := len(l.hosts) + 1
		hs := hostState{
			Name: "host" + strconv.Itoa(i), Index: i,
			Addr:  hostAddr(l.Subnet(), i).IP.String(),
			Netns: namePrefix + l.st.ID + "-host" + strconv.Itoa(i),
			Veth:  namePrefix + l.st.ID + "v" + strconv.Itoa(i),
			OS:    l.st.OS,
		}
		l.st.Hosts = append(l.st.Hosts, hs)
		h := l.newHost(hs)
		l.hosts = append(l.hosts, h)
		added = append(added, h)
	}
	if err := writeHostsFile(l.hostsFile(), l.hosts); err != nil {
		return nil, err
	}
	return added, l.saveLocked()
}

// hostsFile is bind-mounted over /etc/hosts in every host, so host names resolve there
// (sudo complains about an unresolvable hostname otherwise).
func (l *Lab) hostsFile() string { return filepath.Join(l.st.Dir, "hosts") }

// Close kills every process of every host, then removes the namespaces, links, bridge,
// cgroups and the state file. It is idempotent and works on a lab from Load.
func (l *Lab) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	err := parallel(l.hosts, (*Host).destroy)
	if l.st.Bridge != "" {
		err = errors.Join(err, deleteLink(l.st.Bridge))
	}
	if l.st.NAT != "" {
		err = errors.Join(err, deleteNAT(l.st.NAT))
	}
	err = errors.Join(err, l.cg.remove())
	if l.cg != "" {
		_ = os.Remove(filepath.Dir(string(l.cg))) // orch-lab/, shared with other labs: only if empty
	}
	if err != nil {
		return fmt.Errorf("closing lab %s: %w", l.st.ID, err)
	}
	if rerr := os.Remove(filepath.Join(l.st.Dir, stateFile)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		return fmt.Errorf("closing lab %s: %w", l.st.ID, rerr)
	}
	l.closed = true
	l.log.Info("lab closed")
	return nil
}

// parallel runs fn for every host at once and joins the errors.
func parallel(hosts []*Host, fn func(*Host) error) error {
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() { errs[i] = fn(h) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
