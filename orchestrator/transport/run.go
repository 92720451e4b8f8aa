package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"orch/internal/shell"
)

// RunOptions tunes one Run.
type RunOptions struct {
	// Stdin feeds the command's standard input; nil means empty.
	Stdin io.Reader
	// Become runs the command as root through `sudo -n` (when the login user is not root).
	Become bool
	// Stdout and Stderr, when set, also receive the output as it arrives.
	Stdout, Stderr io.Writer
}

// Result is a finished command. A non-zero ExitCode is a result, not an error.
type Result struct {
	// Stdout and Stderr are the command's complete output.
	Stdout, Stderr []byte
	// ExitCode is the exit status; 128+N when killed by signal N.
	ExitCode int
}

// Run runs cmd with the login user's shell in a new session and waits for it. Cancelling
// ctx kills the remote command's process group (SIGKILL) and closes the session, and Run
// returns ctx's error. With Become, a sudo that wants a password fails with ErrBecome.
//
// A command without streamed output, and with no stdin or a small one already in memory
// (see runnerStdin), goes to the connection's command runner (see runner.go) when the host
// can run one, else to a session of its own.
func (c *Conn) Run(ctx context.Context, cmd string, opts RunOptions) (Result, error) {
	start := time.Now()
	via := "session"
	var res Result
	var err error
	if stdin, ok := smallStdin(opts.Stdin); ok && opts.Stdout == nil && opts.Stderr == nil {
		become := c.becomes(opts.Become)
		if r := c.takeRunner(ctx, become); r != nil {
			if stdin == nil || r.b64 {
				via = "runner"
				res, err = r.run(ctx, cmd, stdin)
			}
			c.putRunner(r)
		}
	}
	if via == "session" {
		res, err = c.runSession(ctx, cmd, opts)
	}
	// Only the program's name: arguments may carry secrets.
	c.log.Debug("command", "program", programName(cmd), "via", via, "exit", res.ExitCode,
		"ms", float64(time.Since(start).Microseconds())/1000, "err", err)
	return res, err
}

// smallStdin returns the bytes of in when the runner may take them: none (nil), or a reader
// that holds at most runnerStdin bytes in memory (bytes.Reader, strings.Reader,
// bytes.Buffer), read without consuming it. Anything else may be a stream, and keeps a session.
func smallStdin(in io.Reader) ([]byte, bool) {
	if in == nil {
		return nil, true
	}
	sized, ok := in.(interface{ Len() int })
	if !ok || sized.Len() > runnerStdin {
		return nil, false
	}
	seeker, ok := in.(io.Seeker)
	if !ok {
		if b, isBuf := in.(*bytes.Buffer); isBuf {
			return append([]byte{}, b.Bytes()...), true
		}
		return nil, false
	}
	pos, err := seeker.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, false
	}
	b, err := io.ReadAll(in)
	if _, serr := seeker.Seek(pos, io.SeekStart); err != nil || serr != nil {
		return nil, false
	}
	return append([]byte{}, b...), true
}

// programName is the first word of a shell command.
func programName(cmd string) string {
	f := strings.Fields(cmd)
	if len(f) == 0 {
		return ""
	}
	return path.Base(strings.Trim(f[0], `'"`))
}

// runSession runs cmd in a session of its own.
func (c *Conn) runSession(ctx context.Context, cmd string, opts RunOptions) (Result, error) {
	become := c.becomes(opts.Become)
	if become {
		cmd = BecomeCommand(cmd)
	}
	s, release, err := c.newSession(ctx)
	if err != nil {
		return Result{}, err
	}
	defer release()
	var stdout, stderr bytes.Buffer
	sniff := &pidSniffer{w: teeTo(&stderr, opts.Stderr)}
	s.Stdin = opts.Stdin
	s.Stdout = teeTo(&stdout, opts.Stdout)
	s.Stderr = sniff
	err = c.wait(ctx, s, withPIDMarker(cmd), sniff, become)
	sniff.Flush()
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if err := c.exitStatus(ctx, err, &res); err != nil {
		return res, err
	}
	if become {
		return res, c.becomeError(res)
	}
	return res, nil
}

// wait starts cmd and waits for it or for ctx, whichever ends first; on ctx's end it kills
// the remote process group and closes the session without waiting for the command.
func (c *Conn) wait(ctx context.Context, s *ssh.Session, cmd string, sniff *pidSniffer, become bool) error {
	if err := s.Start(cmd); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		c.kill(sniff.PID(), become)
		s.Close()
		select {
		case <-done:
		case <-time.After(killGrace):
		}
		return ctx.Err()
	}
}

// killGrace bounds the wait for a killed command's session to end.
const killGrace = 5 * time.Second

// kill sends SIGKILL to the remote process group led by pid, or (when pid leads none, as a
// runner's commands) to pid's children and pid, from a new session.
func (c *Conn) kill(pid int, become bool) {
	if pid <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), killGrace)
	defer cancel()
	p := strconv.Itoa(pid)
	script := "kill -KILL -- -" + p + " 2>/dev/null || { pkill -KILL -P " + p + " 2>/dev/null; kill -KILL " + p + "; }"
	if _, err := c.runSession(ctx, script, RunOptions{Become: become}); err != nil {
		c.log.Debug("killing cancelled command", "pid", pid, "err", err)
	}
}

// exitStatus turns Wait's error into res.ExitCode, or returns the error that prevented
// the command from finishing.
func (c *Conn) exitStatus(ctx context.Context, err error, res *Result) error {
	var exitErr *ssh.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exitErr):
		res.ExitCode = exitErr.ExitStatus()
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("%s: command interrupted: %w", c.cfg.Name, ctx.Err())
	default:
		var missing *ssh.ExitMissingError
		if errors.As(err, &missing) {
			err = fmt.Errorf("%w: %w", io.ErrUnexpectedEOF, err) // session torn down mid-command
		}
		return c.wrapErr(fmt.Errorf("running command: %w", err))
	}
}

// sudoFailures are sudo's messages for "cannot become root without a password".
var sudoFailures = []string{
	"sudo: a password is required",
	"sudo: a terminal is required",
	"is not in the sudoers file",
	"is not allowed to execute",
}

// becomeError recognises a failed `sudo -n`.
func (c *Conn) becomeError(res Result) error {
	if res.ExitCode == 0 {
		return nil
	}
	msg := string(res.Stderr)
	for _, f := range sudoFailures {
		if strings.Contains(msg, f) {
			return fmt.Errorf("%s: %w: sudo as %q needs a password or is not permitted (%s); "+
				"grant NOPASSWD sudo to that user or connect as root", c.cfg.Name, ErrBecome, c.cfg.User,
				firstLine(msg))
		}
	}
	if res.ExitCode == 127 && strings.Contains(msg, "sudo") {
		return fmt.Errorf("%s: %w: sudo is not installed: %s", c.cfg.Name, ErrBecome, firstLine(msg))
	}
	return nil
}

// BecomeCommand wraps a shell command so that it runs as root: `sudo -n -- sh -c '…'`.
func BecomeCommand(cmd string) string {
	return "sudo -n -- sh -c " + shell.Quote(cmd)
}

// teeTo writes to buf and, when set, to w.
func teeTo(buf *bytes.Buffer, w io.Writer) io.Writer {
	if w == nil {
		return buf
	}
	return io.MultiWriter(buf, w)
}

// firstLine returns s up to its first newline, trimmed.
func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
