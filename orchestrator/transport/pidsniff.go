package transport

import (
	"bytes"
	"io"
	"strconv"
	"sync"
)

// pidMarker starts the line a wrapped command prints on stderr with its shell's PID, so
// that a cancelled Run can kill the remote process group (OpenSSH refuses "signal"
// requests in many configurations, and closing the channel does not stop the command).
const pidMarker = "orch-run-pid:"

// withPIDMarker prefixes cmd with the printing of the shell's PID on stderr.
func withPIDMarker(cmd string) string {
	return "printf '" + pidMarker + "%d\\n' $$ >&2; " + cmd
}

// pidSniffer passes stderr through to w, removing the marker line and remembering the
// PID it carries. Lines before the marker (sshd's own warnings) pass through unchanged.
type pidSniffer struct {
	w io.Writer

	mu   sync.Mutex
	buf  []byte
	done bool
	pid  int
}

// Write implements io.Writer.
func (p *pidSniffer) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return p.w.Write(b)
	}
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			if len(p.buf) > 4096 { // no marker coming: stop looking
				return len(b), p.flushLocked()
			}
			return len(b), nil
		}
		line := p.buf[:i]
		if rest, ok := bytes.CutPrefix(line, []byte(pidMarker)); ok {
			p.pid, _ = strconv.Atoi(string(rest))
			p.buf = p.buf[i+1:]
			return len(b), p.flushLocked()
		}
		if _, err := p.w.Write(p.buf[:i+1]); err != nil {
			return len(b), err
		}
		p.buf = p.buf[i+1:]
	}
}

// flushLocked writes what is buffered and stops sniffing.
func (p *pidSniffer) flushLocked() error {
	p.done = true
	buf := p.buf
	p.buf = nil
	if len(buf) == 0 {
		return nil
	}
	_, err := p.w.Write(buf)
	return err
}

// Flush writes a trailing partial line; call after the session ends.
func (p *pidSniffer) Flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.flushLocked()
}

// PID is the remote shell's PID, 0 if not seen yet.
func (p *pidSniffer) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}
