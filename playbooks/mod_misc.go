package playbooks

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"orch/internal/shell"
	"orch/playbooks/template"
)

// debugModule prints msg, or the value of the expression in var.
func debugModule(_ context.Context, t *TaskContext) (Result, error) {
	if err := allowArgs("debug", t.Args, "msg", "var", "verbosity"); err != nil {
		return Result{}, err
	}
	if t.Args.Has("var") {
		name, err := t.Args.String("var", "")
		if err != nil {
			return Result{}, err
		}
		v, err := t.Eval(name)
		if err != nil {
			return Result{}, err
		}
		return Result{Msg: name + ": " + template.String(v), Data: map[string]any{name: v}}, nil
	}
	msg, ok := t.Args["msg"]
	if !ok {
		msg = "Hello world!"
	}
	return Result{Msg: template.String(msg), Data: map[string]any{"msg": msg}}, nil
}

// setFactModule sets host variables (facts) that outlive the play.
type setFactModule struct{}

// FreeForm parses `a=1 b={{ x }}`.
func (setFactModule) FreeForm(raw string) (map[string]any, error) { return ParseKV(raw) }

func (setFactModule) Run(_ context.Context, t *TaskContext) (Result, error) {
	facts := map[string]any{}
	for k, v := range t.Args {
		if k != "cacheable" {
			facts[k] = v
		}
	}
	if len(facts) == 0 {
		return Result{}, fmt.Errorf("%w: set_fact needs at least one variable", ErrArgs)
	}
	return Result{Data: map[string]any{"ansible_facts": facts}}, nil
}

// assertModule fails unless every expression in that holds.
func assertModule(_ context.Context, t *TaskContext) (Result, error) {
	if err := allowArgs("assert", t.Args, "that", "fail_msg", "msg", "success_msg", "quiet"); err != nil {
		return Result{}, err
	}
	that, err := t.Args.StringList("that")
	if err != nil || len(that) == 0 {
		return Result{}, fmt.Errorf("%w \"that\": a list of expressions is required", ErrArgs)
	}
	for _, cond := range that {
		ok, err := t.eng.Truth(cond, t.vars)
		if err != nil {
			return Result{}, fmt.Errorf("assert %q: %w", cond, err)
		}
		if !ok {
			msg, _ := t.Args.String("fail_msg", "")
			if msg == "" {
				msg, _ = t.Args.String("msg", "Assertion failed: "+cond)
			}
			return Result{Failed: true, Msg: msg, Data: map[string]any{"assertion": cond, "evaluated_to": false}}, nil
		}
	}
	msg, _ := t.Args.String("success_msg", "All assertions passed")
	return Result{Msg: msg}, nil
}

// failModule always fails, with msg.
func failModule(_ context.Context, t *TaskContext) (Result, error) {
	if err := allowArgs("fail", t.Args, "msg"); err != nil {
		return Result{}, err
	}
	msg, err := t.Args.String("msg", "Failed as requested from task")
	return Result{Failed: true, Msg: msg}, err
}

// pauseModule waits seconds/minutes; prompts are not supported.
func pauseModule(ctx context.Context, t *TaskContext) (Result, error) {
	if err := allowArgs("pause", t.Args, "seconds", "minutes"); err != nil {
		return Result{}, fmt.Errorf("%w (prompts are not supported)", err)
	}
	secs, err := t.Args.Float("seconds", 0)
	if err != nil {
		return Result{}, err
	}
	mins, err := t.Args.Float("minutes", 0)
	if err != nil {
		return Result{}, err
	}
	d := time.Duration((secs + 60*mins) * float64(time.Second))
	if err := sleep(ctx, d); err != nil {
		return Result{}, err
	}
	return Result{Data: map[string]any{"delta": d.Seconds()}}, nil
}

// waitForModule waits for a TCP port (dialled from the controller, where
// the engine runs) to open or close, or for a path on the host to appear
// or disappear.
type waitForModule struct{}

type waitSpec struct {
	host, path, state   string
	port                int
	timeout, delay, nap time.Duration
	dialTimeout         time.Duration
}

func (waitForModule) Run(ctx context.Context, t *TaskContext) (Result, error) {
	w, err := waitForSpec(t)
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	if err := sleep(ctx, w.delay); err != nil {
		return Result{}, err
	}
	deadline := start.Add(w.timeout)
	for {
		done, err := w.check(ctx, t)
		if err != nil {
			return Result{}, err
		}
		if done {
			return Result{Data: map[string]any{"elapsed": int(time.Since(start).Seconds()), "state": w.state}}, nil
		}
		if time.Now().After(deadline) {
			return Result{Failed: true, Msg: fmt.Sprintf("timeout after %s waiting for %s", w.timeout, w.what())}, nil
		}
		if err := sleep(ctx, w.nap); err != nil {
			return Result{}, err
		}
	}
}

func waitForSpec(t *TaskContext) (waitSpec, error) {
	a := t.Args
	if err := allowArgs("wait_for", a, "host", "port", "path", "state", "timeout", "delay", "sleep", "connect_timeout"); err != nil {
		return waitSpec{}, err
	}
	w := waitSpec{}
	var err error
	def := t.Host
	if v, ok := t.Vars().Get("ansible_host"); ok {
		def = template.String(v)
	}
	w.host, _ = a.String("host", def)
	w.path, _ = a.String("path", "")
	if w.port, err = a.Int("port", 0); err != nil {
		return w, err
	}
	if (w.port == 0) == (w.path == "") {
		return w, fmt.Errorf("%w: wait_for needs port or path", ErrArgs)
	}
	if w.state, err = a.String("state", "started"); err != nil {
		return w, err
	}
	switch w.state {
	case "started", "present", "stopped", "absent":
	default:
		return w, fmt.Errorf("%w \"state\": %q is not started, stopped, present or absent", ErrArgs, w.state)
	}
	durations := []struct {
		key string
		def float64
		dst *time.Duration
	}{{"timeout", 300, &w.timeout}, {"delay", 0, &w.delay}, {"sleep", 1, &w.nap}, {"connect_timeout", 5, &w.dialTimeout}}
	for _, d := range durations {
		f, err := a.Float(d.key, d.def)
		if err != nil {
			return w, err
		}
		*d.dst = time.Duration(f * float64(time.Second))
	}
	return w, nil
}

func (w waitSpec) want() bool { return w.state == "started" || w.state == "present" }

func (w waitSpec) what() string {
	if w.path != "" {
		return fmt.Sprintf("%s to be %s", w.path, w.state)
	}
	return fmt.Sprintf("%s to be %s", net.JoinHostPort(w.host, strconv.Itoa(w.port)), w.state)
}

func (w waitSpec) check(ctx context.Context, t *TaskContext) (bool, error) {
	if w.path != "" {
		_, _, rc, err := remote(ctx, t, "test -e "+shell.Quote(w.path), nil)
		return (rc == 0) == w.want(), err
	}
	d := net.Dialer{Timeout: w.dialTimeout}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(w.host, strconv.Itoa(w.port)))
	if err == nil {
		conn.Close()
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	return (err == nil) == w.want(), nil
}

// includeVarsModule loads a YAML file of variables (on the controller,
// relative to the playbook or its vars/ directory) as host facts; name puts
// them under one variable.
type includeVarsModule struct{}

// FreeForm parses `include_vars: file.yml`.
func (includeVarsModule) FreeForm(raw string) (map[string]any, error) {
	return map[string]any{"file": strings.TrimSpace(raw)}, nil
}

func (includeVarsModule) Run(_ context.Context, t *TaskContext) (Result, error) {
	if err := allowArgs("include_vars", t.Args, "file", "name", "_raw_params"); err != nil {
		return Result{}, err
	}
	file, _ := t.Args.String("file", "")
	if file == "" {
		file, _ = t.Args.String("_raw_params", "")
	}
	if file == "" {
		return Result{}, fmt.Errorf("%w: include_vars needs a file", ErrArgs)
	}
	path := localFile(t, file, "vars")
	data, err := os.ReadFile(path)
	if err != nil {
		return Result{}, fmt.Errorf("%w: include_vars: %w", ErrArgs, err)
	}
	var vars map[string]any
	if err := yaml.Unmarshal(data, &vars); err != nil {
		return Result{}, fmt.Errorf("%w: include_vars %s: %w", ErrArgs, path, err)
	}
	facts, _ := normalize(vars).(map[string]any)
	if facts == nil {
		facts = map[string]any{}
	}
	if name, _ := t.Args.String("name", ""); name != "" {
		facts = map[string]any{name: facts}
	}
	return Result{Msg: path, Data: map[string]any{"ansible_facts": facts}}, nil
}
