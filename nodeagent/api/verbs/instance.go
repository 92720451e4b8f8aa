package verbs

import (
	"context"
	"fmt"

	"orch/nodeagent/api"
	"orch/output"
)

// LaunchCmd is `launch IMAGE NAME`, as `lxc launch`.
type LaunchCmd struct {
	Image    string   `arg:"" help:"Image: alias, fingerprint or REMOTE:ALIAS."`
	Name     string   `arg:"" help:"Instance name."`
	Target   string   `help:"Member to launch on (default: the one with the fewest instances)."`
	Profiles []string `short:"p" name:"profile" help:"Profile to apply (repeatable; default: default)."`
	NoStart  bool     `help:"Create without starting."`
	Config   []string `short:"c" name:"config" help:"Instance config KEY=VALUE (repeatable), as lxc launch -c: e.g. boot.autostart=true."`
}

// Run launches the instance.
func (c *LaunchCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		config, err := parseAssignments(c.Config)
		if err != nil {
			return fmt.Errorf("--config: %w", err)
		}
		in, err := cl.Launch(ctx, api.InstancesPost{Name: c.Name, Source: c.Image, Profiles: c.Profiles, NoStart: c.NoStart, Config: config}, c.Target)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "Launched %s on %s\n", in.Name, in.Location)
		return nil
	})
}

// ListCmd is `list`: every instance of the cluster with its NODE.
type ListCmd struct {
	Format output.Format `help:"table, json or yaml." default:"table"`
}

// Run lists the instances.
func (c *ListCmd) Run(e *Env) error {
	if err := c.Format.Validate(); err != nil {
		return err
	}
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		is, err := cl.Instances(ctx)
		if err != nil {
			return err
		}
		return output.Render(e.Stdout, c.Format, is, func() ([]string, [][]string) { return output.InstanceTable(is) })
	})
}

// StartCmd starts instances.
type StartCmd struct {
	Names []string `arg:""`
}

// Run starts each instance.
func (c *StartCmd) Run(e *Env) error { return setState(e, c.Names, "start", false) }

// StopCmd stops instances.
type StopCmd struct {
	Names []string `arg:""`
	Force bool     `short:"f" help:"Kill instead of a clean shutdown."`
}

// Run stops each instance.
func (c *StopCmd) Run(e *Env) error { return setState(e, c.Names, "stop", c.Force) }

// RestartCmd restarts instances.
type RestartCmd struct {
	Names []string `arg:""`
	Force bool     `short:"f" help:"Kill instead of a clean shutdown."`
}

// Run restarts each instance.
func (c *RestartCmd) Run(e *Env) error { return setState(e, c.Names, "restart", c.Force) }

// setState acts on each instance in turn and stops at the first error, which the daemon
// words with the instance's name (so it is not added here again).
func setState(e *Env, names []string, action string, force bool) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		for _, n := range names {
			if err := cl.SetInstanceState(ctx, n, api.InstanceStatePut{Action: action, Force: force}); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteCmd deletes instances.
type DeleteCmd struct {
	Names []string `arg:""`
	Force bool     `short:"f" help:"Stop running instances first."`
}

// Run deletes each instance; errors name the instance (the daemon's words).
func (c *DeleteCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		for _, n := range c.Names {
			if err := cl.DeleteInstance(ctx, n, c.Force); err != nil {
				return err
			}
		}
		return nil
	})
}
