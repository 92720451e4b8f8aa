package template

import (
	"fmt"
	"net/netip"
	"strings"
)

// The ansible.utils IP filters the corpus uses: ipaddr (with a query: net,
// address, prefix, netmask, network, broadcast, host, public/private,
// size, a host index, or a network to test membership), ipv4, ipv6, ipwrap.
func init() {
	for name, f := range map[string]fn{
		"ipaddr": fIPAddr(0),
		"ipv4":   fIPAddr(4),
		"ipv6":   fIPAddr(6),
		"ipwrap": fIPWrap,
	} {
		filterTable[name] = f
	}
}

// fIPAddr filters a value (or each element of a list) as ansible.utils'
// ipaddr does: an invalid address gives false (dropped from lists).
func fIPAddr(version int) fn {
	return func(p ...any) (any, error) {
		query := ""
		if len(p) > 1 {
			query = String(p[1])
		}
		if l, ok := p[0].([]any); ok {
			out := []any{}
			for _, e := range l {
				if v := ipQuery(String(e), query, version); v != false {
					out = append(out, v)
				}
			}
			return out, nil
		}
		return ipQuery(String(p[0]), query, version), nil
	}
}

// parseIP reads an address or a prefix; a bare address is a /32 or /128.
func parseIP(s string) (netip.Prefix, bool, bool) {
	s = strings.TrimSpace(s)
	if pfx, err := netip.ParsePrefix(s); err == nil {
		return pfx, true, true
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), false, true
	}
	return netip.Prefix{}, false, false
}

func ipQuery(s, query string, version int) any {
	pfx, hasPrefix, ok := parseIP(s)
	if !ok || version == 4 && !pfx.Addr().Is4() || version == 6 && !pfx.Addr().Is6() {
		return false
	}
	a := pfx.Addr()
	switch query {
	case "":
		return s
	case "address":
		return a.String()
	case "net", "network/prefix", "subnet", "cidr":
		if query == "net" && !hasPrefix {
			return false
		}
		return pfx.Masked().String()
	case "network":
		return pfx.Masked().Addr().String()
	case "prefix":
		return pfx.Bits()
	case "netmask":
		return maskAddr(pfx.Bits(), a.BitLen()).String()
	case "host", "host/prefix", "address/prefix":
		return pfx.String()
	case "broadcast":
		if !a.Is4() {
			return false
		}
		return lastAddr(pfx).String()
	case "size":
		return 1 << (a.BitLen() - pfx.Bits())
	case "private":
		if a.IsPrivate() {
			return s
		}
		return false
	case "public":
		if !a.IsPrivate() && !a.IsLoopback() && !a.IsLinkLocalUnicast() {
			return s
		}
		return false
	case "ipv4", "ipv6":
		if query == "ipv4" && a.Is4() || query == "ipv6" && a.Is6() {
			return s
		}
		return false
	}
	var n int
	if _, err := fmt.Sscanf(query, "%d", &n); err == nil && fmt.Sprint(n) == query {
		return nthHost(pfx, n)
	}
	if net, _, ok := parseIP(query); ok {
		if net.Contains(a) && net.Bits() <= pfx.Bits() {
			return s
		}
		return false
	}
	return false
}

func maskAddr(bits, total int) netip.Addr {
	b := make([]byte, total/8)
	for i := 0; i < bits; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func lastAddr(pfx netip.Prefix) netip.Addr {
	b := pfx.Masked().Addr().AsSlice()
	for i := pfx.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// nthHost is the n-th address of the network (negative: from the end), with its prefix.
func nthHost(pfx netip.Prefix, n int) any {
	a, steps := pfx.Masked().Addr(), n
	if n < 0 {
		a, steps = lastAddr(pfx), -n-1 // -1 is the last address, as a Python index
	}
	for i := 0; i < steps; i++ {
		if n > 0 {
			a = a.Next()
		} else {
			a = a.Prev()
		}
		if !a.IsValid() || !pfx.Contains(a) {
			return false
		}
	}
	return netip.PrefixFrom(a, pfx.Bits()).String()
}

// fIPWrap puts IPv6 addresses in brackets (for URLs and host:port).
func fIPWrap(p ...any) (any, error) {
	wrap := func(s string) string {
		if a, err := netip.ParseAddr(s); err == nil && a.Is6() {
			return "[" + s + "]"
		}
		if pfx, err := netip.ParsePrefix(s); err == nil && pfx.Addr().Is6() {
			return "[" + pfx.Addr().String() + "]/" + fmt.Sprint(pfx.Bits())
		}
		return s
	}
	if l, ok := p[0].([]any); ok {
		out := make([]any, len(l))
		for i, e := range l {
			out[i] = wrap(String(e))
		}
		return out, nil
	}
	return wrap(String(p[0])), nil
}
