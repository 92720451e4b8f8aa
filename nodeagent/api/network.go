package api

import (
	"context"
	"net/http"
	"net/url"
)

// NetworkInfo is GET /1.0/networks/{name}: the definition, its status and the members
// where it exists. With ?target=MEMBER, Config also holds that member's node-specific keys.
type NetworkInfo struct {
	Network `yaml:",inline"`
	// Managed is true for networks orch made (always, in this API).
	Managed bool `json:"managed" yaml:"managed"`
	// Status is Pending, Created or Errored.
	Status string `json:"status" yaml:"status"`
	// Locations are the members where the network is defined or created.
	Locations []string `json:"locations" yaml:"locations"`
	// Message explains an Errored status.
	Message string `json:"message,omitempty" yaml:"message,omitempty"`
	// UsedBy lists the URLs of what uses the network, as LXD's: the profiles whose nic devices
	// name it and the instances made from them.
	UsedBy []string `json:"used_by" yaml:"used_by"`
}

// NetworkPut is the editable part of a network (PUT/PATCH /1.0/networks/NAME), as LXD's.
type NetworkPut struct {
	Description string            `json:"description" yaml:"description"`
	Config      map[string]string `json:"config" yaml:"config"`
}

// Writable is the editable part of n.
func (n NetworkInfo) Writable() NetworkPut {
	return NetworkPut{Description: n.Description, Config: n.Config}
}

func networkPath(name string) string { return "/1.0/networks/" + url.PathEscape(name) }

// CreateNetwork defines a network on target (node-specific keys only; it stays Pending) or,
// with target "", creates it on every member.
func (c *Client) CreateNetwork(ctx context.Context, n Network, target string) error {
	_, err := c.Call(ctx, http.MethodPost, withTarget("/1.0/networks", target), n, nil, "")
	return err
}

// Networks lists the cluster's networks with status and locations.
func (c *Client) Networks(ctx context.Context) ([]NetworkInfo, error) {
	var out []NetworkInfo
	_, err := c.Call(ctx, http.MethodGet, "/1.0/networks?recursion=1", nil, &out, "")
	return out, err
}

// NetworkByName returns one network; target shows that member's keys and status.
func (c *Client) NetworkByName(ctx context.Context, name, target string) (*NetworkInfo, error) {
	var out NetworkInfo
	_, err := c.Call(ctx, http.MethodGet, withTarget(networkPath(name), target), nil, &out, "")
	return &out, err
}

// DeleteNetwork deletes a network on every member.
func (c *Client) DeleteNetwork(ctx context.Context, name string) error {
	_, err := c.Call(ctx, http.MethodDelete, networkPath(name), nil, nil, "")
	return err
}

// NetworkState is GET /1.0/networks/{name}/state (`lxc network info`), as LXD's: the
// interface's live state on one member (the one asked, or ?target=).
type NetworkState struct {
	Addresses []NetworkStateAddress `json:"addresses" yaml:"addresses"`
	Counters  NetworkStateCounters  `json:"counters" yaml:"counters"`
	Hwaddr    string                `json:"hwaddr" yaml:"hwaddr"`
	Mtu       int                   `json:"mtu" yaml:"mtu"`
	// State is "up" or "down".
	State string `json:"state" yaml:"state"`
	// Type is "broadcast", "loopback", "point-to-point" or "unknown".
	Type   string              `json:"type" yaml:"type"`
	Bridge *NetworkStateBridge `json:"bridge" yaml:"bridge"`
}

// NetworkStateAddress is one address of a network's interface.
type NetworkStateAddress struct {
	Family  string `json:"family" yaml:"family"`
	Address string `json:"address" yaml:"address"`
	Netmask string `json:"netmask" yaml:"netmask"`
	Scope   string `json:"scope" yaml:"scope"`
}

// NetworkStateCounters are a network interface's traffic counters.
type NetworkStateCounters struct {
	BytesReceived   int64 `json:"bytes_received" yaml:"bytes_received"`
	BytesSent       int64 `json:"bytes_sent" yaml:"bytes_sent"`
	PacketsReceived int64 `json:"packets_received" yaml:"packets_received"`
	PacketsSent     int64 `json:"packets_sent" yaml:"packets_sent"`
}

// NetworkStateBridge is the bridge part of a network's state (STP and the forward delay
// are not read: orch makes bridges without STP).
type NetworkStateBridge struct {
	ID            string   `json:"id" yaml:"id"`
	STP           bool     `json:"stp" yaml:"stp"`
	ForwardDelay  uint64   `json:"forward_delay" yaml:"forward_delay"`
	VLANDefault   uint64   `json:"vlan_default" yaml:"vlan_default"`
	VLANFiltering bool     `json:"vlan_filtering" yaml:"vlan_filtering"`
	UpperDevices  []string `json:"upper_devices" yaml:"upper_devices"`
}
