package orchestrator

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync"

	"orch/inventory"
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
	log        *slog.Logger

	mu    sync.Mutex
	conns map[string]*lazyConn
}

type lazyConn struct {
	once sync.Once
	conn *transport.Conn
	err  error
}

func newConnector(inv *inventory.Inventory, knownHosts string, acceptNew bool, log *slog.Logger) *connector {
	return &connector{inv: inv, knownHosts: knownHosts, acceptNew: acceptNew, log: log,
		files: transport.NewFileCache(), conns: map[string]*lazyConn{}}
}

// Connect returns the host's connection, dialing it once per login user: the engine
// passes ansible_user in h.Vars when a play or task says remote_user.
func (c *connector) Connect(ctx context.Context, h playbooks.Host) (playbooks.Conn, error) {
	user, _ := h.Vars["ansible_user"].(string)
	c.mu.Lock()
	lc := c.conns[h.Name+"\x00"+user]
	if lc == nil {
		lc = &lazyConn{}
		c.conns[h.Name+"\x00"+user] = lc
	}
	c.mu.Unlock()
	lc.once.Do(func() { lc.conn, lc.err = c.dial(ctx, h.Name, user) })
	if lc.err != nil {
		return nil, lc.err
	}
	return connAdapter{lc.conn}, nil
}

func (c *connector) dial(ctx context.Context, name, user string) (*transport.Conn, error) {
	cfg, err := c.config(name)
	if err != nil {
		return nil, err
	}
	if user != "" {
		cfg.User = user
	}
	return transport.Dial(ctx, cfg)
}

// config turns the inventory's connection variables into a transport.Config.
func (c *connector) config(name string) (transport.Config, error) {
	h := c.inv.Host(name)
	if h == nil {
		return transport.Config{}, fmt.Errorf("%s: not in the inventory", name)
	}
	ic, err := h.Connection()
	if err != nil {
		return transport.Config{}, err
	}
	cfg := transport.Config{Name: name, Host: ic.Host, Port: ic.Port, User: ic.User,
		KnownHostsFile: c.knownHosts, AcceptNew: c.acceptNew, Become: ic.Become, Files: c.files, Logger: c.log}
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

// close closes every connection of the run.
func (c *connector) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, lc := range c.conns {
		if lc.conn != nil {
			lc.conn.Close()
		}
	}
}

// connAdapter is a transport.Conn seen as a playbooks.Conn; modules that need more use
// Transport() (controller.Transporter).
type connAdapter struct{ c *transport.Conn }

func (a connAdapter) Run(ctx context.Context, cmd string, stdin io.Reader, become bool) ([]byte, []byte, int, error) {
	res, err := a.c.Run(ctx, cmd, transport.RunOptions{Stdin: stdin, Become: become})
	return res.Stdout, res.Stderr, res.ExitCode, err
}

func (a connAdapter) Push(ctx context.Context, local, remote string, mode fs.FileMode) (bool, error) {
	return a.c.Push(ctx, local, remote, os.FileMode(mode))
}

func (a connAdapter) Transport() *transport.Conn { return a.c }
