package verbs

import (
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"orch/nodeagent/api"
)

// defaultWindow is the size of a terminal given to a command when the caller has none
// (exec -t with stdout a pipe), as a serial console's.
var defaultWindow = api.Window{Width: 80, Height: 24}

// localTerminal is the caller's side of an exec with a terminal: raw mode on its stdin
// terminal while the command runs, and its window size and changes.
type localTerminal struct {
	in, out *os.File // nil when not a terminal
	saved   *term.State
	winch   chan os.Signal
}

// openTerminal puts stdin, when it is a terminal, into raw mode (keys go to the command
// as typed, ^C included) and notes which of stdin and stdout are terminals.
func openTerminal(stdin io.Reader, stdout io.Writer) (*localTerminal, error) {
	t := &localTerminal{}
	if f, ok := stdin.(*os.File); ok && isTerminal(f) {
		t.in = f
		st, err := term.MakeRaw(int(f.Fd()))
		if err != nil {
			return nil, err
		}
		t.saved = st
	}
	if f, ok := stdout.(*os.File); ok && isTerminal(f) {
		t.out = f
	}
	return t, nil
}

// size is the caller's window size (defaultWindow without a terminal).
func (t *localTerminal) size() api.Window {
	for _, f := range []*os.File{t.out, t.in} {
		if f == nil {
			continue
		}
		if w, h, err := term.GetSize(int(f.Fd())); err == nil && w > 0 && h > 0 {
			return api.Window{Width: uint16(w), Height: uint16(h)}
		}
	}
	return defaultWindow
}

// resizes delivers the window's size at each SIGWINCH (nil without a terminal).
func (t *localTerminal) resizes() <-chan api.Window {
	if t.in == nil && t.out == nil {
		return nil
	}
	t.winch = make(chan os.Signal, 1)
	signal.Notify(t.winch, syscall.SIGWINCH)
	out := make(chan api.Window, 1)
	go func() {
		defer close(out)
		for range t.winch {
			select { // keep only the latest size (one producer, so there is room after)
			case <-out:
			default:
			}
			out <- t.size()
		}
	}()
	return out
}

// restore leaves raw mode and stops watching the window.
func (t *localTerminal) restore() {
	if t.winch != nil {
		signal.Stop(t.winch)
		close(t.winch)
	}
	if t.saved != nil {
		_ = term.Restore(int(t.in.Fd()), t.saved)
	}
}
