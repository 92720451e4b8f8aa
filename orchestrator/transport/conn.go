package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// Conn is one authenticated SSH connection to a host. It is safe for concurrent use; at
// most Config.MaxSessions sessions run at once, the others wait their turn.
type Conn struct {
	cfg    Config
	client *ssh.Client
	jump   *Conn
	log    *slog.Logger
	slots  chan struct{} // session semaphore
	done   chan struct{} // closed by Close
	dead   chan struct{} // closed when the SSH connection ends

	sftpOpts []sftp.ClientOption // SFTP client options for pushes

	closeOnce sync.Once
	toolsMu   sync.Mutex
	tools     *remoteTools // probed on first Push
	runners   runners      // long-lived shells for Run (runner.go)

	staleMu sync.Mutex
	stale   map[string]string // remote path → SHA-256 Compare found it does not hold
}

// newConn wraps an authenticated client.
func newConn(cfg Config, client *ssh.Client, jump *Conn) *Conn {
	c := &Conn{
		cfg: cfg, client: client, jump: jump,
		log:      cfg.Logger.With("host", cfg.Name),
		slots:    make(chan struct{}, cfg.MaxSessions),
		done:     make(chan struct{}),
		dead:     make(chan struct{}),
		sftpOpts: sftpOptions,
	}
	go func() {
		client.Wait()
		close(c.dead)
	}()
	if cfg.KeepAlive > 0 {
		go keepAlive(client, cfg.KeepAlive, c.done)
	}
	return c
}

// Name is the host's name as used in errors (Config.Name, default Config.Host).
func (c *Conn) Name() string { return c.cfg.Name }

// Config returns the effective configuration, defaults filled in.
func (c *Conn) Config() Config { return c.cfg }

// Close closes the connection (and the jump host's). Running sessions fail.
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.done)
		err = c.client.Close()
		if c.jump != nil {
			c.jump.Close()
		}
	})
	return err
}

// Lost reports whether the SSH connection has ended (closed here, reset by the host, or
// failed its keepalive); a lost connection never recovers: dial a new one.
func (c *Conn) Lost() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

// DialContext opens a TCP connection from the remote host to addr (like ssh -L), for
// example to reach a service that listens only on the host's loopback.
func (c *Conn) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	nc, err := c.client.DialContext(ctx, network, addr)
	if err != nil {
		return nil, c.wrapErr(fmt.Errorf("forwarding to %s: %w", addr, err))
	}
	return nc, nil
}

// acquire takes a session slot, waiting for ctx.
func (c *Conn) acquire(ctx context.Context) error {
	select {
	case c.slots <- struct{}{}:
		return nil
	case <-c.done:
		return fmt.Errorf("%s: %w", c.cfg.Name, ErrClosed)
	case <-c.dead:
		return fmt.Errorf("%s: %w: connection lost", c.cfg.Name, ErrUnreachable)
	case <-ctx.Done():
		return fmt.Errorf("%s: waiting for a free ssh session: %w", c.cfg.Name, ctx.Err())
	}
}

// release returns a session slot.
func (c *Conn) release() { <-c.slots }

// newSession opens a session, holding a slot until the returned release is called.
func (c *Conn) newSession(ctx context.Context) (*ssh.Session, func(), error) {
	if err := c.acquire(ctx); err != nil {
		return nil, nil, err
	}
	s, err := c.openSession(ctx)
	if err != nil {
		c.release()
		return nil, nil, err
	}
	return s, func() { s.Close(); c.release() }, nil
}

// openSession opens a session channel, retrying while the server refuses it for lack
// of a free session: sshd frees a closed session's slot a moment after our close, so a
// refusal right after a release is normal under load.
func (c *Conn) openSession(ctx context.Context) (*ssh.Session, error) {
	backoff := 5 * time.Millisecond
	deadline := time.Now().Add(c.cfg.Timeout)
	for {
		s, err := c.client.NewSession()
		var oce *ssh.OpenChannelError
		if err == nil || !errors.As(err, &oce) || oce.Reason != ssh.ConnectionFailed || time.Now().After(deadline) {
			if err != nil {
				return nil, c.wrapErr(fmt.Errorf("opening session: %w", err))
			}
			return s, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: opening session: %w (%w)", c.cfg.Name, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// wrapErr prefixes err with the host, marking it ErrClosed or ErrUnreachable when the
// connection is gone.
func (c *Conn) wrapErr(err error) error {
	select {
	case <-c.done:
		return fmt.Errorf("%s: %w: %w", c.cfg.Name, ErrClosed, err)
	default:
	}
	select {
	case <-c.dead:
		return fmt.Errorf("%s: %w: connection lost: %w", c.cfg.Name, ErrUnreachable, err)
	default:
	}
	if isNetworkError(err) {
		return fmt.Errorf("%s: %w: %w", c.cfg.Name, ErrUnreachable, err)
	}
	return fmt.Errorf("%s: %w", c.cfg.Name, err)
}

// becomes reports whether a command must go through sudo.
func (c *Conn) becomes(asked bool) bool {
	return (asked || c.cfg.Become) && c.cfg.User != "root"
}
