package verbs

import (
	"context"
	"fmt"
	"io"

	"orch/nodeagent/api"
	"orch/output"
)

// ProfileCmd is `profile`: the cluster's profiles, as `lxc profile`.
type ProfileCmd struct {
	List   ProfileListCmd   `cmd:"" help:"List profiles."`
	Show   ProfileShowCmd   `cmd:"" help:"Show a profile as YAML."`
	Create ProfileCreateCmd `cmd:"" help:"Create an empty profile (or from YAML on stdin with --stdin)."`
	Edit   ProfileEditCmd   `cmd:"" help:"Replace a profile with the YAML read from stdin."`
	Delete ProfileDeleteCmd `cmd:"" help:"Delete a profile no instance uses."`
}

// ProfileListCmd is `profile list`.
type ProfileListCmd struct {
	Format output.Format `help:"table, json or yaml." default:"table"`
}

// Run lists the profiles.
func (c *ProfileListCmd) Run(e *Env) error {
	if err := c.Format.Validate(); err != nil {
		return err
	}
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		ps, err := cl.Profiles(ctx)
		if err != nil {
			return err
		}
		return output.Render(e.Stdout, c.Format, ps, func() ([]string, [][]string) { return output.ProfileTable(ps) })
	})
}

// ProfileShowCmd is `profile show NAME`.
type ProfileShowCmd struct {
	Name   string        `arg:""`
	Format output.Format `help:"yaml or json." default:"yaml"`
}

// Run shows the profile.
func (c *ProfileShowCmd) Run(e *Env) error {
	if err := c.Format.Validate(); err != nil {
		return err
	}
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		p, err := cl.Profile(ctx, c.Name)
		if err != nil {
			return fmt.Errorf("profile %s: %w", c.Name, err)
		}
		return output.Render(e.Stdout, c.Format, p, func() ([]string, [][]string) { return output.ProfileTable([]api.Profile{*p}) })
	})
}

// ProfileCreateCmd is `profile create NAME [--stdin]`.
type ProfileCreateCmd struct {
	Name  string `arg:""`
	Stdin bool   `help:"Read the profile (description, config, devices) as YAML from stdin."`
}

// Run creates the profile.
func (c *ProfileCreateCmd) Run(e *Env) error {
	p := api.Profile{Name: c.Name}
	if c.Stdin {
		var err error
		if p, err = readProfile(e.Stdin, c.Name); err != nil {
			return err
		}
	}
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		if err := cl.CreateProfile(ctx, p); err != nil {
			return fmt.Errorf("profile %s: %w", c.Name, err)
		}
		fmt.Fprintf(e.Stdout, "Profile %s created\n", c.Name)
		return nil
	})
}

// ProfileEditCmd is `profile edit NAME` (YAML on stdin).
type ProfileEditCmd struct {
	Name string `arg:""`
}

// Run replaces the profile.
func (c *ProfileEditCmd) Run(e *Env) error {
	p, err := readProfile(e.Stdin, c.Name)
	if err != nil {
		return err
	}
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		if err := cl.UpdateProfile(ctx, p); err != nil {
			return fmt.Errorf("profile %s: %w", c.Name, err)
		}
		return nil
	})
}

// ProfileDeleteCmd is `profile delete NAME`.
type ProfileDeleteCmd struct {
	Name string `arg:""`
}

// Run deletes the profile.
func (c *ProfileDeleteCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		if err := cl.DeleteProfile(ctx, c.Name); err != nil {
			return fmt.Errorf("profile %s: %w", c.Name, err)
		}
		return nil
	})
}

// readProfile decodes a profile strictly from YAML (errors name <stdin>, line and column).
func readProfile(r io.Reader, name string) (api.Profile, error) {
	if r == nil {
		return api.Profile{}, fmt.Errorf("profile %s: no stdin", name)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return api.Profile{}, fmt.Errorf("reading <stdin>: %w", err)
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
