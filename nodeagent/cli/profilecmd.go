package cli

import (
	"context"
	"fmt"
	"io"

	"orch/nodeagent/api"
	"orch/output"
)

// ProfileCmd groups the profile commands.
type ProfileCmd struct {
	List   ProfileListCmd   `cmd:"" help:"List profiles."`
	Show   ProfileShowCmd   `cmd:"" help:"Show a profile as YAML."`
	Create ProfileCreateCmd `cmd:"" help:"Create an empty profile (or from YAML on stdin with --stdin)."`
	Edit   ProfileEditCmd   `cmd:"" help:"Replace a profile with the YAML read from stdin."`
	Delete ProfileDeleteCmd `cmd:"" help:"Delete a profile no instance uses."`
}

// ProfileListCmd lists profiles.
type ProfileListCmd struct {
	Format output.Format `help:"table, json or yaml." default:"table"`
}

// Run lists the profiles.
func (c *ProfileListCmd) Run(g *Globals) error {
	ps, err := g.client().Profiles(context.Background())
	if err != nil {
		return err
	}
	return output.Render(g.Stdout, c.Format, ps, func() ([]string, [][]string) { return output.ProfileTable(ps) })
}

// ProfileShowCmd shows one profile.
type ProfileShowCmd struct {
	Name   string        `arg:""`
	Format output.Format `help:"yaml or json." default:"yaml"`
}

// Run shows the profile.
func (c *ProfileShowCmd) Run(g *Globals) error {
	p, err := g.client().Profile(context.Background(), c.Name)
	if err != nil {
		return err
	}
	return output.Render(g.Stdout, c.Format, p, func() ([]string, [][]string) { return output.ProfileTable([]api.Profile{*p}) })
}

// ProfileCreateCmd creates a profile.
type ProfileCreateCmd struct {
	Name  string `arg:""`
	Stdin bool   `help:"Read the profile (description, config, devices) as YAML from stdin."`
}

// Run creates the profile.
func (c *ProfileCreateCmd) Run(g *Globals) error {
	p := api.Profile{Name: c.Name}
	if c.Stdin {
		var err error
		if p, err = readProfile(g.Stdin, c.Name); err != nil {
			return err
		}
	}
	if err := g.client().CreateProfile(context.Background(), p); err != nil {
		return err
	}
	fmt.Fprintf(g.Stdout, "Profile %s created\n", c.Name)
	return nil
}

// ProfileEditCmd replaces a profile from YAML on stdin.
type ProfileEditCmd struct {
	Name string `arg:""`
}

// Run replaces the profile.
func (c *ProfileEditCmd) Run(g *Globals) error {
	p, err := readProfile(g.Stdin, c.Name)
	if err != nil {
		return err
	}
	return g.client().UpdateProfile(context.Background(), p)
}

// ProfileDeleteCmd deletes a profile.
type ProfileDeleteCmd struct {
	Name string `arg:""`
}

// Run deletes the profile.
func (c *ProfileDeleteCmd) Run(g *Globals) error {
	return g.client().DeleteProfile(context.Background(), c.Name)
}

// readProfile decodes a profile strictly from YAML (errors name line and column).
func readProfile(r io.Reader, name string) (api.Profile, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return api.Profile{}, err
	}
	var p api.Profile
	if err := api.DecodeStrict("<stdin>", data, &p); err != nil {
		return api.Profile{}, err
	}
	if p.Name == "" {
		p.Name = name
	}
	if p.Name != name {
		return api.Profile{}, fmt.Errorf("<stdin>: name %q differs from %q", p.Name, name)
	}
	return p, nil
}
