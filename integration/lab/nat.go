package lab

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
)

// Debian hosts install packages from the mirror in this machine's apt sources, so their lab
// masquerades the subnet behind this machine's address: one nftables table per lab, named
// like its bridge, removed with the lab. Namespace hosts need no way out and get none.

// addNAT creates table ip NAME masquerading subnet's traffic to anywhere outside it, and
// turns IPv4 forwarding on (a machine-wide switch that stays on).
func addNAT(name string, subnet *net.IPNet) error {
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enabling IPv4 forwarding: %w", err)
	}
	rules := fmt.Sprintf(`table ip %[1]s {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr %[2]s ip daddr != %[2]s masquerade
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		ip saddr %[2]s accept
		ip daddr %[2]s ct state established,related accept
	}
}
`, name, subnet)
	return nft(rules, "-f", "-")
}

// deleteNAT removes the table; a missing table is no error.
func deleteNAT(name string) error {
	if !natTables()[name] {
		return nil
	}
	return nft("", "delete", "table", "ip", name)
}

// natTables lists this machine's nftables tables of family ip.
func natTables() map[string]bool {
	out, err := exec.Command("nft", "list", "tables", "ip").Output()
	if err != nil {
		return nil
	}
	names := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "table" {
			names[f[2]] = true
		}
	}
	return names
}

func nft(stdin string, args ...string) error {
	cmd := exec.Command("nft", args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nft %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
