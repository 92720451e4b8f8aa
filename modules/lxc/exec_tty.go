package lxc

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/creack/pty"
)

// Window is a terminal's size in characters.
type Window struct {
	Width, Height uint16
}

// TTY asks Exec for a terminal, as `lxc exec` gives one: lxc-attach runs on a pseudo
// terminal of this host (its controlling terminal), so it opens one inside the container
// for the command and passes window changes on. Stdout then carries the terminal's output
// (the command's stdout and stderr, as a terminal mixes them).
type TTY struct {
	// Size is the terminal's size at the start.
	Size Window
	// Resize delivers the caller's window changes while the command runs (nil: none).
	Resize <-chan Window
}

// execTTY runs lxc-attach with args on a new pseudo terminal of size t.Size: stdin is
// typed into it, its output copied to out, and the command's exit code returned.
func (m *Manager) execTTY(ctx context.Context, name string, args []string, stdin io.Reader, out io.Writer, t *TTY) (int, error) {
	cmd := exec.CommandContext(ctx, "lxc-attach", args...)
	cmd.WaitDelay = 2 * time.Second
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: t.Size.Width, Rows: t.Size.Height})
	if err != nil {
		return -1, &ToolError{Tool: "lxc-attach", Container: name, ExitCode: -1, Err: err}
	}
	defer ptmx.Close()
	if stdin != nil {
		go func() { _, _ = io.Copy(ptmx, stdin) }()
	}
	stop := make(chan struct{})
	defer close(stop)
	go resizeLoop(ptmx, t.Resize, stop)
	copied := make(chan struct{})
	undo := &onlcrUndo{w: out}
	go func() { defer close(copied); _, _ = io.Copy(undo, ptmx); undo.Flush() }()
	err = cmd.Wait()
	select { // the output ends (EIO) once nothing holds the terminal any more
	case <-copied:
	case <-time.After(2 * time.Second):
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() >= 0 && ctx.Err() == nil {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, &ToolError{Tool: "lxc-attach", Container: name, ExitCode: -1, Err: err}
	}
	return 0, nil
}

// onlcrUndo removes what this host's terminal adds to the container's output. lxc-attach
// proxies the container's terminal onto its own and turns that one's output processing on
// (OPOST|ONLCR, also a new terminal's default), so every "\n" it writes arrives as "\r\n":
// a "\r\n" of the container's terminal became "\r\r\n". Dropping each "\r" just before a
// "\n" undoes exactly that, bare "\n"s of raw-mode programs included.
type onlcrUndo struct {
	w       io.Writer
	pending bool // a "\r" held back until the next byte tells whether it was added
}

// Write passes p on without the added "\r"s.
func (u *onlcrUndo) Write(p []byte) (int, error) {
	out := make([]byte, 0, len(p)+1)
	for _, b := range p {
		if u.pending {
			u.pending = false
			if b != '\n' {
				out = append(out, '\r')
			}
		}
		if b == '\r' {
			u.pending = true
			continue
		}
		out = append(out, b)
	}
	if _, err := u.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes a "\r" still held back.
func (u *onlcrUndo) Flush() {
	if u.pending {
		u.pending = false
		_, _ = u.w.Write([]byte{'\r'})
	}
}

// resizeLoop applies each window change to the terminal (the kernel then signals
// lxc-attach, which resizes the container's terminal) until stop closes.
func resizeLoop(ptmx *os.File, resize <-chan Window, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case w, ok := <-resize:
			if !ok {
				return
			}
			_ = pty.Setsize(ptmx, &pty.Winsize{Cols: w.Width, Rows: w.Height})
		}
	}
}
