package verbs

import (
	"context"
	"fmt"

	"orch/nodeagent/api"
	"orch/output"
)

// NetworkCmd is `network`: bridge networks, as `lxc network`.
type NetworkCmd struct {
	Create NetworkCreateCmd `cmd:"" help:"Define a network on a member (--target) or create it on every member."`
	List   NetworkListCmd   `cmd:"" help:"List networks with their state and locations."`
	Show   NetworkShowCmd   `cmd:"" help:"Show a network (--target: that member's keys and state)."`
	Delete NetworkDeleteCmd `cmd:"" help:"Delete a network on every member."`
}

// NetworkCreateCmd is `network create NAME [key=value...] [--target MEMBER]`.
type NetworkCreateCmd struct {
	Name        string   `arg:"" help:"Network (bridge) name, at most 15 characters."`
	Config      []string `arg:"" optional:"" help:"key=value settings: ipv4.address (CIDR, auto, none), ipv4.nat, ipv6.address, ipv4.dhcp.ranges, dns.domain; with --target only bridge.external_interfaces."`
	Target      string   `help:"Member to define the network on."`
	Type        string   `help:"Network type." default:"bridge"`
	Description string   `help:"Description."`
}

// Run defines or creates the network.
func (c *NetworkCreateCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		cfg, err := clusterKeyValues(c.Config)
		if err != nil {
			return err
		}
		n := api.Network{Name: c.Name, Type: c.Type, Description: c.Description, Config: cfg}
		if err := cl.CreateNetwork(ctx, n, c.Target); err != nil {
			return err
		}
		if c.Target != "" {
			fmt.Fprintf(e.Stdout, "Network %s pending on member %s\n", c.Name, c.Target)
		} else {
			fmt.Fprintf(e.Stdout, "Network %s created\n", c.Name)
		}
		return nil
	})
}

// NetworkListCmd is `network list`.
type NetworkListCmd struct {
	Format output.Format `help:"table, json or yaml." default:"table"`
}

// Run lists the networks.
func (c *NetworkListCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		if err := c.Format.Validate(); err != nil {
			return err
		}
		ns, err := cl.Networks(ctx)
		if err != nil {
			return err
		}
		return output.Render(e.Stdout, c.Format, ns, func() ([]string, [][]string) { return output.NetworkTable(ns) })
	})
}

// NetworkShowCmd is `network show NAME [--target]`.
type NetworkShowCmd struct {
	Name   string        `arg:""`
	Target string        `help:"Show this member's node-specific keys and state."`
	Format output.Format `help:"yaml or json." default:"yaml"`
}

// Run shows the network.
func (c *NetworkShowCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		n, err := cl.NetworkByName(ctx, c.Name, c.Target)
		if err != nil {
			return err
		}
		return output.Render(e.Stdout, oneFormat(c.Format), n, nil)
	})
}

// NetworkDeleteCmd is `network delete NAME`.
type NetworkDeleteCmd struct {
	Name string `arg:""`
}

// Run deletes the network.
func (c *NetworkDeleteCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		return cl.DeleteNetwork(ctx, c.Name)
	})
}
