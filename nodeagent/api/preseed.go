package api

import (
	"fmt"
	"sort"
	"strings"
)

// Preseed is the document `nodeagent init --preseed` reads: the format of LXD's
// `lxd init --preseed` as the clustering guide shows it.
type Preseed struct {
	Config       map[string]string `json:"config,omitempty" yaml:"config,omitempty"`
	StoragePools []StoragePool     `json:"storage_pools,omitempty" yaml:"storage_pools,omitempty"`
	Networks     []Network         `json:"networks,omitempty" yaml:"networks,omitempty"`
	Profiles     []Profile         `json:"profiles,omitempty" yaml:"profiles,omitempty"`
	Cluster      *ClusterPut       `json:"cluster,omitempty" yaml:"cluster,omitempty"`
}

// StoragePool is a storage pool definition as a preseed or POST /1.0/storage-pools carries it.
type StoragePool struct {
	Name        string            `json:"name" yaml:"name"`
	Driver      string            `json:"driver" yaml:"driver"`
	Description string            `json:"description,omitempty" yaml:"description,omitempty"`
	Config      map[string]string `json:"config" yaml:"config,omitempty"`
}

// Network is a network definition as a preseed carries it.
type Network struct {
	Name        string            `json:"name" yaml:"name"`
	Type        string            `json:"type,omitempty" yaml:"type,omitempty"`
	Description string            `json:"description,omitempty" yaml:"description,omitempty"`
	Config      map[string]string `json:"config" yaml:"config,omitempty"`
}

// Profile is a profile definition as a preseed carries it.
type Profile struct {
	Name        string                       `json:"name" yaml:"name"`
	Description string                       `json:"description,omitempty" yaml:"description,omitempty"`
	Config      map[string]string            `json:"config" yaml:"config,omitempty"`
	Devices     map[string]map[string]string `json:"devices" yaml:"devices,omitempty"`
}

// ProfileInfo is GET /1.0/profiles/NAME, as LXD's: the profile and the URLs of the
// instances using it.
type ProfileInfo struct {
	Profile `yaml:",inline"`
	UsedBy  []string `json:"used_by" yaml:"used_by"`
}

// ParsePreseed decodes a preseed strictly; errors name file:line:col and the key.
func ParsePreseed(file string, data []byte) (*Preseed, error) {
	var p Preseed
	if err := DecodeStrict(file, data, &p); err != nil {
		return nil, err
	}
	if err := p.checkNames(file); err != nil {
		return nil, err
	}
	return &p, nil
}

func (p *Preseed) checkNames(file string) error {
	seen := map[string]bool{}
	for i, sp := range p.StoragePools {
		if err := uniqueName(seen, "storage_pools", i, sp.Name, "pool"); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if sp.Driver == "" {
			return fmt.Errorf("%s: storage_pools[%d] (%s): driver is required", file, i, sp.Name)
		}
	}
	for i, n := range p.Networks {
		if err := uniqueName(seen, "networks", i, n.Name, "network"); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
	}
	for i, pr := range p.Profiles {
		if err := uniqueName(seen, "profiles", i, pr.Name, "profile"); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
	}
	return nil
}

func uniqueName(seen map[string]bool, section string, i int, name, kind string) error {
	if name == "" {
		return fmt.Errorf("%s[%d]: name is required", section, i)
	}
	key := kind + "/" + name
	if seen[key] {
		return fmt.Errorf("%s[%d]: duplicate %s %q", section, i, kind, name)
	}
	seen[key] = true
	return nil
}

// NodeSpecificPoolKeys are the storage pool keys that may differ between members.
var NodeSpecificPoolKeys = []string{"source", "size", "zfs.pool_name", "lvm.vg_name", "lvm.thinpool_name"}

// NodeSpecificNetworkKeys are the network keys that may differ between members.
var NodeSpecificNetworkKeys = []string{"bridge.external_interfaces"}

// IsNodeSpecific reports whether key may differ between members for the given entity
// ("storage-pool" or "network").
func IsNodeSpecific(entity, key string) bool {
	list := NodeSpecificPoolKeys
	if entity == "network" {
		list = NodeSpecificNetworkKeys
	}
	for _, k := range list {
		if k == key {
			return true
		}
	}
	return false
}

// GlobalConfig returns config without the node-specific keys of entity, sorted keys first.
func GlobalConfig(entity string, config map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range config {
		if !IsNodeSpecific(entity, k) {
			out[k] = v
		}
	}
	return out
}

// DiffConfig names the first key (sorted) whose value differs between a and b, or "".
func DiffConfig(a, b map[string]string) string {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		va, oka := a[k]
		vb, okb := b[k]
		if oka != okb || va != vb {
			return k
		}
	}
	return ""
}

// CertificatePEM undoes the guide's `sed` recipe that doubles newlines so a PEM fits a YAML
// string: blank lines between PEM lines are dropped.
func CertificatePEM(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	return strings.Join(lines, "\n") + "\n"
}
