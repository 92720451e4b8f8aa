package jepsen

import (
	"context"
	"fmt"
	"strings"
	"time"

	"orch/internal/shell"
)

// Member-to-member partitions. Every member lives in its own network namespace behind one
// veth on the lab bridge; the workload's clients run in the test process and reach the
// members from the bridge's address. Setting a member's link down (lab.Host.Partition) cuts
// its clients off too, so a partitioned old leader never hears a client again. Instead, each
// member's namespace holds an nftables table whose set "cut" lists the peers it may not
// talk to: packets to and from them are dropped silently (as a lost link would), while the
// bridge address — the clients — stays reachable.

// nftTable is the nftables table of the partitions in every member's namespace.
const nftTable = "jepsen"

// nftRuleset creates the table with an empty "cut" set and the two drop rules.
const nftRuleset = `table inet jepsen {
	set cut { type ipv4_addr; }
	chain in { type filter hook input priority 0; policy accept; ip saddr @cut drop; }
	chain out { type filter hook output priority 0; policy accept; ip daddr @cut drop; }
}
`

// nft runs nft inside m's network namespace, with the script on its standard input.
func (m *member) nft(script string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := m.host.Exec(ctx, "sh", "-c", "printf '%s' "+shell.Quote(script)+" | nft -f -"); err != nil {
		return fmt.Errorf("%s: nft: %w (%s)", m.name, err, out)
	}
	return nil
}

// setUpPartitions installs the table on every member.
func (c *cluster) setUpPartitions() {
	c.t.Helper()
	for _, m := range c.members {
		if err := m.nft(nftRuleset); err != nil {
			c.t.Fatalf("partitions need nftables (apt-get install nftables): %v", err)
		}
	}
}

// cut drops every packet between a and b, both ways; their clients still reach both.
func (c *cluster) cut(a, b *member) {
	c.t.Helper()
	for _, p := range [][2]*member{{a, b}, {b, a}} {
		if err := p[0].nft(fmt.Sprintf("add element inet %s cut { %s }\n", nftTable, p[1].host.Addr)); err != nil {
			c.t.Fatal(err)
		}
	}
}

// split cuts every path between a member of side and a member outside it.
func (c *cluster) split(side []*member) {
	c.t.Helper()
	for _, a := range side {
		for _, b := range c.members {
			if !contains(side, b) {
				c.cut(a, b)
			}
		}
	}
}

// healCuts empties every member's set: all member-to-member paths are back.
func (c *cluster) healCuts() {
	c.t.Helper()
	for _, m := range c.members {
		if err := m.nft(fmt.Sprintf("flush set inet %s cut\n", nftTable)); err != nil {
			c.t.Fatal(err)
		}
	}
}

// names lists members' names for the nemesis log.
func names(ms []*member) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.name)
	}
	return strings.Join(out, ",")
}
