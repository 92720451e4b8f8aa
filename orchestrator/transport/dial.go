package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// preferredCiphers puts AES-GCM first: with AES-NI it costs a fraction of chacha20-poly1305
// on both ends, and pushes of large binaries are bound by encryption.
var preferredCiphers = []string{
	ssh.CipherAES128GCM, ssh.CipherAES256GCM, ssh.CipherChaCha20Poly1305,
	ssh.CipherAES128CTR, ssh.CipherAES256CTR,
}

// Dial connects and authenticates to the host described by cfg, through cfg.Jump when
// set. Errors start with the host's name and wrap ErrUnreachable, ErrAuth,
// ErrUnknownHost or ErrHostKeyMismatch.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var jump *Conn
	if cfg.Jump != nil {
		jc := *cfg.Jump
		if jc.Files == nil {
			jc.Files = cfg.Files
		}
		if jc.Logger == nil {
			jc.Logger = cfg.Logger
		}
		if jump, err = Dial(ctx, jc); err != nil {
			return nil, fmt.Errorf("%s: via jump host: %w", cfg.Name, err)
		}
	}
	client, err := connect(ctx, cfg, jump)
	if err != nil {
		if jump != nil {
			jump.Close()
		}
		return nil, err
	}
	return newConn(cfg, client, jump), nil
}

// connect opens the transport (TCP, or a channel through the jump host) and runs the
// SSH handshake within cfg.Timeout.
func connect(ctx context.Context, cfg Config, jump *Conn) (*ssh.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	start := time.Now()
	addr := cfg.Address()
	nc, err := dialNet(ctx, addr, jump)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: connecting to %s: %w", cfg.Name, ErrUnreachable, addr, err)
	}
	cr, err := loadCredentials(cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	defer cr.close()
	hk := &hostKeys{name: cfg.Name, file: cfg.KnownHostsFile, acceptNew: cfg.AcceptNew,
		log: func(msg string, args ...any) { cfg.Logger.Info(msg, append([]any{"host", cfg.Name}, args...)...) }}
	cc := &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              cr.authMethods(),
		HostKeyCallback:   hk.callback,
		HostKeyAlgorithms: hk.algorithms(addr),
		Timeout:           cfg.Timeout,
		Config:            ssh.Config{Ciphers: preferredCiphers},
	}
	c, chans, reqs, err := handshake(ctx, nc, addr, cc)
	if err != nil {
		nc.Close()
		return nil, classifyHandshake(ctx, cfg, hk, err)
	}
	cfg.Logger.Debug("connected", "host", cfg.Name, "addr", addr, "user", cfg.User, "via_jump", jump != nil,
		"ms", float64(time.Since(start).Microseconds())/1000)
	return ssh.NewClient(c, chans, reqs), nil
}

// dialNet opens the byte stream to addr: direct TCP (acking at once, see withQuickAck), or a
// forwarded channel via jump.
func dialNet(ctx context.Context, addr string, jump *Conn) (net.Conn, error) {
	if jump != nil {
		return jump.client.DialContext(ctx, "tcp", addr)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return withQuickAck(nc), nil
}

// handshake runs ssh.NewClientConn, closing nc when ctx ends first (channels through a
// jump host do not support deadlines).
func handshake(ctx context.Context, nc net.Conn, addr string, cc *ssh.ClientConfig) (ssh.Conn, <-chan ssh.NewChannel, <-chan *ssh.Request, error) {
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	return ssh.NewClientConn(nc, addr, cc)
}

// classifyHandshake maps a handshake failure to a sentinel error.
func classifyHandshake(ctx context.Context, cfg Config, hk *hostKeys, err error) error {
	if v := hk.verdict(); v != nil {
		return v
	}
	switch {
	case strings.Contains(err.Error(), "unable to authenticate"):
		return fmt.Errorf("%s: %w: server refused the offered keys for user %q", cfg.Name, ErrAuth, cfg.User)
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w: ssh handshake with %s: %w", cfg.Name, ErrUnreachable, cfg.Address(), ctx.Err())
	case isNetworkError(err):
		return fmt.Errorf("%s: %w: ssh handshake with %s: %w", cfg.Name, ErrUnreachable, cfg.Address(), err)
	default:
		return fmt.Errorf("%s: ssh handshake with %s: %w", cfg.Name, cfg.Address(), err)
	}
}

// isNetworkError reports errors that mean the peer went away.
func isNetworkError(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.As(err, &ne)
}

// keepAlive sends keepalive requests every interval and closes the client when one gets
// no answer within the interval, so sessions on a dead connection fail quickly.
func keepAlive(client *ssh.Client, interval time.Duration, done <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		replied := make(chan error, 1)
		go func() {
			_, _, err := client.SendRequest("keepalive@openssh.com", true, nil)
			replied <- err
		}()
		select {
		case err := <-replied:
			if err != nil {
				client.Close()
				return
			}
		case <-time.After(interval):
			client.Close()
			return
		case <-done:
			return
		}
	}
}
