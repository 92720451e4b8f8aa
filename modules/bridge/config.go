package bridge

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
)

// Config is a bridge's configuration, read from LXD's network keys.
type Config struct {
	// IPv4 is the bridge's address with its prefix (ipv4.address), nil for "none".
	IPv4 *net.IPNet
	// IPv6 is the bridge's IPv6 address with its prefix (ipv6.address), nil for none.
	IPv6 *net.IPNet
	// NAT masquerades traffic leaving the IPv4 subnet (ipv4.nat).
	NAT bool
	// DHCP serves IPv4 leases with dnsmasq (ipv4.dhcp, default true when IPv4 is set).
	DHCP bool
	// DHCPRanges are the IPv4 lease ranges (ipv4.dhcp.ranges "A-B,C-D"); empty means
	// the whole subnet but the bridge's address.
	DHCPRanges [][2]net.IP
	// Domain is the DNS domain dnsmasq answers for (dns.domain, default "orch").
	Domain string
	// External are interfaces attached to the bridge (bridge.external_interfaces).
	External []string
	// MTU of the bridge (bridge.mtu), 0 for the kernel's default.
	MTU int
}

// Keys are the network keys ParseConfig understands.
var Keys = []string{"ipv4.address", "ipv4.nat", "ipv4.dhcp", "ipv4.dhcp.ranges", "ipv6.address",
	"dns.domain", "bridge.external_interfaces", "bridge.mtu"}

// FillDefaults sets LXD's values for a new bridge's unset keys, as LXD does when a network
// is created: ipv4.address=auto, and ipv4.nat=true when the address is auto. IPv6 stays off
// unless asked for (ipv6.address=auto or an address): LXD turns it on with ipv6.nat=true
// where the kernel has IPv6, but this bridge does no IPv6 NAT, and a ULA prefix without NAT
// only gives instances addresses that lead nowhere. Callers fill defaults once, at
// creation, and store the result: ParseConfig reads an unset ipv4.address as none, so a
// network stored by an earlier version keeps its configuration.
func FillDefaults(cfg map[string]string) {
	if cfg["ipv4.address"] == "" {
		cfg["ipv4.address"] = "auto"
	}
	if cfg["ipv4.address"] == "auto" && cfg["ipv4.nat"] == "" {
		cfg["ipv4.nat"] = "true"
	}
}

// ParseConfig reads a network's keys; "auto" addresses must have been resolved first
// (AutoIPv4). Errors name the key.
func ParseConfig(cfg map[string]string) (Config, error) {
	c := Config{Domain: "orch", DHCP: true}
	known := map[string]bool{}
	for _, k := range Keys {
		known[k] = true
	}
	for k := range cfg {
		if !known[k] && !strings.HasPrefix(k, "user.") {
			return c, fmt.Errorf("%w: unknown key %q", ErrBadConfig, k)
		}
	}
	var err error
	if c.IPv4, err = parseAddr("ipv4.address", cfg["ipv4.address"], false); err != nil {
		return c, err
	}
	if c.IPv6, err = parseAddr("ipv6.address", cfg["ipv6.address"], true); err != nil {
		return c, err
	}
	if c.NAT, err = parseBool("ipv4.nat", cfg["ipv4.nat"], false); err != nil {
		return c, err
	}
	if c.DHCP, err = parseBool("ipv4.dhcp", cfg["ipv4.dhcp"], true); err != nil {
		return c, err
	}
	if c.DHCPRanges, err = parseRanges(cfg["ipv4.dhcp.ranges"], c.IPv4); err != nil {
		return c, err
	}
	if d := cfg["dns.domain"]; d != "" {
		c.Domain = d
	}
	if m := cfg["bridge.mtu"]; m != "" {
		if c.MTU, err = strconv.Atoi(m); err != nil || c.MTU < 576 || c.MTU > 65535 {
			return c, fmt.Errorf("%w: bridge.mtu %q (576-65535)", ErrBadConfig, m)
		}
	}
	for _, e := range strings.Split(cfg["bridge.external_interfaces"], ",") {
		if e = strings.TrimSpace(e); e != "" {
			c.External = append(c.External, e)
		}
	}
	return c, nil
}

func parseAddr(key, v string, v6 bool) (*net.IPNet, error) {
	switch v {
	case "", "none":
		return nil, nil
	case "auto":
		return nil, fmt.Errorf("%w: %s is \"auto\": resolve it first", ErrBadConfig, key)
	}
	ip, n, err := net.ParseCIDR(v)
	if err != nil || (ip.To4() == nil) != v6 {
		return nil, fmt.Errorf("%w: %s %q is not an %s address in CIDR form (or none/auto)", ErrBadConfig, key, v, map[bool]string{false: "IPv4", true: "IPv6"}[v6])
	}
	if ip.Equal(n.IP) {
		return nil, fmt.Errorf("%w: %s %q is the network address; give the bridge's own address (e.g. .1)", ErrBadConfig, key, v)
	}
	n.IP = ip
	return n, nil
}

func parseBool(key, v string, def bool) (bool, error) {
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%w: %s %q is not a boolean", ErrBadConfig, key, v)
	}
	return b, nil
}

func parseRanges(v string, subnet *net.IPNet) ([][2]net.IP, error) {
	var out [][2]net.IP
	for _, r := range strings.Split(v, ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		a, b, ok := strings.Cut(r, "-")
		lo, hi := net.ParseIP(strings.TrimSpace(a)).To4(), net.ParseIP(strings.TrimSpace(b)).To4()
		if !ok || lo == nil || hi == nil || subnet == nil || !subnet.Contains(lo) || !subnet.Contains(hi) {
			return nil, fmt.Errorf("%w: ipv4.dhcp.ranges %q: want START-END inside ipv4.address", ErrBadConfig, r)
		}
		out = append(out, [2]net.IP{lo, hi})
	}
	return out, nil
}

// defaultRange is LXD's default lease range: the subnet's third address to the last
// before broadcast.
func defaultRange(n *net.IPNet) [2]net.IP {
	base := n.IP.Mask(n.Mask).To4()
	ones, bits := n.Mask.Size()
	size := uint32(1) << uint(bits-ones)
	return [2]net.IP{ipAdd(base, 2), ipAdd(base, size-2)}
}

func ipToU32(ip net.IP) uint32 {
	ip = ip.To4()
	return uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
}

func ipAdd(ip net.IP, n uint32) net.IP {
	v := ipToU32(ip) + n
	return net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v)).To4()
}

// AutoIPv4 picks a 10.X.Y.1/24 that overlaps no address or route visible through h, as
// LXD's ipv4.address=auto does.
func AutoIPv4(h *netlink.Handle) (string, error) {
	var used []*net.IPNet
	addrs, err := h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return "", fmt.Errorf("listing addresses: %w", err)
	}
	for _, a := range addrs {
		used = append(used, a.IPNet)
	}
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return "", fmt.Errorf("listing routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst != nil && !r.Dst.IP.IsUnspecified() {
			used = append(used, r.Dst)
		}
	}
	for range 1000 {
		cand := &net.IPNet{IP: net.IPv4(10, byte(rand.IntN(256)), byte(rand.IntN(256)), 0).To4(), Mask: net.CIDRMask(24, 32)}
		if !overlaps(cand, used) {
			return net.IPv4(cand.IP[0], cand.IP[1], cand.IP[2], 1).String() + "/24", nil
		}
	}
	return "", fmt.Errorf("%w: no free 10.x.y.0/24 for ipv4.address=auto", ErrBadConfig)
}

func overlaps(n *net.IPNet, used []*net.IPNet) bool {
	for _, u := range used {
		if u != nil && (u.Contains(n.IP) || n.Contains(u.IP)) {
			return true
		}
	}
	return false
}
