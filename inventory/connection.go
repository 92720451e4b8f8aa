package inventory

import (
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultSSHPort is the port used when ansible_port is unset.
const DefaultSSHPort = 22

// Connection is how orch reaches a host over SSH, read from Ansible's
// connection variables.
type Connection struct {
	// Host is the address to connect to: ansible_host (or the older
	// ansible_ssh_host), else the inventory hostname.
	Host string
	// Port is ansible_port (or ansible_ssh_port); default 22.
	Port int
	// User is ansible_user (or ansible_ssh_user); empty means the caller's
	// default user.
	User string
	// PrivateKeyFile is ansible_ssh_private_key_file (or
	// ansible_private_key_file) with a leading ~/ expanded; empty when unset.
	// Where Ansible has two names for a variable and both are set, the
	// ansible_ssh_ one wins, as in Ansible.
	PrivateKeyFile string
	// Become is ansible_become (yes/no/true/false/1/0...): run privileged
	// commands through sudo.
	Become bool
	// BecomeUser is ansible_become_user; default root.
	BecomeUser string
	// ProxyJump lists the bastions to go through, first hop first:
	// orch_proxy_jump (user@host:port) when set, else a ProxyJump (-J or
	// -o ProxyJump=...) in ansible_ssh_common_args or ansible_ssh_extra_args.
	ProxyJump []Endpoint
}

// Address returns Host:Port for dialing.
func (c Connection) Address() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// Endpoint is one SSH hop.
type Endpoint struct {
	// User is the login user; empty means the caller's default user.
	User string
	// Host is the host name or address.
	Host string
	// Port is the SSH port; default 22.
	Port int
}

// Address returns Host:Port for dialing.
func (e Endpoint) Address() string { return net.JoinHostPort(e.Host, strconv.Itoa(e.Port)) }

// Connection returns the host's SSH connection settings. Errors name the
// host, the variable and the file:line where it was set.
func (h *Host) Connection() (Connection, error) {
	r := varReader{h: h}
	c := Connection{Host: h.Name, Port: DefaultSSHPort, BecomeUser: "root"}
	if v, ok := r.str("ansible_host", "ansible_ssh_host"); ok && v != "" {
		c.Host = v
	}
	if p, ok := r.port("ansible_port", "ansible_ssh_port"); ok {
		c.Port = p
	}
	c.User, _ = r.str("ansible_user", "ansible_ssh_user")
	if k, ok := r.str("ansible_private_key_file", "ansible_ssh_private_key_file"); ok {
		c.PrivateKeyFile = expandHome(k)
	}
	c.Become, _ = r.boolean("ansible_become")
	if u, ok := r.str("ansible_become_user"); ok && u != "" {
		c.BecomeUser = u
	}
	c.ProxyJump = r.proxyJump()
	return c, r.err
}

// varReader reads typed host variables and keeps the first error.
type varReader struct {
	h   *Host
	err error
}

// lookup returns the last of names that is set to something other than
// null: like Ansible's config resolution (ConfigManager._loop_entries), a
// later alias wins, so ansible_ssh_user beats ansible_user.
func (r *varReader) lookup(names ...string) (string, any, bool) {
	for i := len(names) - 1; i >= 0; i-- {
		if v, ok := r.h.merged.vals[names[i]]; ok && v != nil {
			return names[i], v, true
		}
	}
	return "", nil, false
}

func (r *varReader) fail(name, format string, args ...any) {
	if r.err == nil {
		r.err = errAt(r.h.merged.pos[name], hostSubject(r.h.Name)+": "+name, ErrBadValue, format, args...)
	}
}

// str reads a scalar as a string (numbers are formatted; null is unset).
func (r *varReader) str(names ...string) (string, bool) {
	name, v, ok := r.lookup(names...)
	if !ok || v == nil {
		return "", false
	}
	s, ok := scalarString(v)
	if !ok {
		r.fail(name, ": want a string, got %s", describe(v))
	}
	return s, ok
}

func (r *varReader) port(names ...string) (int, bool) {
	name, v, ok := r.lookup(names...)
	if !ok || v == nil {
		return 0, false
	}
	p, ok := toInt(v)
	if !ok || p < 1 || p > math.MaxUint16 {
		r.fail(name, ": %s is not a port number (1-65535)", describe(v))
		return 0, false
	}
	return p, true
}

func (r *varReader) boolean(name string) (bool, bool) {
	_, v, ok := r.lookup(name)
	if !ok || v == nil {
		return false, false
	}
	b, ok := ansibleBool(v)
	if !ok {
		r.fail(name, ": %s is not a boolean (use yes/no, true/false, on/off or 1/0)", describe(v))
	}
	return b, ok
}

// ansibleBool converts a value with Ansible's truthiness
// (module_utils.parsing.convert_bool.boolean, strict).
func ansibleBool(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case int:
		return x == 1, x == 0 || x == 1
	case float64:
		return x == 1, x == 0 || x == 1
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "y", "yes", "on", "1", "true", "t":
			return true, true
		case "n", "no", "off", "0", "false", "f":
			return false, true
		}
	}
	return false, false
}

func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case int:
		return strconv.Itoa(x), true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case nil:
		return "null"
	default:
		return fmt.Sprint(x)
	}
}

func expandHome(p string) string {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return p
	}
	return filepath.Join(home, p[1:])
}

// proxyJump reads orch_proxy_jump, else a ProxyJump in the ssh args.
func (r *varReader) proxyJump() []Endpoint {
	if s, ok := r.str("orch_proxy_jump"); ok && s != "" {
		eps, err := parseJumps(s)
		if err != nil {
			r.fail("orch_proxy_jump", " %q: %v", s, err)
		}
		return eps
	}
	for _, name := range []string{"ansible_ssh_common_args", "ansible_ssh_extra_args"} {
		s, ok := r.str(name)
		if !ok || s == "" {
			continue
		}
		jump, err := jumpFromSSHArgs(s)
		if err != nil {
			r.fail(name, " %q: %v", s, err)
			return nil
		}
		if jump == "" || strings.EqualFold(jump, "none") {
			continue
		}
		eps, err := parseJumps(jump)
		if err != nil {
			r.fail(name, " %q: %v", s, err)
		}
		return eps
	}
	return nil
}

// jumpFromSSHArgs finds the ProxyJump value in ssh command-line arguments:
// -J VALUE, -JVALUE, -o ProxyJump=VALUE or -o "ProxyJump VALUE". A
// ProxyCommand is refused: orch cannot run it.
func jumpFromSSHArgs(args string) (string, error) {
	toks, _, err := splitWords(args)
	if err != nil {
		return "", err
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i].text
		var opt string
		switch {
		case t == "-J" || t == "-o":
			if i+1 >= len(toks) {
				return "", fmt.Errorf("%s needs a value", t)
			}
			i++
			if t == "-J" {
				return toks[i].text, nil
			}
			opt = toks[i].text
		case strings.HasPrefix(t, "-J"):
			return t[2:], nil
		case strings.HasPrefix(t, "-o"):
			opt = t[2:]
		default:
			continue
		}
		key, val := splitSSHOption(opt)
		switch strings.ToLower(key) {
		case "proxyjump":
			return val, nil
		case "proxycommand":
			return "", fmt.Errorf("ProxyCommand is not supported, set orch_proxy_jump (user@host:port) instead")
		}
	}
	return "", nil
}

// splitSSHOption splits "Key=Value" or "Key Value".
func splitSSHOption(opt string) (string, string) {
	opt = strings.TrimSpace(opt)
	i := strings.IndexAny(opt, "= \t")
	if i < 0 {
		return opt, ""
	}
	return opt[:i], strings.TrimLeft(opt[i:], "= \t")
}

// parseJumps parses a comma-separated list of [user@]host[:port] or
// ssh://[user@]host[:port] hops.
func parseJumps(s string) ([]Endpoint, error) {
	var out []Endpoint
	for _, part := range strings.Split(s, ",") {
		ep, err := parseEndpoint(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		out = append(out, ep)
	}
	return out, nil
}

func parseEndpoint(s string) (Endpoint, error) {
	s = strings.TrimPrefix(s, "ssh://")
	ep := Endpoint{Port: DefaultSSHPort}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		ep.User, s = s[:i], s[i+1:]
	}
	ep.Host = s
	if host, port, err := net.SplitHostPort(s); err == nil {
		p, perr := strconv.Atoi(port)
		if perr != nil || p < 1 || p > math.MaxUint16 {
			return ep, fmt.Errorf("bad port %q", port)
		}
		ep.Host, ep.Port = host, p
	} else if strings.Count(s, ":") == 1 || strings.HasPrefix(s, "[") {
		return ep, fmt.Errorf("bad host:port %q", s)
	}
	if ep.Host == "" || strings.ContainsAny(ep.Host, " \t/@") {
		return ep, fmt.Errorf("bad host %q (want [user@]host[:port])", ep.Host)
	}
	return ep, nil
}

// HostFromVars is a host known only by its variables (a host a playbook's add_host made,
// which no inventory file declares), for reading its connection settings the same way.
func HostFromVars(name string, vars map[string]any) *Host {
	h := &Host{Name: name}
	for k, v := range vars {
		h.merged.set(k, v, Pos{})
	}
	return h
}
