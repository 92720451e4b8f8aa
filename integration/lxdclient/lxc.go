package lxdclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/nodeagent/api/pki"
)

// LXCBin is the `lxc` client the tests drive (Debian's lxd-client package).
const LXCBin = "/usr/bin/lxc"

// Deadline is how long one `lxc` or python invocation may run.
const Deadline = 90 * time.Second

// Result is what one client invocation produced.
type Result struct {
	Bin            string
	Args           []string
	Stdout, Stderr string
	Code           int
}

// String is the command line and what it said, for failure messages.
func (r Result) String() string {
	return fmt.Sprintf("%s %s: exit %d\nstdout: %s\nstderr: %s", filepath.Base(r.Bin), strings.Join(r.Args, " "), r.Code, r.Stdout, strings.TrimSpace(r.Stderr))
}

// LXC is one `lxc` client with its own configuration directory (LXD_CONF): its
// certificate, its remotes and its default remote belong to one test.
type LXC struct {
	tb   testing.TB
	Conf string // LXD_CONF: config.yml, client.crt, client.key, servercerts/
	Home string // HOME of the client's processes
}

// NeedLXC skips the test unless the `lxc` client is installed.
func NeedLXC(tb testing.TB) {
	tb.Helper()
	if _, err := os.Stat(LXCBin); err != nil {
		tb.Skipf("%s missing: install Debian's lxd-client package (scripts/install-deps.sh)", LXCBin)
	}
}

// NewLXC makes an `lxc` client with a fresh configuration directory holding a client
// certificate of its own (client.crt, client.key), removed when the test ends.
func NewLXC(tb testing.TB) *LXC {
	tb.Helper()
	NeedLXC(tb)
	base := tb.TempDir()
	c := &LXC{tb: tb, Conf: filepath.Join(base, "lxdconf"), Home: filepath.Join(base, "home")}
	for _, d := range []string{c.Conf, c.Home} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			tb.Fatal(err)
		}
	}
	kp, err := pki.Generate("lxdclient-test")
	if err != nil {
		tb.Fatal(err)
	}
	if err := kp.Save(c.Conf, "client"); err != nil {
		tb.Fatal(err)
	}
	return c
}

// CertPEM is the client's certificate (PEM).
func (c *LXC) CertPEM() []byte {
	c.tb.Helper()
	b, err := os.ReadFile(filepath.Join(c.Conf, "client.crt"))
	if err != nil {
		c.tb.Fatal(err)
	}
	return b
}

// Env is the environment of the client's processes: the test's, with LXD_CONF and HOME
// pointing at the client's own directories.
func (c *LXC) Env() []string {
	env := []string{"LXD_CONF=" + c.Conf, "HOME=" + c.Home}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LXD_CONF=") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return env
}

// Run runs `lxc args...` (Deadline at the most) and returns what it said.
func (c *LXC) Run(args ...string) Result { return c.RunInput("", args...) }

// RunInput runs `lxc args...` with stdin.
func (c *LXC) RunInput(stdin string, args ...string) Result {
	c.tb.Helper()
	res, err := run(c.Env(), stdin, LXCBin, args...)
	if err != nil {
		c.tb.Fatal(err)
	}
	return res
}

// MustRun runs `lxc args...` and fails the test unless it exits 0; it returns stdout.
func (c *LXC) MustRun(args ...string) string {
	c.tb.Helper()
	return c.MustRunInput("", args...)
}

// MustRunInput is MustRun with stdin.
func (c *LXC) MustRunInput(stdin string, args ...string) string {
	c.tb.Helper()
	r := c.RunInput(stdin, args...)
	if r.Code != 0 {
		c.tb.Fatalf("%s", r)
	}
	return r.Stdout
}

// WantFailure runs `lxc args...` and fails the test unless it fails with every substring
// in its stderr; it returns the result.
func (c *LXC) WantFailure(args []string, substrings ...string) Result {
	c.tb.Helper()
	r := c.Run(args...)
	if r.Code == 0 {
		c.tb.Fatalf("want failure with %q:\n%s", substrings, r)
	}
	for _, s := range substrings {
		if !strings.Contains(r.Stderr, s) {
			c.tb.Fatalf("stderr has no %q:\n%s", s, r)
		}
	}
	return r
}

// run runs bin with args, env and stdin under Deadline; the error is for a command that
// could not run at all or ran past its deadline.
func run(env []string, stdin, bin string, args ...string) (Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), Deadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := Result{Bin: bin, Args: args, Stdout: out.String(), Stderr: errb.String()}
	if ctx.Err() != nil {
		return res, fmt.Errorf("%s %s: no answer within %v (stdout %q, stderr %q)", bin, strings.Join(args, " "), Deadline, res.Stdout, res.Stderr)
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	case err != nil:
		return res, fmt.Errorf("%s %s: %w", bin, strings.Join(args, " "), err)
	}
	return res, nil
}

// URL is the https URL of a member's API.
func URL(a *agenttest.Agent) string { return "https://" + a.Addr }

// AddRemoteTrusted trusts the client's certificate through a's socket (`nodeagent trust
// add`), then adds a as remote name and makes it the default remote.
func (c *LXC) AddRemoteTrusted(name string, a *agenttest.Agent) {
	c.tb.Helper()
	a.MustRunInput(string(c.CertPEM()), "trust", "add", "lxdclient-"+name)
	c.MustRun("remote", "add", name, URL(a), "--accept-certificate")
	c.MustRun("remote", "switch", name)
}

// AddRemotePassword adds a as remote name with the trust password (`lxc remote add …
// --password`, which POSTs the client's certificate to /1.0/certificates) and makes it
// the default remote.
func (c *LXC) AddRemotePassword(name string, a *agenttest.Agent, password string) {
	c.tb.Helper()
	c.MustRun("remote", "add", name, URL(a), "--accept-certificate", "--password", password)
	c.MustRun("remote", "switch", name)
}
