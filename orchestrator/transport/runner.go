package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"orch/internal/shell"
)

// A runner is one long-lived POSIX shell on the host that runs commands one after another.
// A command through it costs a fork and an exec on the host instead of a new SSH session
// and a login shell (which sources the user's rc files: ~100 ms on a host with pyenv).
//
// Protocol, over the session's stdin and stdout: for each command the runner's shell reads
// one line (the command is one quoted word, so the line is complete whatever the command
// contains), runs `/bin/sh -c COMMAND` in the background (its own $$, as in a session of
// its own; Ansible's shell module also uses /bin/sh) with stdin from /dev/null
// and stdout/stderr to files in a private temporary directory, and writes
//
//	RS nonce " pid " PID LF            as soon as the command started
//	stdout bytes RS nonce " " RC LF    when it ended
//	stderr bytes RS nonce LF
//
// where RS is 0x1e and nonce a random hex string fixed per runner. Output goes through
// files, not straight to the stream, so a background process the command leaves behind
// cannot write into a later command's answer.
type runner struct {
	c      *Conn
	become bool
	sess   *ssh.Session
	stdin  io.WriteCloser
	out    *bufio.Reader
	marker []byte // RS + nonce
	b64    bool   // the host has base64: commands with a small stdin can run here (runnerStdin)
	broken bool
	seq    int // commands sent
	once   sync.Once
}

// runnerStartTimeout bounds the runner's start (login shell, sudo, mktemp).
const runnerStartTimeout = 20 * time.Second

// runnerVar names the runner's temporary directory in its shell; commands see it but have
// no reason to use it.
const runnerVar = "orch_runner_dir"

// startRunner opens a session running a shell (through sudo with become) and waits for its
// ready line. It holds one of the connection's session slots until closed.
func (c *Conn) startRunner(ctx context.Context, become bool) (*runner, error) {
	if err := c.acquire(ctx); err != nil {
		return nil, err
	}
	s, err := c.openSession(ctx)
	if err != nil {
		c.release()
		return nil, err
	}
	r := &runner{c: c, become: become, sess: s}
	ok := false
	defer func() {
		if !ok {
			r.close()
		}
	}()
	nonce := make([]byte, 12)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	r.marker = append([]byte{0x1e}, hex.EncodeToString(nonce)...)
	if r.stdin, err = s.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := s.StdoutPipe()
	if err != nil {
		return nil, err
	}
	r.out = bufio.NewReaderSize(stdout, 64<<10)
	shell := "exec /bin/sh -s"
	if become {
		shell = "exec sudo -n -- /bin/sh -s"
	}
	if err := s.Start(shell); err != nil {
		return nil, c.wrapErr(fmt.Errorf("starting the command runner: %w", err))
	}
	// The prelude also probes the host's tools (probeScript, builtins only on most hosts):
	// a push then needs no command of its own to find them.
	prelude := runnerVar + `=$(mktemp -d 2>/dev/null) || exit 1; trap 'rm -rf "$` + runnerVar + `"' EXIT; ` +
		`b=; ! command -v base64 >/dev/null 2>&1 || b=' b64'; ` + "\n" + probeScript +
		`printf '\036%s ready%s\n' ` + string(r.marker[1:]) + ` "$b"` + "\n"
	ctx, cancel := context.WithTimeout(ctx, runnerStartTimeout)
	defer cancel()
	var tools []byte
	err = r.exchange(ctx, prelude, func() error {
		var err error
		if tools, err = r.readUntil(r.marker); err != nil {
			return err
		}
		line, err := r.readLine()
		r.b64 = string(line) == " ready b64"
		return err
	})
	if err != nil {
		return nil, c.wrapErr(fmt.Errorf("starting the command runner: %w", err))
	}
	c.recordTools(string(tools))
	ok = true
	return r, nil
}

// exchange writes req and runs read, giving up (and breaking the runner) when ctx ends;
// read may then still be running, and the caller must close the runner.
func (r *runner) exchange(ctx context.Context, req string, read func() error) error {
	done := make(chan error, 1)
	go func() {
		if _, err := io.WriteString(r.stdin, req); err != nil {
			done <- err
			return
		}
		done <- read()
	}()
	select {
	case err := <-done:
		if err != nil {
			r.broken = true
		}
		return err
	case <-ctx.Done():
		r.broken = true
		return ctx.Err()
	}
}

// run runs cmd with stdin (nil: empty) and returns its result. A broken runner (cancelled
// command, lost stream) must be closed by the caller and not used again.
func (r *runner) run(ctx context.Context, cmd string, stdin []byte) (Result, error) {
	var res Result // written by read: use only when exchange returned without ctx's end
	pid := 0
	pidSeen := make(chan struct{})
	req := r.request(cmd, stdin)
	read := func() error {
		if _, err := r.readUntil(r.marker); err != nil {
			return err
		}
		line, err := r.readLine()
		if err != nil {
			return err
		}
		p, ok := bytes.CutPrefix(line, []byte(" pid "))
		if pid, err = strconv.Atoi(string(p)); !ok || err != nil {
			return fmt.Errorf("runner: bad pid line %q", line)
		}
		close(pidSeen)
		if res.Stdout, err = r.readUntil(r.marker); err != nil {
			return err
		}
		if line, err = r.readLine(); err != nil {
			return err
		}
		if res.ExitCode, err = strconv.Atoi(string(bytes.TrimPrefix(line, []byte(" ")))); err != nil {
			return fmt.Errorf("runner: bad exit line %q", line)
		}
		if res.Stderr, err = r.readUntil(r.marker); err != nil {
			return err
		}
		_, err = r.readLine()
		return err
	}
	err := r.exchange(ctx, req, read)
	if err != nil && ctx.Err() != nil {
		// The command may have been sent just now: its pid line follows the fork at once.
		select {
		case <-pidSeen:
			r.c.kill(pid, r.become)
		case <-time.After(killGrace):
		}
		r.close()
		return Result{}, fmt.Errorf("%s: command interrupted: %w", r.c.cfg.Name, ctx.Err())
	}
	if err != nil {
		return res, r.c.wrapErr(fmt.Errorf("command runner: %w", err))
	}
	return res, nil
}

// request is the runner's line for cmd. Each command writes to files of its own, so that a
// background process an earlier command left cannot write into this command's answer; the
// files of finished commands are removed every runnerSweep commands. A command with stdin
// reads it from a file of its own, written by the runner's shell from base64 in the
// request line (printf is a builtin: the bytes, a join token say, are never on any
// process's command line) and removed when the command ends; when the file cannot be
// written the command does not run and exits 125 with base64's message.
func (r *runner) request(cmd string, stdin []byte) string {
	r.seq++
	n := strconv.Itoa(r.seq)
	d := `"$` + runnerVar + `"`
	o, e, i := d+"/o"+n, d+"/e"+n, d+"/i"+n
	nonce := string(r.marker[1:])
	var b strings.Builder
	if r.seq%runnerSweep == 0 {
		b.WriteString("rm -f " + d + "/*; ")
	}
	start := "/bin/sh -c " + shell.Quote(cmd) + " </dev/null >" + o + " 2>" + e + " & "
	if stdin != nil {
		start = "if printf '%s' " + shell.Quote(base64.StdEncoding.EncodeToString(stdin)) + " | base64 -d >" + i + " 2>" + e +
			"; then /bin/sh -c " + shell.Quote(cmd) + " <" + i + " >" + o + " 2>" + e + " & else (exit 125) & fi; "
	}
	b.WriteString(start)
	b.WriteString(`printf '\036%s pid %d\n' ` + nonce + " $!; wait $!; r=$?; ")
	if stdin != nil {
		b.WriteString("rm -f " + i + "; ")
	}
	b.WriteString("[ ! -s " + o + " ] || cat " + o + "; ")
	b.WriteString(`printf '\036%s %d\n' ` + nonce + " $r; ")
	b.WriteString("[ ! -s " + e + " ] || cat " + e + "; ")
	b.WriteString(`printf '\036%s\n' ` + nonce + "\n")
	return b.String()
}

// runnerStdin is the largest stdin a command sends through the runner (in its request line,
// base64); a larger one, or one that is not already in memory, takes a session of its own.
const runnerStdin = 64 << 10

// runnerSweep is how many commands leave their output files before the runner removes them.
const runnerSweep = 64

// readUntil returns the bytes before the next marker and consumes the marker.
func (r *runner) readUntil(marker []byte) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := r.out.ReadSlice(marker[0])
		buf = append(buf, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return nil, err
		}
		rest, err := r.out.Peek(len(marker) - 1)
		if err != nil {
			return nil, err
		}
		if bytes.Equal(rest, marker[1:]) {
			r.out.Discard(len(rest))
			return buf[:len(buf)-1], nil
		}
	}
}

// readLine returns the rest of the current line without its newline.
func (r *runner) readLine() ([]byte, error) {
	line, err := r.out.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	return line[:len(line)-1], nil
}

// close ends the runner's session and frees its slot; its shell exits at end of input.
func (r *runner) close() {
	r.once.Do(func() {
		if r.stdin != nil {
			r.stdin.Close()
		}
		r.sess.Close()
		r.c.release()
	})
}

// runners holds each connection's idle runners, one per become mode.
type runners struct {
	mu       sync.Mutex
	idle     map[bool]*runner
	starting map[bool]bool
	disabled map[bool]bool // a runner could not start: sessions only
}

// takeRunner returns the idle runner for become, starting one if there is none; nil when
// the runner is busy (a concurrent command), starting, or cannot run on this host — the
// caller then uses a session of its own.
func (c *Conn) takeRunner(ctx context.Context, become bool) *runner {
	rs := &c.runners
	rs.mu.Lock()
	if rs.idle == nil {
		rs.idle, rs.starting, rs.disabled = map[bool]*runner{}, map[bool]bool{}, map[bool]bool{}
	}
	if r := rs.idle[become]; r != nil {
		delete(rs.idle, become)
		rs.mu.Unlock()
		return r
	}
	if rs.starting[become] || rs.disabled[become] {
		rs.mu.Unlock()
		return nil
	}
	rs.starting[become] = true
	rs.mu.Unlock()
	r, err := c.startRunner(ctx, become)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.starting[become] = false
	if err != nil {
		if ctx.Err() == nil {
			rs.disabled[become] = true
			c.log.Debug("no command runner: one session per command", "err", err)
		}
		return nil
	}
	return r
}

// putRunner gives a runner back for the next command, or closes it when it is broken or
// another one became idle meanwhile.
func (c *Conn) putRunner(r *runner) {
	rs := &c.runners
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if r.broken || rs.idle[r.become] != nil {
		r.close()
		return
	}
	select {
	case <-c.done:
		r.close()
		return
	default:
	}
	rs.idle[r.become] = r
}
