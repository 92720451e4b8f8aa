package lxc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
)

// ToolError describes a failed LXC tool call.
type ToolError struct {
	// Tool is the command, such as "lxc-start".
	Tool string
	// Container is the container the call was about.
	Container string
	// ExitCode is the tool's exit code, or -1 when it did not exit normally.
	ExitCode int
	// Stderr is the tail of what the tool wrote to stderr.
	Stderr string
	// Err is the underlying error (exit status, timeout, missing binary).
	Err error
}

// Error names the container, the tool, the exit code and stderr.
func (e *ToolError) Error() string {
	msg := fmt.Sprintf("%s: %s: %v", e.Container, e.Tool, e.Err)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// Unwrap returns both ErrTool and the underlying error.
func (e *ToolError) Unwrap() []error { return []error{ErrTool, e.Err} }

// call is one tool invocation.
type call struct {
	tool   string
	name   string
	args   []string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// run executes c under ctx and returns its stdout (when c.stdout is nil).
func (m *Manager) run(ctx context.Context, c call) (string, error) {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, c.tool, c.args...)
	cmd.Stdin = c.stdin
	cmd.Stdout = &out
	if c.stdout != nil {
		cmd.Stdout = c.stdout
	}
	cmd.Stderr = &errb
	if c.stderr != nil {
		cmd.Stderr = io.MultiWriter(c.stderr, &tailWriter{buf: &errb})
	}
	cmd.WaitDelay = 2 * time.Second
	start := time.Now()
	err := cmd.Run()
	m.log.Debug("lxc call", "tool", c.tool, "container", c.name, "took", time.Since(start), "err", err)
	if err == nil {
		return out.String(), nil
	}
	te := &ToolError{Tool: c.tool, Container: c.name, ExitCode: -1, Stderr: tail(errb.String(), 2048), Err: err}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		te.ExitCode = ee.ExitCode()
	}
	if ctx.Err() != nil {
		te.Err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return out.String(), te
}

// args builds "-n NAME -P LXCPATH" followed by extra.
func (m *Manager) args(name string, extra ...string) []string {
	return append([]string{"-n", name, "-P", m.cfg.LXCPath}, extra...)
}

// tail returns at most n trailing bytes of s, trimmed.
func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

// tailWriter keeps the last 4 KiB written to it.
type tailWriter struct{ buf *bytes.Buffer }

func (w *tailWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	if w.buf.Len() > 8192 {
		b := w.buf.Bytes()[w.buf.Len()-4096:]
		keep := append([]byte(nil), b...)
		w.buf.Reset()
		w.buf.Write(keep)
	}
	return len(p), nil
}
