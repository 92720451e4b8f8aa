package lxc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// defaultPath is PATH inside the container for Exec.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ExecOptions are the optional parts of an Exec.
type ExecOptions struct {
	// Env holds extra KEY=VALUE variables; the environment is otherwise cleared to
	// PATH, HOME=/root and TERM=dumb.
	Env []string
	// Cwd is the working directory inside the container (default /).
	Cwd string
	// TTY, when set, runs the command on a terminal (see TTY; stderr is then unused).
	TTY *TTY
	// UID and GID run the command as that user and group of the container (0: root, as
	// LXD's exec user and group).
	UID, GID uint32
}

// Exec runs argv inside the running container with lxc-attach, streaming stdin (nil means
// empty) and the output, and returns the command's exit code. A command that cannot be
// found or run gives 126/127 with lxc-attach's message on stderr, as a shell does. Only a
// failure to run lxc-attach at all (or ctx ending) is an error; ctx alone bounds the call.
func (m *Manager) Exec(ctx context.Context, name string, argv []string, stdin io.Reader, stdout, stderr io.Writer, opts ExecOptions) (int, error) {
	if len(argv) == 0 {
		return -1, fmt.Errorf("%s: exec: empty command", name)
	}
	st, err := m.state(ctx, name)
	if err != nil {
		return -1, err
	}
	if st != StateRunning {
		return -1, fmt.Errorf("%s: %w (state %s)", name, ErrNotRunning, st)
	}
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	args := m.args(name, "--clear-env",
		"-v", "PATH="+defaultPath, "-v", "HOME=/root", "-v", "TERM=dumb")
	for _, e := range opts.Env {
		args = append(args, "-v", e)
	}
	if opts.UID != 0 {
		args = append(args, "--uid", strconv.FormatUint(uint64(opts.UID), 10))
	}
	if opts.GID != 0 {
		args = append(args, "--gid", strconv.FormatUint(uint64(opts.GID), 10))
	}
	if opts.Cwd != "" {
		argv = append([]string{"/bin/sh", "-c", `cd "$0" && exec "$@"`, opts.Cwd}, argv...)
	}
	args = append(append(args, "--"), argv...)
	if opts.TTY != nil {
		return m.execTTY(ctx, name, args, stdin, stdout, opts.TTY)
	}
	_, err = m.run(ctx, call{tool: "lxc-attach", name: name, args: args, stdin: stdin, stdout: stdout, stderr: stderr})
	var te *ToolError
	if errors.As(err, &te) && te.ExitCode >= 0 && ctx.Err() == nil {
		return te.ExitCode, nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}
