package instances

import (
	"io"
	"net/url"
	"strconv"

	"orch/modules/lxc"
	"orch/nodeagent/api"
	"orch/nodeagent/daemon/rest"
)

// ttyInput is the input of an exec with a terminal (api.ExecTTY): the request body's
// frames split into the typed bytes (read from it) and the window changes (tty.Resize).
type ttyInput struct {
	*io.PipeReader
	tty *lxc.TTY
}

// newTTYInput reads the terminal's starting size from q and starts splitting body; the
// caller closes the input when the command is over.
func newTTYInput(q url.Values, body io.Reader) (*ttyInput, error) {
	w, werr := strconv.ParseUint(q.Get("width"), 10, 16)
	h, herr := strconv.ParseUint(q.Get("height"), 10, 16)
	if werr != nil || herr != nil || w == 0 || h == 0 {
		return nil, rest.BadRequest("tty: width %q and height %q must be positive numbers of characters", q.Get("width"), q.Get("height"))
	}
	resize := make(chan lxc.Window, 16)
	pr, pw := io.Pipe()
	go splitTTYFrames(body, pw, resize)
	return &ttyInput{PipeReader: pr, tty: &lxc.TTY{Size: lxc.Window{Width: uint16(w), Height: uint16(h)}, Resize: resize}}, nil
}

// splitTTYFrames copies stdin frames to stdin and window sizes to resize until the body
// ends or stdin is closed; a window change that finds resize full is dropped (a later
// one follows it).
func splitTTYFrames(body io.Reader, stdin *io.PipeWriter, resize chan<- lxc.Window) {
	defer close(resize)
	defer stdin.Close()
	for {
		kind, p, err := api.ReadExecFrame(body)
		if err != nil {
			return
		}
		switch kind {
		case api.FrameStdin:
			if _, err := stdin.Write(p); err != nil {
				return
			}
		case api.FrameResize:
			if w, err := api.DecodeWindow(p); err == nil {
				select {
				case resize <- lxc.Window{Width: w.Width, Height: w.Height}:
				default:
				}
			}
		}
	}
}
