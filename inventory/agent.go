package inventory

import (
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Defaults of orch's own host variables.
const (
	// DefaultAgentDir is the agent directory when agent_dir is unset.
	DefaultAgentDir = "/var/lib/nodeagent"
	// DefaultClusterPort is the port of cluster_address when it is unset or
	// has no port.
	DefaultClusterPort = 8443
)

// AgentSettings are orch's own per-host variables for the node agent.
type AgentSettings struct {
	// NodeName is node_name: the member's name in the cluster; default the
	// inventory hostname.
	NodeName string
	// Dir is agent_dir: the agent's directory on the host (absolute, not /:
	// `orch reset --purge` removes it); default /var/lib/nodeagent.
	Dir string
	// ClusterAddress is cluster_address: host:port the agent listens on for
	// cluster and raft traffic; default ansible_host:8443, or the inventory
	// hostname:8443 when ansible_host is unset. A value without a port gets
	// :8443.
	ClusterAddress string
	// ClientAddress is client_address: host:port of the agent's client API
	// (core.https_address), where orch reaches the cluster; default
	// ClusterAddress. A value without a port gets :8443.
	ClientAddress string
	// MemberConfig is member_config: member-specific settings for the
	// preseed, a list of {entity, name, key, value} (description optional).
	MemberConfig []MemberConfig
}

// MemberConfig is one member-specific setting, as in LXD's preseed
// (cluster.member_config).
type MemberConfig struct {
	// Entity is the kind of object, e.g. storage-pool or network (required).
	Entity string
	// Name is the object's name, e.g. the pool name.
	Name string
	// Key is the configuration key, e.g. source (required).
	Key string
	// Value is the member-specific value; numbers and booleans are written
	// as strings.
	Value string
	// Description is an optional human description.
	Description string
}

// memberConfigFields are the keys a member_config entry may have.
var memberConfigFields = []string{"entity", "name", "key", "value", "description"}

// Agent returns orch's agent settings for the host. Errors name the host,
// the variable and the file:line where it was set.
func (h *Host) Agent() (AgentSettings, error) {
	r := varReader{h: h}
	a := AgentSettings{NodeName: h.Name, Dir: DefaultAgentDir}
	if s, ok := r.str("node_name"); ok {
		if !validNodeName(s) {
			r.fail("node_name", " %q: want a non-empty name without blanks, slashes or control characters", s)
		}
		a.NodeName = s
	}
	if s, ok := r.str("agent_dir"); ok {
		switch {
		case !path.IsAbs(s):
			r.fail("agent_dir", " %q: want an absolute path", s)
		case path.Clean(s) == "/":
			r.fail("agent_dir", " %q: want an absolute path other than /", s)
		}
		a.Dir = path.Clean(s)
	}
	a.ClusterAddress = r.clusterAddress()
	a.ClientAddress = r.address("client_address", a.ClusterAddress)
	a.MemberConfig = r.memberConfig()
	return a, r.err
}

func validNodeName(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r == '/'
	})
}

func (r *varReader) clusterAddress() string {
	defHost := r.h.Name
	if s, ok := r.str("ansible_host", "ansible_ssh_host"); ok && s != "" {
		defHost = s
	}
	return r.address("cluster_address", net.JoinHostPort(defHost, strconv.Itoa(DefaultClusterPort)))
}

// address reads the host:port variable name (def when unset or empty); a value without a
// port gets DefaultClusterPort.
func (r *varReader) address(name, def string) string {
	s, ok := r.str(name)
	if !ok || s == "" {
		return def
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if ip := net.ParseIP(strings.Trim(s, "[]")); ip != nil || !strings.Contains(s, ":") {
			return net.JoinHostPort(strings.Trim(s, "[]"), strconv.Itoa(DefaultClusterPort))
		}
		r.fail(name, " %q: want host:port", s)
		return def
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 || host == "" {
		r.fail(name, " %q: want host:port with a port in 1-65535", s)
		return def
	}
	return net.JoinHostPort(host, port)
}

func (r *varReader) memberConfig() []MemberConfig {
	_, v, ok := r.lookup("member_config")
	if !ok || v == nil {
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		r.fail("member_config", ": want a list of {entity, name, key, value}, got %s", describe(v))
		return nil
	}
	var out []MemberConfig
	for i, item := range list {
		mc, msg := memberConfigItem(item)
		if msg != "" {
			r.fail("member_config", "[%d]: %s", i, msg)
			return nil
		}
		out = append(out, mc)
	}
	return out
}

// memberConfigItem converts one entry; msg says what is wrong with it.
func memberConfigItem(item any) (MemberConfig, string) {
	m, ok := item.(map[string]any)
	if !ok {
		return MemberConfig{}, "want a mapping with entity, name, key and value, got " + describe(item)
	}
	f := map[string]string{}
	for k, v := range m {
		if !slices.Contains(memberConfigFields, k) {
			return MemberConfig{}, "unknown field " + strconv.Quote(k) + " (want " + strings.Join(memberConfigFields, ", ") + ")"
		}
		s, ok := scalarString(v)
		if !ok && v != nil {
			return MemberConfig{}, k + ": want a string, got " + describe(v)
		}
		f[k] = s
	}
	for _, req := range []string{"entity", "key"} {
		if f[req] == "" {
			return MemberConfig{}, req + " is required"
		}
	}
	return MemberConfig{Entity: f["entity"], Name: f["name"], Key: f["key"], Value: f["value"], Description: f["description"]}, ""
}
