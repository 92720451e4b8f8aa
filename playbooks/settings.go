package playbooks

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"strings"

	"orch/internal/shell"
	"orch/playbooks/template"
)

// settings are a task's keywords for one host, templated ones evaluated:
// privilege escalation, check/diff mode, connection and environment.
type settings struct {
	become, check, diff, ignoreErrors bool
	conn                              ConnKeywords
	env                               map[string]string
}

// settings evaluates the keywords of t (and its blocks) for one host.
func (p *playRun) settings(t *Task, in *inherit, vars map[string]any) (settings, error) {
	r := p.r
	s := settings{check: r.opts.Check, diff: r.opts.Diff, conn: in.conn.over(t.Conn)}
	var err error
	flag := func(key string, static *bool, inherited *bool, def bool) bool {
		if err != nil {
			return def
		}
		if src, ok := t.dyn[key]; ok {
			var b bool
			b, err = r.eng.Truth(src, vars)
			return b
		}
		if static != nil {
			return *static
		}
		for i := len(in.dyn) - 1; i >= 0; i-- {
			if src, ok := in.dyn[i][key]; ok {
				var b bool
				b, err = r.eng.Truth(src, vars)
				return b
			}
		}
		if inherited != nil {
			return *inherited
		}
		return def
	}
	s.become = flag("become", t.Become, in.become, false)
	s.check = flag("check_mode", t.CheckMode, in.checkMode, s.check)
	s.diff = flag("diff", t.Diff, in.diff, s.diff)
	ignore := t.IgnoreErrors || in.ignoreErrors
	s.ignoreErrors = flag("ignore_errors", &ignore, nil, false)
	if err != nil {
		return s, err
	}
	if s.conn, err = p.renderConn(s.conn, vars); err != nil {
		return s, err
	}
	s.env, err = p.environment(append(slices.Clip(in.env), t.Environment), vars)
	return s, err
}

// renderConn templates the connection keywords.
func (p *playRun) renderConn(c ConnKeywords, vars map[string]any) (ConnKeywords, error) {
	for _, f := range []*string{&c.RemoteUser, &c.BecomeUser, &c.BecomeMethod, &c.Connection} {
		if !strings.Contains(*f, "{{") {
			continue
		}
		v, err := p.r.eng.RenderString(*f, vars)
		if err != nil {
			return c, err
		}
		*f = template.String(v)
	}
	return c, nil
}

// environment merges the environment: keywords, outer first, templated.
func (p *playRun) environment(layers []any, vars map[string]any) (map[string]string, error) {
	var out map[string]string
	for _, l := range layers {
		if l == nil {
			continue
		}
		v, err := p.r.eng.Render(l, vars)
		if err != nil {
			return nil, fmt.Errorf("environment: %w", err)
		}
		m, ok := v.(map[string]any)
		if !ok {
			if v == nil || v == "" {
				continue
			}
			return nil, fmt.Errorf("environment: expected a mapping, got %T", v)
		}
		if out == nil {
			out = map[string]string{}
		}
		for k, x := range m {
			out[k] = template.String(x)
		}
	}
	return out, nil
}

// withDefaults puts module_defaults under a task's static arguments: the
// module's short and FQCN names both match (ModuleName normalised them).
func withDefaults(args map[string]any, module string, layers []map[string]map[string]any) map[string]any {
	if len(layers) == 0 {
		return args
	}
	var defs map[string]any
	for _, l := range layers {
		if d, ok := l[module]; ok {
			defs = mergeArgs(defs, d)
		}
	}
	if defs == nil {
		return args
	}
	return mergeArgs(defs, args)
}

// taskConn is a Conn with a task's environment and become_user/become_method
// applied to the commands it runs. Push is the underlying connection's.
type taskConn struct {
	Conn
	env          map[string]string
	becomeUser   string
	becomeMethod string
	become       bool
}

// wrapConn applies s to c when it asks for more than c does by itself.
func wrapConn(c Conn, s settings) Conn {
	user, method := s.conn.BecomeUser, s.conn.BecomeMethod
	if len(s.env) == 0 && (user == "" || user == "root") && (method == "" || method == "sudo") {
		return c
	}
	return taskConn{Conn: c, env: s.env, becomeUser: user, becomeMethod: method, become: s.become}
}

// Push writes the file as the connection does, then, with become to a user
// other than root, gives a file it wrote to that user and their group, as
// Ansible's copy leaves a file the become user wrote (a module's owner/group
// arguments are applied after and win).
func (c taskConn) Push(ctx context.Context, local, remote string, mode fs.FileMode) (bool, error) {
	changed, err := c.Conn.Push(ctx, local, remote, mode)
	if err != nil || !changed || !c.become || c.becomeUser == "" || c.becomeUser == "root" {
		return changed, err
	}
	u := shell.Quote(c.becomeUser)
	cmd := fmt.Sprintf("chown %s:\"$(id -gn %s)\" %s", u, u, shell.Quote(remote))
	_, stderr, code, err := c.Conn.Run(ctx, cmd, nil, true)
	if err == nil && code != 0 {
		err = fmt.Errorf("%s: giving it to %s: %s", remote, c.becomeUser, strings.TrimSpace(string(stderr)))
	}
	return changed, err
}

// Run prefixes the environment and, with become, switches to the become
// user: `sudo -n -H -u USER` for sudo (the login user's sudo, no root
// first), `su -s /bin/sh USER -c` for su (as root, so no password is asked).
func (c taskConn) Run(ctx context.Context, cmd string, stdin io.Reader, become bool) ([]byte, []byte, int, error) {
	if len(c.env) > 0 {
		var b strings.Builder
		for _, k := range slices.Sorted(maps.Keys(c.env)) {
			fmt.Fprintf(&b, "export %s=%s; ", k, shell.Quote(c.env[k]))
		}
		cmd = b.String() + cmd
	}
	user := c.becomeUser
	if user == "" {
		user = "root"
	}
	if become {
		switch {
		case c.becomeMethod == "su":
			cmd = "su -s /bin/sh " + shell.Quote(user) + " -c " + shell.Quote(cmd)
		case user != "root":
			cmd = "sudo -n -H -u " + shell.Quote(user) + " -- sh -c " + shell.Quote(cmd)
			become = false
		}
	}
	return c.Conn.Run(ctx, cmd, stdin, become)
}
