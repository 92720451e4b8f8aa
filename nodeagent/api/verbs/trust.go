package verbs

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

// TrustCmd is `trust`: trusted client certificates, as `lxc config trust`.
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
func (c *TrustRemoveCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		_, err := cl.Call(ctx, http.MethodDelete, "/1.0/certificates/"+url.PathEscape(c.Fingerprint), nil, nil, "")
		return err
	})
}

// TrustAddCmd trusts a client certificate.
type TrustAddCmd struct {
	Name string `arg:"" help:"A name for the certificate."`
	Type string `help:"client (the whole API) or metrics (GET /1.0/metrics only), as lxc config trust add --type." default:"client" enum:"client,metrics"`
}

// Run reads the PEM from stdin and adds it.
func (c *TrustAddCmd) Run(e *Env) error {
	if e.Stdin == nil {
		return fmt.Errorf("stdin holds no PEM certificate")
	}
	data, err := io.ReadAll(io.LimitReader(e.Stdin, 1<<20))
	if err != nil {
		return err
	}
	if !strings.Contains(string(data), "BEGIN CERTIFICATE") {
		return fmt.Errorf("stdin holds no PEM certificate")
	}
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		return cl.AddCertificate(ctx, api.CertificatesPost{Name: c.Name, Type: c.Type, Certificate: string(data)})
	})
}

// TrustListCmd lists trusted certificates.
type TrustListCmd struct {
	Format output.Format `help:"table, json or yaml." default:"table"`
}

// Run lists them (never the certificates themselves).
func (c *TrustListCmd) Run(e *Env) error {
	if err := c.Format.Validate(); err != nil {
		return err
	}
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		cs, err := cl.Certificates(ctx)
		if err != nil {
			return err
		}
		for i := range cs {
			cs[i].Certificate = ""
		}
		return output.Render(e.Stdout, c.Format, cs, func() ([]string, [][]string) {
			rows := [][]string{}
			for _, c := range cs {
				rows = append(rows, []string{c.Name, c.Type, c.Fingerprint[:12]})
			}
			return []string{"NAME", "TYPE", "FINGERPRINT"}, rows
		})
	})
}
