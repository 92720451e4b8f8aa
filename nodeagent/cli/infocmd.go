package cli

import (
	"context"
	"fmt"

	"orch/output"
)

// InfoCmd prints what this agent is (GET /1.0 without secrets), as `lxc info` does.
type InfoCmd struct {
	Format output.Format `help:"table, json or yaml." default:"yaml"`
}

// Run prints the server's environment.
func (c *InfoCmd) Run(g *Globals) error {
	if err := c.Format.Validate(); err != nil {
		return err
	}
	s, _, err := g.client().Server(context.Background())
	if err != nil {
		return err
	}
	return output.Render(g.Stdout, c.Format, s.Environment, func() ([]string, [][]string) {
		e := s.Environment
		return []string{"KEY", "VALUE"}, [][]string{
			{"server_name", e.ServerName}, {"initialised", fmt.Sprint(e.Initialised)},
			{"version", e.ServerVersion}, {"schema", fmt.Sprint(e.SchemaVersion)},
			{"cluster_address", e.ClusterAddress}, {"certificate_fingerprint", e.CertificateFingerprint},
			{"blocked", fmt.Sprint(e.Blocked)}, {"message", e.Message},
		}
	})
}
