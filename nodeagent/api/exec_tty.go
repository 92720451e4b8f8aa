package api

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
)

// An exec with a terminal (`exec -t`): the query carries tty=1 and the starting width and
// height; the request body is then a stream of frames too (WriteExecFrame's format), so
// that window changes can travel with the typed input; the answer's stdout frames carry
// the terminal's output (stdout and stderr mixed, as on any terminal).

// Frame kinds of an exec request body with a terminal.
const (
	// FrameStdin carries typed input.
	FrameStdin byte = 5
	// FrameResize carries a window size: width then height, 2 bytes each, big-endian.
	FrameResize byte = 6
)

// Window is a terminal's size in characters.
type Window struct {
	Width, Height uint16
}

// EncodeWindow is a FrameResize payload.
func EncodeWindow(w Window) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint16(b, w.Width)
	binary.BigEndian.PutUint16(b[2:], w.Height)
	return b
}

// DecodeWindow reads a FrameResize payload.
func DecodeWindow(p []byte) (Window, error) {
	if len(p) != 4 {
		return Window{}, fmt.Errorf("%w: resize frame of %d bytes", ErrExecStream, len(p))
	}
	return Window{Width: binary.BigEndian.Uint16(p), Height: binary.BigEndian.Uint16(p[2:])}, nil
}

// ReadExecFrame reads one frame of r.
func ReadExecFrame(r io.Reader) (kind byte, payload []byte, err error) {
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > 16<<20 {
		return 0, nil, fmt.Errorf("%w: frame of %d bytes", ErrExecStream, n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, fmt.Errorf("%w: %v", ErrExecStream, err)
	}
	return hdr[0], payload, nil
}

// ExecTTYPath is ExecPath for a terminal of size win.
func ExecTTYPath(name string, argv []string, opts ExecOptions, win Window) string {
	q := url.Values{"tty": {"1"}, "width": {strconv.Itoa(int(win.Width))}, "height": {strconv.Itoa(int(win.Height))}}
	return ExecPath(name, argv, opts) + "&" + q.Encode()
}

// ExecTTY runs argv in the instance on a terminal of size win, as `lxc exec -t`: stdin
// (nil: none) is typed into it, each window size from resize is passed on, and the
// terminal's output goes to out. It returns the command's exit code.
func (c *Client) ExecTTY(ctx context.Context, name string, argv []string, opts ExecOptions, win Window,
	stdin io.Reader, resize <-chan Window, out io.Writer) (int, error) {
	pr, pw := io.Pipe()
	defer pw.Close()
	fw := &lockedFrames{w: pw}
	if stdin != nil {
		go fw.copyFrom(stdin)
	}
	if resize != nil {
		go fw.resizes(ctx, resize)
	}
	hdr := http.Header{"Content-Type": {"application/octet-stream"}}
	resp, err := c.Raw(ctx, http.MethodPost, ExecTTYPath(name, argv, opts, win), pr, hdr)
	if err != nil {
		return -1, err
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != ExecContentType {
		return -1, decodeResponse(resp, nil)
	}
	return ReadExecFrames(resp.Body, out, out)
}

// lockedFrames writes frames from several goroutines onto one request body.
type lockedFrames struct {
	mu sync.Mutex
	w  *io.PipeWriter
}

func (f *lockedFrames) write(kind byte, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return WriteExecFrame(f.w, kind, p)
}

// copyFrom sends r as stdin frames; at its end it sends nothing more (the terminal's
// end-of-file is the user's ^D, as on any terminal).
func (f *lockedFrames) copyFrom(r io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 && f.write(FrameStdin, buf[:n]) != nil {
			return
		}
		if err != nil {
			return
		}
	}
}

// resizes sends each window size until ctx ends or resize closes.
func (f *lockedFrames) resizes(ctx context.Context, resize <-chan Window) {
	for {
		select {
		case <-ctx.Done():
			return
		case w, ok := <-resize:
			if !ok || f.write(FrameResize, EncodeWindow(w)) != nil {
				return
			}
		}
	}
}
