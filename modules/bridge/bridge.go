// Package bridge makes a member's part of a bridge network, as LXD does: a Linux bridge
// (netlink) with its addresses and external interfaces, NAT in an nftables table of its own
// (ip orch_NAME), and dnsmasq for DHCP and DNS, started and supervised by the Manager
// (restarted when it dies; pidfile and leases under DIR/networks/NAME/).
package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Sentinel errors of the package.
var (
	// ErrBadConfig is matched by errors about a network key; the message names the key.
	ErrBadConfig = errors.New("bad network config")
	// ErrBadName is returned for a name that is not a valid interface name.
	ErrBadName = errors.New("bad network name")
	// ErrMissingTool is matched when nft or dnsmasq is needed and not on PATH.
	ErrMissingTool = errors.New("missing tool")
	// ErrNotBridge is returned when the name is taken by a link that is not a bridge.
	ErrNotBridge = errors.New("link exists and is not a bridge")
)

// Options configure a Manager.
type Options struct {
	// Dir is the agent directory; each network keeps its files in DIR/networks/NAME/.
	Dir string
	// Logger receives the manager's logs; nil discards.
	Logger *slog.Logger
	// NetNS is the path of the network namespace to work in (/run/netns/X); "" means the
	// manager's own. Commands (nft, dnsmasq, sysctl) then run under nsenter.
	NetNS string
}

// Manager creates and deletes bridges and supervises their dnsmasq processes.
type Manager struct {
	opts Options
	log  *slog.Logger
	nl   *netlink.Handle

	mu   sync.Mutex
	sups map[string]*supervisor
}

// New opens a netlink handle in the namespace; Close stops the dnsmasq supervisors
// (leaving bridges and dnsmasq processes as they are, for the next start to adopt).
func New(o Options) (*Manager, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var h *netlink.Handle
	var err error
	if o.NetNS == "" {
		h, err = netlink.NewHandle()
	} else {
		var ns netns.NsHandle
		if ns, err = netns.GetFromPath(o.NetNS); err != nil {
			return nil, fmt.Errorf("network namespace %s: %w", o.NetNS, err)
		}
		defer ns.Close()
		h, err = netlink.NewHandleAt(ns)
	}
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return &Manager{opts: o, log: o.Logger, nl: h, sups: map[string]*supervisor{}}, nil
}

// Close stops supervising (dnsmasq processes keep running).
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.sups {
		s.detach()
	}
	m.sups = map[string]*supervisor{}
	m.nl.Close()
}

var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,14}$`) })

// CheckName refuses names that cannot be interface names (at most 15 characters).
func CheckName(name string) error {
	if !nameRE().MatchString(name) {
		return fmt.Errorf("%w: %q (letters, digits, '_', '-'; at most 15)", ErrBadName, name)
	}
	return nil
}

// AutoIPv4 picks a free 10.X.Y.1/24 in the manager's namespace.
func (m *Manager) AutoIPv4() (string, error) { return AutoIPv4(m.nl) }

// RunDir is DIR/networks/NAME.
func (m *Manager) RunDir(name string) string { return filepath.Join(m.opts.Dir, "networks", name) }

// Create makes or updates bridge name to match cfg: link, addresses, external interfaces,
// NAT table, dnsmasq. It is idempotent; on error what this call made is undone.
func (m *Manager) Create(ctx context.Context, name string, keys map[string]string) (err error) {
	if err := CheckName(name); err != nil {
		return err
	}
	cfg, err := ParseConfig(keys)
	if err != nil {
		return fmt.Errorf("network %s: %w", name, err)
	}
	if err := m.needTools(cfg); err != nil {
		return fmt.Errorf("network %s: %w", name, err)
	}
	made, err := m.ensureLink(name, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil && made {
			_ = m.Delete(context.WithoutCancel(ctx), name)
		}
	}()
	if err := m.configureLink(name, cfg); err != nil {
		return fmt.Errorf("network %s: %w", name, err)
	}
	if err := m.applyNAT(ctx, name, cfg); err != nil {
		return fmt.Errorf("network %s: %w", name, err)
	}
	return m.applyDnsmasq(name, cfg)
}

func (m *Manager) needTools(cfg Config) error {
	var missing []string
	if cfg.NAT {
		if _, err := exec.LookPath("nft"); err != nil {
			missing = append(missing, "nft (install nftables)")
		}
	}
	if cfg.IPv4 != nil || cfg.IPv6 != nil {
		if _, err := exec.LookPath("dnsmasq"); err != nil {
			missing = append(missing, "dnsmasq (install dnsmasq-base)")
		}
	}
	if m.opts.NetNS != "" {
		if _, err := exec.LookPath("nsenter"); err != nil {
			missing = append(missing, "nsenter (install util-linux)")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrMissingTool, strings.Join(missing, ", "))
	}
	return nil
}

// ensureLink makes the bridge if absent and reports whether it did.
func (m *Manager) ensureLink(name string, cfg Config) (bool, error) {
	l, err := m.nl.LinkByName(name)
	if err == nil {
		if _, ok := l.(*netlink.Bridge); !ok {
			return false, fmt.Errorf("network %s: %w (%s)", name, ErrNotBridge, l.Type())
		}
		return false, nil
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: cfg.MTU}}
	if err := m.nl.LinkAdd(br); err != nil {
		return false, fmt.Errorf("network %s: creating the bridge: %w", name, err)
	}
	m.log.Info("bridge created", "network", name)
	return true, nil
}

// configureLink sets MTU, addresses (dropping others of ours) and external interfaces.
func (m *Manager) configureLink(name string, cfg Config) error {
	br, err := m.nl.LinkByName(name)
	if err != nil {
		return err
	}
	if cfg.MTU != 0 && br.Attrs().MTU != cfg.MTU {
		if err := m.nl.LinkSetMTU(br, cfg.MTU); err != nil {
			return fmt.Errorf("bridge.mtu: %w", err)
		}
	}
	if err := m.setAddrs(br, cfg); err != nil {
		return err
	}
	for _, e := range cfg.External {
		l, err := m.nl.LinkByName(e)
		if err != nil {
			return fmt.Errorf("bridge.external_interfaces: %s: %w", e, err)
		}
		if l.Attrs().MasterIndex != br.Attrs().Index {
			if err := m.nl.LinkSetMaster(l, br); err != nil {
				return fmt.Errorf("bridge.external_interfaces: attaching %s: %w", e, err)
			}
		}
		if err := m.nl.LinkSetUp(l); err != nil {
			return fmt.Errorf("bridge.external_interfaces: %s up: %w", e, err)
		}
	}
	return m.nl.LinkSetUp(br)
}

func (m *Manager) setAddrs(br netlink.Link, cfg Config) error {
	want := map[string]bool{}
	for _, a := range []*net.IPNet{cfg.IPv4, cfg.IPv6} {
		if a == nil {
			continue
		}
		want[a.String()] = true
		if err := m.nl.AddrReplace(br, &netlink.Addr{IPNet: a}); err != nil {
			return fmt.Errorf("address %s: %w", a, err)
		}
	}
	have, err := m.nl.AddrList(br, netlink.FAMILY_ALL)
	if err != nil {
		return err
	}
	for _, a := range have {
		if !want[a.IPNet.String()] && !a.IP.IsLinkLocalUnicast() {
			_ = m.nl.AddrDel(br, &a)
		}
	}
	return nil
}

// Delete stops dnsmasq, removes the NAT table and the bridge (external interfaces are
// released, not deleted) and the network's files. Deleting what is gone succeeds.
func (m *Manager) Delete(ctx context.Context, name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	m.stopDnsmasq(name)
	var errs []error
	if err := m.deleteNAT(ctx, name); err != nil {
		errs = append(errs, err)
	}
	if l, err := m.nl.LinkByName(name); err == nil {
		if _, ok := l.(*netlink.Bridge); !ok {
			errs = append(errs, fmt.Errorf("network %s: %w (%s): not deleting it", name, ErrNotBridge, l.Type()))
		} else if err := m.nl.LinkDel(l); err != nil {
			errs = append(errs, fmt.Errorf("network %s: deleting the bridge: %w", name, err))
		}
	}
	if err := os.RemoveAll(m.RunDir(name)); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		m.log.Info("bridge deleted", "network", name)
	}
	return errors.Join(errs...)
}

// command builds a command that runs in the manager's network namespace.
func (m *Manager) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if m.opts.NetNS == "" {
		return exec.CommandContext(ctx, name, args...)
	}
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + m.opts.NetNS, "--", name}, args...)...)
}

func (m *Manager) run(ctx context.Context, stdin string, name string, args ...string) error {
	cmd := m.command(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
