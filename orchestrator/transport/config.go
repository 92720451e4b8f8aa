package transport

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Defaults applied by Dial to zero-valued Config fields.
const (
	DefaultPort        = 22
	DefaultTimeout     = 15 * time.Second
	DefaultKeepAlive   = 15 * time.Second
	DefaultMaxSessions = 10
	// AgentNone as Config.AgentSocket disables the ssh-agent (OpenSSH's IdentityAgent none).
	AgentNone = "none"
)

// defaultKeyNames are tried, in order, under ~/.ssh when Config.KeyFiles is empty.
var defaultKeyNames = []string{"id_ed25519", "id_ecdsa", "id_rsa"}

// Config describes how to reach one host. The zero value of every field except Host
// means "the default"; see each field.
type Config struct {
	// Name is the host's inventory name, used to start every error and log line.
	// Default: Host.
	Name string
	// Host is the address or DNS name to connect to (ansible_host). Required.
	Host string
	// Port is the SSH port (ansible_port). Default 22.
	Port int
	// User is the login user (ansible_user). Default: the local user.
	User string
	// KeyFiles are private key files to offer (ansible_ssh_private_key_file). A listed
	// file that is missing is an error. Default: whichever of ~/.ssh/id_ed25519,
	// id_ecdsa and id_rsa exist.
	KeyFiles []string
	// AgentSocket is the ssh-agent socket. Default: $SSH_AUTH_SOCK; AgentNone disables.
	AgentSocket string
	// KnownHostsFile is the OpenSSH known_hosts file. Default ~/.ssh/known_hosts.
	KnownHostsFile string
	// AcceptNew records the key of a host absent from KnownHostsFile and proceeds, like
	// OpenSSH's StrictHostKeyChecking=accept-new. A changed key is always refused.
	AcceptNew bool
	// Jump, when set, is the bastion to connect through (ProxyJump).
	Jump *Config
	// Become runs every command and push as root through `sudo -n` when User is not
	// root (ansible_become). RunOptions.Become asks for it per command.
	Become bool
	// Timeout bounds the TCP connect plus SSH handshake. Default 15s.
	Timeout time.Duration
	// KeepAlive is the interval of keepalive requests that detect a dead peer; a dead
	// connection fails its sessions with ErrUnreachable. Default 15s; negative disables.
	KeepAlive time.Duration
	// MaxSessions caps concurrent sessions on the connection; extra Run and Push calls
	// wait. It must not exceed the server's MaxSessions. Default 10 (OpenSSH's default).
	MaxSessions int
	// PushMethod selects how Push uploads files. Default PushAuto.
	PushMethod PushMethod
	// Files caches file digests and compressed copies; share one across the Conns of a
	// run so a binary is hashed and compressed once. Default: a cache per Conn.
	Files *FileCache
	// Relay, shared between the Conns of a run, lets hosts fetch the files it lends (the
	// agent binary) from hosts that already hold them instead of through this link.
	// Default: none, every push comes from the control node.
	Relay *Relay
	// Logger receives debug logs. Default: discard.
	Logger *slog.Logger
}

// ParseAddress parses an OpenSSH-style destination "[user@]host[:port]" (IPv6 hosts in
// brackets). Missing parts are returned empty or zero.
func ParseAddress(s string) (userName, host string, port int, err error) {
	if i := strings.LastIndex(s, "@"); i >= 0 {
		userName, s = s[:i], s[i+1:]
	}
	host = s
	if h, p, splitErr := net.SplitHostPort(s); splitErr == nil {
		host = h
		port, err = strconv.Atoi(p)
		if err != nil || port <= 0 || port > 65535 {
			return "", "", 0, fmt.Errorf("address %q: invalid port %q", s, p)
		}
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	if host == "" {
		return "", "", 0, fmt.Errorf("address %q: no host", s)
	}
	return userName, host, port, nil
}

// ParseJump parses a ProxyJump destination "[user@]host[:port]" into a Config for the
// bastion that inherits auth and known_hosts settings from base.
func ParseJump(s string, base Config) (*Config, error) {
	u, h, p, err := ParseAddress(s)
	if err != nil {
		return nil, err
	}
	jc := base
	jc.Name, jc.Host, jc.Port, jc.User, jc.Jump, jc.Become = "", h, p, u, nil, false
	if jc.User == "" {
		jc.User = base.User
	}
	return &jc, nil
}

// Address is the "host:port" the Config dials.
func (c Config) Address() string {
	port := c.Port
	if port == 0 {
		port = DefaultPort
	}
	return net.JoinHostPort(c.Host, strconv.Itoa(port))
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if c.Host == "" {
		return errors.New("ssh config: host is empty (ansible_host)")
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("ssh config: %s: port %d out of range (ansible_port)", c.Host, c.Port)
	}
	if c.MaxSessions < 0 {
		return fmt.Errorf("ssh config: %s: max sessions %d is negative", c.Host, c.MaxSessions)
	}
	if c.Jump != nil {
		return c.Jump.Validate()
	}
	return nil
}

// withDefaults fills zero fields from the environment and the constants above.
func (c Config) withDefaults() (Config, error) {
	if c.Name == "" {
		c.Name = c.Host
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.User == "" {
		u, err := user.Current()
		if err != nil {
			return c, fmt.Errorf("%s: no user given and the local user is unknown: %w", c.Name, err)
		}
		c.User = u.Username
	}
	if c.AgentSocket == "" {
		c.AgentSocket = os.Getenv("SSH_AUTH_SOCK")
	}
	if c.KnownHostsFile == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return c, fmt.Errorf("%s: no known_hosts file given and no home directory: %w", c.Name, err)
		}
		c.KnownHostsFile = filepath.Join(home, ".ssh", "known_hosts")
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.Files == nil {
		c.Files = NewFileCache()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}
