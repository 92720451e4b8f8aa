package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"orch/nodeagent/api"
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

// TrustCmd manages trusted client certificates.
type TrustCmd struct {
	Add    TrustAddCmd    `cmd:"" help:"Trust a client certificate read (PEM) from stdin."`
	List   TrustListCmd   `cmd:"" help:"List trusted client certificates."`
	Remove TrustRemoveCmd `cmd:"" help:"Stop trusting a client certificate, on every member at once."`
}

// TrustRemoveCmd removes a trusted client certificate cluster-wide.
type TrustRemoveCmd struct {
	Fingerprint string `arg:"" help:"The certificate's fingerprint, or a unique prefix of it (at least 8 hex digits)."`
}

// Run removes it (DELETE /1.0/certificates/FINGERPRINT).
func (c *TrustRemoveCmd) Run(g *Globals) error {
	_, err := g.client().Call(context.Background(), http.MethodDelete, "/1.0/certificates/"+url.PathEscape(c.Fingerprint), nil, nil, "")
	return err
}

// TrustAddCmd trusts a client certificate.
type TrustAddCmd struct {
	Name string `arg:"" help:"A name for the certificate."`
}

// Run reads the PEM from stdin and adds it.
func (c *TrustAddCmd) Run(g *Globals) error {
	data, err := io.ReadAll(io.LimitReader(g.Stdin, 1<<20))
	if err != nil {
		return err
	}
	if !strings.Contains(string(data), "BEGIN CERTIFICATE") {
		return fmt.Errorf("stdin holds no PEM certificate")
	}
	return g.client().AddCertificate(context.Background(), api.CertificatesPost{Name: c.Name, Type: "client", Certificate: string(data)})
}

// TrustListCmd lists trusted certificates.
type TrustListCmd struct {
	Format output.Format `help:"table, json or yaml." default:"table"`
}

// Run lists them.
func (c *TrustListCmd) Run(g *Globals) error {
	if err := c.Format.Validate(); err != nil {
		return err
	}
	cs, err := g.client().Certificates(context.Background())
	if err != nil {
		return err
	}
	for i := range cs {
		cs[i].Certificate = ""
	}
	return output.Render(g.Stdout, c.Format, cs, func() ([]string, [][]string) {
		rows := [][]string{}
		for _, c := range cs {
			rows = append(rows, []string{c.Name, c.Type, c.Fingerprint[:12]})
		}
		return []string{"NAME", "TYPE", "FINGERPRINT"}, rows
	})
}
