package cli

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"orch/nodeagent/api"
)

// ErrQueryURL means --url is neither unix:PATH nor https://HOST[:PORT].
var ErrQueryURL = errors.New("want unix:/path/to/socket or https://host:port")

// QueryCmd is `lxc query`'s shape on the agent: one raw request to the REST API, its answer
// printed as JSON. It is how programs on a host speak to the API without an HTTP client of
// their own (the playbook modules lxd_container and lxd_profile run it on the host: curl is
// not on every host, the agent's binary is). --url reaches another server speaking LXD's API
// (LXD's own socket, or a member over HTTPS with a client certificate) instead of the
// agent's socket.
type QueryCmd struct {
	Path    string        `arg:"" help:"API path with its query string, e.g. /1.0/instances/c1."`
	Request string        `short:"X" name:"request" help:"HTTP method." default:"GET"`
	Data    string        `short:"d" help:"Request body (JSON); - reads it from stdin."`
	Wait    bool          `help:"Wait for the operation of an async answer and print that instead."`
	Raw     bool          `help:"Print the whole answer (type, status, error, error_code, metadata) and exit 0 for any answer the server gave, an error answer included."`
	URL     string        `name:"url" help:"Server: unix:/path/to/socket or https://host:port (default: this agent's socket)."`
	Cert    string        `help:"Client certificate (PEM) for an https URL." type:"path"`
	Key     string        `help:"Client key (PEM) for an https URL." type:"path"`
	Timeout time.Duration `help:"Give up after this long (0: never)." default:"0"`
}

// Run sends the request and prints the answer: its metadata (an error answer fails the
// command with the server's message, as lxc query does), or with --raw the whole answer.
func (c *QueryCmd) Run(g *Globals) error {
	ctx := context.Background()
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	cl, err := c.client(g)
	if err != nil {
		return err
	}
	defer cl.Close()
	body, err := c.body(g.Stdin)
	if err != nil {
		return err
	}
	env, err := query(ctx, cl, strings.ToUpper(c.Request), c.Path, body)
	if err == nil && c.Wait && env.Type == "async" {
		env, err = waitOperation(ctx, cl, env.Operation)
	}
	if err != nil {
		return err
	}
	return c.print(g.Stdout, env)
}

// client is a client of --url, else of the agent's own socket.
func (c *QueryCmd) client(g *Globals) (*api.Client, error) {
	switch {
	case c.URL == "":
		return g.client(), nil
	case strings.HasPrefix(c.URL, "unix:"):
		return api.NewUnixClient(strings.TrimPrefix(strings.TrimPrefix(c.URL, "unix:"), "//")), nil
	case strings.HasPrefix(c.URL, "https://"):
		u, err := url.Parse(c.URL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("--url %q: %w", c.URL, ErrQueryURL)
		}
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.Cert != "" || c.Key != "" {
			pair, err := tls.LoadX509KeyPair(c.Cert, c.Key)
			if err != nil {
				return nil, fmt.Errorf("--cert %s --key %s: %w", c.Cert, c.Key, err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		return api.NewTLSClient(u.Host, cfg), nil // verified against the system roots (SSL_CERT_FILE), as Ansible's client does, nil
	}
	return nil, fmt.Errorf("--url %q: %w", c.URL, ErrQueryURL)
}

// body is --data, read from stdin for "-".
func (c *QueryCmd) body(stdin io.Reader) (io.Reader, error) {
	if c.Data == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("reading the request body from stdin: %w", err)
		}
		return strings.NewReader(string(b)), nil
	}
	if c.Data == "" {
		return nil, nil
	}
	return strings.NewReader(c.Data), nil
}

// print writes the answer as --raw asks, or fails with an error answer's message.
func (c *QueryCmd) print(w io.Writer, env api.Response) error {
	if c.Raw {
		return writeJSON(w, env)
	}
	if env.Type == "error" {
		return errors.New(env.Error)
	}
	if c.Wait && env.Operation == "" && len(env.Metadata) > 0 {
		var op api.Operation
		if json.Unmarshal(env.Metadata, &op) == nil && op.Err != "" {
			return errors.New(op.Err)
		}
	}
	if len(env.Metadata) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(env.Metadata, &v); err != nil {
		return err
	}
	return writeJSON(w, v)
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// query sends one request and decodes the answer's envelope, whatever its HTTP status.
func query(ctx context.Context, cl *api.Client, method, path string, body io.Reader) (api.Response, error) {
	var hdr http.Header
	if body != nil {
		hdr = http.Header{"Content-Type": {"application/json"}}
	}
	resp, err := cl.Raw(ctx, method, path, body, hdr)
	if err != nil {
		return api.Response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return api.Response{}, err
	}
	var env api.Response
	if err := json.Unmarshal(data, &env); err != nil {
		return api.Response{}, fmt.Errorf("%s %s: unexpected answer (HTTP %d): %.200s", method, path, resp.StatusCode, data)
	}
	if env.Type == "" && resp.StatusCode >= 400 {
		env.Type, env.ErrorCode, env.Error = "error", resp.StatusCode, strings.TrimSpace(string(data))
	}
	return env, nil
}

// waitOperation asks the operation's /wait until it has ended (the server may answer a wait
// before the end, with the operation still running or being cancelled).
func waitOperation(ctx context.Context, cl *api.Client, operation string) (api.Response, error) {
	u, err := url.Parse(operation)
	if err != nil {
		return api.Response{}, fmt.Errorf("operation %q: %w", operation, err)
	}
	for {
		env, err := query(ctx, cl, http.MethodGet, u.Path+"/wait", nil)
		if err != nil || env.Type == "error" {
			return env, err
		}
		var op api.Operation
		if err := json.Unmarshal(env.Metadata, &op); err != nil {
			return env, fmt.Errorf("operation %s: %w", u.Path, err)
		}
		if op.Final() {
			return env, nil
		}
	}
}
