package playbooks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Builtins returns a fresh registry of the engine's built-in modules:
// command, shell, raw, ping, copy, file, template, wait_for, debug,
// set_fact, include_vars, assert, fail, pause, group_by and add_host (meta is handled by
// the engine).
func Builtins() Registry {
	return Registry{
		"command":      commandModule{},
		"shell":        commandModule{shell: true},
		"raw":          rawModule{},
		"ping":         ModuleFunc(pingModule),
		"copy":         copyModule{},
		"template":     copyModule{template: true},
		"file":         ModuleFunc(fileModule),
		"wait_for":     waitForModule{},
		"debug":        ModuleFunc(debugModule),
		"set_fact":     setFactModule{},
		"include_vars": includeVarsModule{},
		"assert":       ModuleFunc(assertModule),
		"fail":         ModuleFunc(failModule),
		"pause":        ModuleFunc(pauseModule),
		"async_status": asyncStatusModule{},
		"group_by":     groupByModule{},
		"add_host":     addHostModule{},
		"meta":         ModuleFunc(func(context.Context, *TaskContext) (Result, error) { return Result{}, nil }),

		templatedActionModule: templatedAction{},
	}
}

// allowArgs rejects arguments a built-in module does not know.
func allowArgs(module string, args Args, allowed ...string) error {
	var bad []string
	for k := range args {
		if !slices.Contains(allowed, k) {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	return fmt.Errorf("%w: %s does not take %s (it takes %s)", ErrArgs, module, strings.Join(bad, ", "), strings.Join(allowed, ", "))
}

// remote runs cmd on the task's host and returns trimmed output.
func remote(ctx context.Context, t *TaskContext, cmd string, stdin io.Reader) (stdout, stderr string, rc int, err error) {
	conn, err := t.Conn()
	if err != nil {
		return "", "", 0, err
	}
	out, errOut, rc, err := conn.Run(ctx, cmd, stdin, t.Become)
	if err != nil {
		if ctx.Err() != nil {
			return "", "", 0, ctx.Err()
		}
		return "", "", 0, fmt.Errorf("%w: running command: %w", ErrUnreachable, err)
	}
	return strings.TrimSuffix(string(out), "\n"), strings.TrimSuffix(string(errOut), "\n"), rc, nil
}

// remoteOK runs cmd and turns a non-zero exit code into an error.
func remoteOK(ctx context.Context, t *TaskContext, cmd string, stdin io.Reader) (string, error) {
	out, errOut, rc, err := remote(ctx, t, cmd, stdin)
	if err != nil {
		return "", err
	}
	if rc != 0 {
		return "", fmt.Errorf("%s: exit code %d: %s", firstWord(cmd), rc, strings.TrimSpace(errOut))
	}
	return out, nil
}

func firstWord(cmd string) string {
	if f := strings.Fields(cmd); len(f) > 0 {
		return f[0]
	}
	return cmd
}

func lines(s string) []any {
	out := []any{}
	if s == "" {
		return out
	}
	for _, l := range strings.Split(s, "\n") {
		out = append(out, l)
	}
	return out
}

// simpleDiff is a whole-file diff: every old line removed, every new line added.
func simpleDiff(name string, before, after []byte) string {
	if bytes.Equal(before, after) {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "--- before: %s\n+++ after: %s\n", name, name)
	for _, l := range strings.SplitAfter(string(before), "\n") {
		if l != "" {
			b.WriteString("-" + strings.TrimSuffix(l, "\n") + "\n")
		}
	}
	for _, l := range strings.SplitAfter(string(after), "\n") {
		if l != "" {
			b.WriteString("+" + strings.TrimSuffix(l, "\n") + "\n")
		}
	}
	return b.String()
}
