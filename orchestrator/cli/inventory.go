package cli

import (
	"fmt"

	"orch/inventory"
)

// InventoryCmd shows what was parsed, like ansible-inventory.
type InventoryCmd struct {
	List  InventoryListCmd  `cmd:"" help:"Every group and host with its variables (JSON, as ansible-inventory --list)."`
	Graph InventoryGraphCmd `cmd:"" help:"The group tree."`
	Host  InventoryHostCmd  `cmd:"" help:"One host's variables."`
}

func load(g *Globals) (*inventory.Inventory, error) {
	if g.Inventory == "" {
		return nil, fmt.Errorf("no inventory: pass -i FILE or set ORCH_INVENTORY")
	}
	inv, err := inventory.Load(g.Inventory)
	if err != nil {
		return nil, err
	}
	for _, w := range inv.Warnings() {
		fmt.Fprintln(g.Stderr, "[WARNING]:", w)
	}
	return inv, nil
}

// InventoryListCmd prints the whole inventory.
type InventoryListCmd struct{}

// Run prints it.
func (InventoryListCmd) Run(g *Globals) error {
	inv, err := load(g)
	if err != nil {
		return err
	}
	b, err := inv.ListJSON()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(g.Stdout, string(b))
	return err
}

// InventoryGraphCmd prints the group tree.
type InventoryGraphCmd struct {
	Group string `arg:"" optional:"" default:"all"`
}

// Run prints it.
func (c InventoryGraphCmd) Run(g *Globals) error {
	inv, err := load(g)
	if err != nil {
		return err
	}
	s, err := inv.Graph(c.Group)
	if err != nil {
		return err
	}
	_, err = fmt.Fprint(g.Stdout, s)
	return err
}

// InventoryHostCmd prints one host's variables.
type InventoryHostCmd struct {
	Name string `arg:""`
}

// Run prints them.
func (c InventoryHostCmd) Run(g *Globals) error {
	inv, err := load(g)
	if err != nil {
		return err
	}
	b, err := inv.HostJSON(c.Name)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(g.Stdout, string(b))
	return err
}
