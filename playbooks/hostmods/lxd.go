package hostmods

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"orch/playbooks"
	"orch/playbooks/template"
)

// ErrLXD means the LXD API (an orch member's, or LXD's) answered a request with an error;
// the module fails with its message.
var ErrLXD = errors.New("LXD API error")

// The sockets lxd_container and lxd_profile look for, as Ansible's modules do, and orch's.
const (
	// lxdDefaultURL is Ansible's default url: LXD's socket from a Debian package.
	lxdDefaultURL = "unix:/var/lib/lxd/unix.socket"
	// lxdSnapURL is Ansible's default snap_url: LXD's socket from the snap.
	lxdSnapURL = "unix:/var/snap/lxd/common/lxd/unix.socket"
	// agentDirDefault is orch's default agent directory (inventory variable agent_dir); its
	// unix.socket serves LXD's API and its bin/nodeagent runs the requests.
	agentDirDefault = "/var/lib/nodeagent"
)

// lxdConnArgs are the connection arguments both modules share.
var lxdConnArgs = []string{"url", "snap_url", "client_key", "key_file", "client_cert", "cert_file", "trust_password", "project"}

// lxdClient sends LXD API requests from the task's host: each request is the agent's
// `nodeagent query` (curl is not on every host, the agent binary is on every orch host),
// run through the host connection, so the socket reached is the host's own.
type lxdClient struct {
	t        *playbooks.TaskContext
	url      string // as given; the default picks a socket on the host
	snapURL  string
	cert     string
	key      string
	agentDir string
	project  string
}

// lxdClientArgs reads the connection arguments. The agent directory is the host's
// agent_dir variable (orch's inventory setting), else orch's default.
func lxdClientArgs(t *playbooks.TaskContext) (*lxdClient, error) {
	c := &lxdClient{t: t, agentDir: agentDirDefault}
	var err error
	if c.url, err = t.Args.String("url", lxdDefaultURL); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(c.url, "unix:") && !strings.HasPrefix(c.url, "https:") {
		return nil, fmt.Errorf("%w \"url\": URL scheme must be unix: or https: (%q)", playbooks.ErrArgs, c.url)
	}
	if c.snapURL, err = t.Args.String("snap_url", lxdSnapURL); err != nil {
		return nil, err
	}
	if c.cert, err = strArg(t.Args, "", "client_cert", "cert_file"); err != nil {
		return nil, err
	}
	if c.key, err = strArg(t.Args, "", "client_key", "key_file"); err != nil {
		return nil, err
	}
	if c.project, err = t.Args.String("project", ""); err != nil {
		return nil, err
	}
	if v, ok := t.Vars().Get("agent_dir"); ok {
		if s, ok := v.(string); ok && strings.HasPrefix(s, "/") {
			c.agentDir = strings.TrimRight(s, "/")
		}
	}
	return c, nil
}

// lxdResp is an answer's envelope, as `nodeagent query --raw` prints it.
type lxdResp struct {
	Type      string          `json:"type"`
	Error     string          `json:"error"`
	ErrorCode int             `json:"error_code"`
	Metadata  json.RawMessage `json:"metadata"`
}

// err is the answer's error (an operation's err first, as Ansible's client reads it), nil
// for a success.
func (r lxdResp) err() error {
	var op struct {
		Status string `json:"status"`
		Err    string `json:"err"`
	}
	if r.Type == "error" {
		return fmt.Errorf("%w: %s", ErrLXD, r.Error)
	}
	if json.Unmarshal(r.Metadata, &op) == nil && op.Err != "" {
		return fmt.Errorf("%w: %s", ErrLXD, op.Err)
	}
	if op.Status == "Failure" || op.Status == "Cancelled" {
		return fmt.Errorf("%w: operation %s", ErrLXD, strings.ToLower(op.Status))
	}
	return nil
}

// notFound reports a 404 answer.
func (r lxdResp) notFound() bool { return r.Type == "error" && r.ErrorCode == 404 }

// prelude is the shell that finds the agent binary and the server's URL on the host and
// defines q, the request runner: Ansible's choice of socket (url when it is not the
// default; else snap_url's socket when it exists; else the default), except that where
// neither of LXD's sockets exists the default is the orch agent's socket.
func (c *lxdClient) prelude() string {
	var b strings.Builder
	bin := c.agentDir + "/bin/nodeagent"
	fmt.Fprintf(&b, "na=%s; [ -x \"$na\" ] || na=$(command -v nodeagent) || { echo %s >&2; exit 127; }\n",
		q(bin), q("the LXD modules run their requests with the orch agent's binary, not found at "+bin+" nor on PATH"))
	if c.url == lxdDefaultURL {
		snap, deb := strings.TrimPrefix(c.snapURL, "unix:"), strings.TrimPrefix(lxdDefaultURL, "unix:")
		fmt.Fprintf(&b, "if [ -S %s ]; then u=%s; elif [ -S %s ]; then u=%s; else u=%s; fi\n",
			q(snap), q(c.snapURL), q(deb), q(lxdDefaultURL), q("unix:"+c.agentDir+"/unix.socket"))
	} else {
		fmt.Fprintf(&b, "u=%s\n", q(c.url))
	}
	tls := ""
	if strings.HasPrefix(c.url, "https:") {
		tls = " --cert " + orHome(c.cert, "client.crt") + " --key " + orHome(c.key, "client.key")
	}
	fmt.Fprintf(&b, "q() { \"$na\" query --raw --wait --url \"$u\"%s \"$@\"; }\n", tls)
	return b.String()
}

// orHome is a quoted path, or (unset) the lxc client's file of that name under the host
// user's $HOME, Ansible's default.
func orHome(path, name string) string {
	if path != "" {
		return q(path)
	}
	return "\"$HOME/.config/lxc/" + name + "\""
}

// path adds the project to an API path, as Ansible's modules do.
func (c *lxdClient) path(p string, params ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(params); i += 2 {
		if params[i+1] != "" {
			v.Set(params[i], params[i+1])
		}
	}
	if c.project != "" {
		v.Set("project", c.project)
	}
	if len(v) == 0 {
		return p
	}
	return p + "?" + v.Encode()
}

// do sends one request (body as JSON on stdin, never on a command line: a trust password
// travels in it) and returns the answer; an async answer is followed to its operation's
// end. A request the server could not be reached for is an error naming the URL.
func (c *lxdClient) do(ctx context.Context, method, path string, body any) (lxdResp, error) {
	script := c.prelude() + "q -X " + q(method) + " " + q(path)
	var stdin io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return lxdResp{}, err
		}
		script += " -d -"
		stdin = bytes.NewReader(b)
	}
	rs, err := c.run(ctx, script, stdin, 1)
	if err != nil {
		return lxdResp{}, err
	}
	return rs[0], nil
}

// send makes one request and turns an error answer into an error.
func (c *lxdClient) send(ctx context.Context, method, path string, body any) error {
	r, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	return r.err()
}

// gets sends several GETs in one command (the module's probe) and returns their answers.
func (c *lxdClient) gets(ctx context.Context, paths ...string) ([]lxdResp, error) {
	var b strings.Builder
	b.WriteString(c.prelude())
	for _, p := range paths {
		fmt.Fprintf(&b, "q %s || exit $?\n", q(p))
	}
	return c.run(ctx, b.String(), nil, len(paths))
}

// run runs the script and decodes n answers from its output.
func (c *lxdClient) run(ctx context.Context, script string, stdin io.Reader, n int) ([]lxdResp, error) {
	o, err := run(ctx, c.t, script, stdin)
	if err != nil {
		return nil, err
	}
	if o.rc != 0 {
		msg := strings.TrimSpace(o.stderr)
		if o.rc == 127 {
			return nil, fmt.Errorf("%w: %s", ErrUnsupported, msg)
		}
		return nil, fmt.Errorf("cannot connect to the LXD server (%s): %w", lastLines(strings.TrimPrefix(msg, "Error: "), 3), ErrHost)
	}
	dec := json.NewDecoder(strings.NewReader(o.stdout))
	out := make([]lxdResp, n)
	for i := range out {
		if err := dec.Decode(&out[i]); err != nil {
			return nil, fmt.Errorf("reading the LXD server's answer %d: %w (%.200s)", i+1, err, o.stdout)
		}
	}
	return out, nil
}

// authenticateIfAsked authenticates when the task gives trust_password.
func (c *lxdClient) authenticateIfAsked(ctx context.Context) error {
	if !c.t.Args.Has("trust_password") {
		return nil
	}
	pw, err := c.t.Args.String("trust_password", "")
	if err != nil {
		return err
	}
	return c.authenticate(ctx, pw)
}

// authenticate sends the trust password (POST /1.0/certificates), as Ansible's client does
// when trust_password is set; an already trusted certificate is not an error.
func (c *lxdClient) authenticate(ctx context.Context, password string) error {
	r, err := c.do(ctx, "POST", "/1.0/certificates", map[string]any{"type": "client", "password": password})
	if err != nil {
		return err
	}
	if r.Type == "error" && strings.Contains(r.Error, "already in trust store") {
		return nil
	}
	return r.err()
}

// strMap turns a module's dict argument (config, a device) into LXD's string map: LXD's
// values are strings, and a playbook's YAML gives numbers and booleans unquoted. A value
// becomes the text templating gives it (true, not True; 1000000, not 1e+06; JSON for a
// list or a dictionary).
func strMap(v any) map[string]string {
	m, _ := v.(map[string]any)
	out := make(map[string]string, len(m))
	for k, x := range m {
		out[k] = template.String(x)
	}
	return out
}

// devicesArg is a devices argument as LXD's map of string maps.
func devicesArg(a playbooks.Args, name string) (map[string]map[string]string, error) {
	m, ok := a[name].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w %q: a dictionary of devices is required", playbooks.ErrArgs, name)
	}
	out := make(map[string]map[string]string, len(m))
	for dev, v := range m {
		if _, ok := v.(map[string]any); !ok && v != nil {
			return nil, fmt.Errorf("%w %q: device %s: a dictionary is required", playbooks.ErrArgs, name, dev)
		}
		out[dev] = strMap(v)
	}
	return out, nil
}

// configArg is a config argument as LXD's string map.
func configArg(a playbooks.Args, name string) (map[string]string, error) {
	if _, ok := a[name].(map[string]any); !ok {
		return nil, fmt.Errorf("%w %q: a dictionary is required", playbooks.ErrArgs, name)
	}
	return strMap(a[name]), nil
}

// lxdSection is one section argument of an LXD object (config, devices, ...) and how it is
// read into LXD's type.
type lxdSection struct {
	name string
	read func(a playbooks.Args, name string) (any, error)
}

// sectionOf adapts an argument reader to lxdSection.read.
func sectionOf[T any](name string, read func(playbooks.Args, string) (T, error)) lxdSection {
	return lxdSection{name, func(a playbooks.Args, n string) (any, error) { return read(a, n) }}
}

// configSection, devicesSection, stringSection and boolSection are the section kinds the
// lxd modules take.
func configSection(name string) lxdSection  { return sectionOf(name, configArg) }
func devicesSection(name string) lxdSection { return sectionOf(name, devicesArg) }
func stringSection(name string) lxdSection {
	return sectionOf(name, func(a playbooks.Args, n string) (string, error) { return a.String(n, "") })
}
func boolSection(name string) lxdSection {
	return sectionOf(name, func(a playbooks.Args, n string) (bool, error) { return a.Bool(n, false) })
}

// readSections puts into given each section the task gives, in LXD's types, in order.
func readSections(a playbooks.Args, given map[string]any, sections ...lxdSection) error {
	for _, sec := range sections {
		if !a.Has(sec.name) {
			continue
		}
		v, err := sec.read(a, sec.name)
		if err != nil {
			return err
		}
		given[sec.name] = v
	}
	return nil
}

// lxdAborted reports an error after which an lxd module answers nothing: the host is
// unreachable or the run was cancelled.
func lxdAborted(err error) bool {
	return errors.Is(err, playbooks.ErrUnreachable) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// lxdResult is an lxd module's answer: changed when an action was taken, old_state and
// the actions taken.
func lxdResult(actions []string, oldState string) playbooks.Result {
	list := make([]any, len(actions))
	for i, a := range actions {
		list[i] = a
	}
	return playbooks.Result{Changed: len(actions) > 0, Data: map[string]any{"actions": list, "old_state": oldState}}
}

// lxdFailure turns res into Ansible's fail_json answer (msg, changed and actions) for err
// on the object named what ("instance c1"), and returns err too, so that the engine takes
// changed from the actions done (Ansible's len(actions) > 0), not from the change that
// failed.
func lxdFailure(res playbooks.Result, what string, err error) (playbooks.Result, error) {
	delete(res.Data, "old_state")
	res.Failed = true
	res.Msg = fmt.Sprintf("%s: %s", what, lxdMessage(err))
	return res, fmt.Errorf("%s: %w", what, err)
}

// lxdMessage is err's text without the ErrLXD prefix.
func lxdMessage(err error) string { return strings.TrimPrefix(err.Error(), ErrLXD.Error()+": ") }
