package orchestrator

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"orch/inventory"
	"orch/orchestrator/agentctl"
	"orch/orchestrator/transport"
	"orch/playbooks"
)

// connector opens one SSH connection per host per run, on first use, and shares it between
// the tasks of the run. It implements playbooks.Connector.
type connector struct {
	inv        *inventory.Inventory
	knownHosts string
	acceptNew  bool
	files      *transport.FileCache
	relay      *transport.Relay // hosts pass the agent binary on to each other
	log        *slog.Logger

	mu    sync.Mutex
	conns map[string]*lazyConn
}

type lazyConn struct {
	once sync.Once
	done atomic.Bool // set once the dial ended (conn or err set)
	conn *transport.Conn
	err  error
}

// lost reports whether lc's dial succeeded and the connection has ended since.
func (lc *lazyConn) lost() bool { return lc.done.Load() && lc.conn != nil && lc.conn.Lost() }

func newConnector(inv *inventory.Inventory, knownHosts string, acceptNew bool, log *slog.Logger, files *transport.FileCache) *connector {
	return &connector{inv: inv, knownHosts: knownHosts, acceptNew: acceptNew, log: log,
		files: files, conns: map[string]*lazyConn{},
		relay: transport.NewRelay(transport.RelayOptions{Lend: agentctl.LendCommand})}
}

// Connect returns the host's connection for the playbook engine, dialing it once per login
// user: the engine passes ansible_user in h.Vars when a play or task says remote_user. A
// host the inventory does not declare (added by add_host) is reached with its own vars.
func (c *connector) Connect(ctx context.Context, h playbooks.Host) (playbooks.Conn, error) {
	user, _ := h.Vars["ansible_user"].(string)
	if user != "" && c.inventoryUser(h.Name) == user {
		user = "" // the inventory's own user: one connection, shared with the modules' SSH
	}
	conn, err := c.connect(ctx, h.Name, user, h.Vars)
	if err != nil {
		return nil, err
	}
	return connAdapter{conn, func() { c.forget(h.Name+"\x00"+user, conn) }}, nil
}

// SSH returns the run's SSH connection to host as its inventory user, dialing it once; the
// modules that drive the agent use it (modules.SSHDialer).
func (c *connector) SSH(ctx context.Context, host string) (*transport.Conn, error) {
	return c.connect(ctx, host, "", nil)
}

// connect returns the connection to host as user ("" = the inventory's), dialing it once.
func (c *connector) connect(ctx context.Context, host, user string, vars map[string]any) (*transport.Conn, error) {
	c.mu.Lock()
	key := host + "\x00" + user
	lc := c.conns[key]
	if lc != nil && lc.lost() {
		// The host reset it (a reboot, a network fault): close it (its jump connection and
		// goroutines) and dial again rather than hand it out dead for the rest of the run.
		c.log.Debug("SSH connection lost: dialing again", "host", host)
		lc.conn.Close()
		lc = nil
	}
	if lc == nil {
		lc = &lazyConn{}
		c.conns[key] = lc
	}
	c.mu.Unlock()
	lc.once.Do(func() {
		lc.conn, lc.err = c.dial(ctx, host, user, vars)
		lc.done.Store(true)
	})
	if lc.err != nil {
		c.mu.Lock()
		if c.conns[key] == lc {
			delete(c.conns, key) // a later Connect (after reset_connection, a reboot) dials again
		}
		c.mu.Unlock()
	}
	return lc.conn, lc.err
}

// inventoryUser is the login user the inventory gives host ("" when it gives none or does
// not know the host).
func (c *connector) inventoryUser(host string) string {
	h := c.inv.Host(host)
	if h == nil {
		return ""
	}
	ic, err := h.Connection()
	if err != nil {
		return ""
	}
	return ic.User
}

// forget drops the connection under key if it is still conn, so that the next Connect
// dials again (meta: reset_connection, the reboot module).
func (c *connector) forget(key string, conn *transport.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if lc := c.conns[key]; lc != nil && lc.conn == conn {
		delete(c.conns, key)
	}
}

func (c *connector) dial(ctx context.Context, name, user string, vars map[string]any) (*transport.Conn, error) {
	cfg, err := c.config(name, vars)
	if err != nil {
		return nil, err
	}
	if user != "" {
		cfg.User = user
	}
	return transport.Dial(ctx, cfg)
}

// config turns the host's connection variables into a transport.Config: the inventory's,
// or, for a host the inventory does not declare, vars (the engine's, from add_host).
func (c *connector) config(name string, vars map[string]any) (transport.Config, error) {
	h := c.inv.Host(name)
	if h == nil && vars == nil {
		return transport.Config{}, fmt.Errorf("%s: not in the inventory", name)
	}
	if h == nil {
		h = inventory.HostFromVars(name, vars)
	}
	ic, err := h.Connection()
	if err != nil {
		return transport.Config{}, err
	}
	cfg := transport.Config{Name: name, Host: ic.Host, Port: ic.Port, User: ic.User,
		KnownHostsFile: c.knownHosts, AcceptNew: c.acceptNew, Become: ic.Become, Files: c.files, Relay: c.relay, Logger: c.log}
	if ic.PrivateKeyFile != "" {
		cfg.KeyFiles = []string{ic.PrivateKeyFile}
	}
	var jump *transport.Config
	for _, ep := range ic.ProxyJump {
		j := cfg
		j.Name, j.Host, j.Port, j.User, j.Jump, j.Become = name+" via "+ep.Host, ep.Host, ep.Port, ep.User, jump, false
		if j.User == "" {
			j.User = cfg.User
		}
		jj := j
		jump = &jj
	}
	cfg.Jump = jump
	return cfg, nil
}

// close stops the hosts' lenders and closes every connection of the run.
func (c *connector) close() {
	c.relay.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, lc := range c.conns {
		if lc.conn != nil {
			lc.conn.Close()
		}
	}
}

// connAdapter is a transport.Conn seen as a playbooks.Conn; Close (the engine's
// reset_connection) closes it and makes the connector dial again next time.
type connAdapter struct {
	c      *transport.Conn
	forget func()
}

// Close forgets and closes the connection.
func (a connAdapter) Close() error {
	if a.forget != nil {
		a.forget()
	}
	return a.c.Close()
}

func (a connAdapter) Run(ctx context.Context, cmd string, stdin io.Reader, become bool) ([]byte, []byte, int, error) {
	res, err := a.c.Run(ctx, cmd, transport.RunOptions{Stdin: stdin, Become: become})
	return res.Stdout, res.Stderr, res.ExitCode, err
}

func (a connAdapter) Push(ctx context.Context, local, remote string, mode fs.FileMode) (bool, error) {
	return a.c.Push(ctx, local, remote, os.FileMode(mode))
}
