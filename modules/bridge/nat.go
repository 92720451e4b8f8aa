package bridge

import (
	"context"
	"fmt"
	"strings"
)

// TableName is the nftables table (family ip) holding network name's NAT rules.
func TableName(name string) string { return "orch_" + strings.ReplaceAll(name, "-", "_") }

// applyNAT writes (atomically replacing) or removes the network's table.
func (m *Manager) applyNAT(ctx context.Context, name string, cfg Config) error {
	if !cfg.NAT || cfg.IPv4 == nil {
		return m.deleteNAT(ctx, name)
	}
	if err := m.run(ctx, "", "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"); err != nil {
		return fmt.Errorf("ipv4.nat: %w", err)
	}
	if err := m.run(ctx, natRules(name, cfg), "nft", "-f", "-"); err != nil {
		return fmt.Errorf("ipv4.nat: %w", err)
	}
	return nil
}

// natRules is the nft script: declare, flush by deleting, and recreate the table in one
// transaction.
func natRules(name string, cfg Config) string {
	t := TableName(name)
	subnet := cfg.IPv4.IP.Mask(cfg.IPv4.Mask).String() + "/" + fmt.Sprint(ones(cfg))
	return fmt.Sprintf(`table ip %[1]s {}
delete table ip %[1]s
table ip %[1]s {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr %[2]s ip daddr != %[2]s masquerade
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname "%[3]s" accept
		oifname "%[3]s" accept
	}
}
`, t, subnet, name)
}

func ones(cfg Config) int {
	o, _ := cfg.IPv4.Mask.Size()
	return o
}

// deleteNAT removes the network's table if present.
func (m *Manager) deleteNAT(ctx context.Context, name string) error {
	if err := m.run(ctx, "", "nft", "list", "table", "ip", TableName(name)); err != nil {
		return nil // absent (or no nft: nothing of ours can exist)
	}
	return m.run(ctx, "", "nft", "delete", "table", "ip", TableName(name))
}
