package instances

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/websocket"

	"orch/modules/lxc"
	"orch/nodeagent/api"
	"orch/nodeagent/daemon/rest"
)

// socketWait bounds how long an exec waits for its client's websockets.
const socketWait = 30 * time.Second

// postExecOperation is LXD's exec (POST /1.0/instances/NAME/exec with a JSON body, on the
// owner): an operation of class websocket whose "fds" the client connects — "0" and
// "control" with a terminal (interactive), "0", "1", "2" and "control" without — and whose
// metadata gets "return", the exit code, when the command ends. The native CLI's framed
// exec (?command=…) is served beside it by postInstanceExec.
func (s *Service) postExecOperation(w http.ResponseWriter, r *http.Request, row instanceRow) error {
	var req api.InstanceExecPost
	if err := rest.DecodeBody(r, &req); err != nil {
		return err
	}
	if len(req.Command) == 0 {
		return rest.BadRequest("%v", errBadCommand)
	}
	m, err := s.runningHere(r.Context(), row.name)
	if err != nil {
		return err
	}
	fds := []string{"0", "1", "2", "control"}
	if req.Interactive {
		fds = []string{"0", "control"}
	}
	op, err := s.ops.Start(r, rest.Task{Class: api.OperationClassWebsocket, Description: "Executing command",
		Resources: resources(row.name), Sockets: fds,
		Metadata: map[string]any{"command": req.Command, "environment": req.Environment, "interactive": req.Interactive},
		Run: func(ctx context.Context, op rest.Op) error {
			code, err := s.runExec(ctx, m, row.name, req, op)
			if err != nil {
				return err
			}
			op.SetMetadata(map[string]any{"return": code})
			return nil
		}})
	if err != nil {
		return err
	}
	return rest.WriteAsync(w, op)
}

// execSockets are an exec's connected websockets.
type execSockets struct {
	stdin, stdout, stderr, control rest.Socket
}

// connect waits for the client's websockets (all of them: LXD's clients always send
// wait-for-websocket).
func connect(ctx context.Context, op rest.Op, interactive bool) (*execSockets, error) {
	ctx, cancel := context.WithTimeout(ctx, socketWait)
	defer cancel()
	get := func(fd string) (rest.Socket, error) {
		if s := op.Socket(ctx, fd); s != nil {
			return s, nil
		}
		return nil, fmt.Errorf("exec: the client did not connect websocket %s within %s", fd, socketWait)
	}
	var ss execSockets
	var err error
	if ss.control, err = get("control"); err != nil {
		return nil, err
	}
	if ss.stdin, err = get("0"); err != nil {
		return nil, err
	}
	if interactive {
		ss.stdout = ss.stdin
		return &ss, nil
	}
	if ss.stdout, err = get("1"); err != nil {
		return nil, err
	}
	if ss.stderr, err = get("2"); err != nil {
		return nil, err
	}
	return &ss, nil
}

// runExec connects the websockets, runs the command and returns its exit code.
func (s *Service) runExec(ctx context.Context, m *lxc.Manager, name string, req api.InstanceExecPost, op rest.Op) (int, error) {
	ss, err := connect(ctx, op, req.Interactive)
	if err != nil {
		return -1, err
	}
	defer ss.close()
	opts := lxc.ExecOptions{Cwd: req.Cwd, UID: req.User, GID: req.Group}
	pidFile, err := newPIDFile()
	if err != nil {
		return -1, err
	}
	defer func() { go s.removePIDFile(context.WithoutCancel(ctx), m, name, pidFile) }()
	argv := withPIDFile(req.Command, pidFile)
	for k, v := range req.Environment {
		opts.Env = append(opts.Env, k+"="+v)
	}
	stdin := socketReader(ss.stdin)
	defer stdin.Close()
	var resize chan lxc.Window
	if req.Interactive {
		resize = make(chan lxc.Window, 16)
		opts.TTY = &lxc.TTY{Size: window(req.Width, req.Height), Resize: resize}
	}
	go s.control(ss.control, resize, func(sig int) { s.signal(ctx, m, name, pidFile, sig) })
	var stderr io.Writer
	if ss.stderr != nil {
		stderr = socketWriter{ss.stderr}
	}
	code, err := m.Exec(ctx, name, argv, stdin, socketWriter{ss.stdout}, stderr, opts)
	if err != nil {
		return -1, driverError(err)
	}
	return code, nil
}

// The command of an exec runs through a shell that records its PID (in the container) in
// a file first and then becomes the command, so that the signals the client forwards
// reach it: lxc-attach does not pass signals on (a SIGTERM kills lxc-attach and leaves
// the command running), and gives no other handle on the command's process.

// newPIDFile is a fresh path inside the container for an exec's PID.
func newPIDFile() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "/tmp/.orch-exec-" + hex.EncodeToString(b[:]) + ".pid", nil
}

// withPIDFile is argv run so that its PID is written to pidFile first (same process: the
// shell execs the command). A file the command's user cannot write (no /tmp, a read-only
// one) leaves it without signals, not without running.
func withPIDFile(argv []string, pidFile string) []string {
	return append([]string{"/bin/sh", "-c", `{ echo $$ > "$0"; } 2>/dev/null; exec "$@"`, pidFile}, argv...)
}

// signal sends sig to the exec whose PID is in pidFile (a command that has not started
// yet or has ended is not signalled).
func (s *Service) signal(ctx context.Context, m *lxc.Manager, name, pidFile string, sig int) {
	kill := []string{"/bin/sh", "-c", `kill -"$0" "$(cat "$1")"`, strconv.Itoa(sig), pidFile}
	if code, err := m.Exec(ctx, name, kill, nil, nil, nil, lxc.ExecOptions{}); err != nil || code != 0 {
		s.log.Info("exec: signal not delivered", "instance", name, "signal", sig, "exit", code, "err", err)
	}
}

// removePIDFile removes an exec's PID file.
func (s *Service) removePIDFile(ctx context.Context, m *lxc.Manager, name, pidFile string) {
	_, _ = m.Exec(ctx, name, []string{"rm", "-f", pidFile}, nil, nil, nil, lxc.ExecOptions{})
}

// window is the terminal size asked for, 80x25 when not given.
func window(w, h int) lxc.Window {
	if w <= 0 || h <= 0 {
		return lxc.Window{Width: 80, Height: 25}
	}
	return lxc.Window{Width: uint16(min(w, 65535)), Height: uint16(min(h, 65535))}
}

// close ends the output websockets as LXD does (a close message, which the client's
// reader takes as the end of the stream) and closes every socket.
func (ss *execSockets) close() {
	bye := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	for _, s := range []rest.Socket{ss.stdout, ss.stderr} {
		if s != nil {
			_ = s.WriteMessage(websocket.CloseMessage, bye)
		}
	}
	for _, s := range []rest.Socket{ss.stdin, ss.stdout, ss.stderr, ss.control} {
		if s != nil {
			_ = s.Close()
		}
	}
}

// control reads the control websocket: window-resize messages go to resize (nil without a
// terminal), signals to signal.
func (s *Service) control(c rest.Socket, resize chan<- lxc.Window, signal func(int)) {
	if resize != nil {
		defer close(resize)
	}
	for {
		_, p, err := c.ReadMessage()
		if err != nil {
			return
		}
		var msg api.InstanceExecControl
		if json.Unmarshal(p, &msg) != nil {
			continue
		}
		switch msg.Command {
		case "window-resize":
			w, _ := strconv.Atoi(msg.Args["width"])
			h, _ := strconv.Atoi(msg.Args["height"])
			if resize != nil && w > 0 && h > 0 {
				select {
				case resize <- window(w, h):
				default:
				}
			}
		case "signal":
			if msg.Signal > 0 && msg.Signal < 65 {
				signal(msg.Signal)
			}
		}
	}
}

// socketReader reads a websocket's binary messages as a stream; a text message (LXD's
// end-of-stream barrier), a close or an error ends it.
func socketReader(s rest.Socket) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		for {
			t, p, err := s.ReadMessage()
			if err != nil || t != websocket.BinaryMessage {
				pw.Close()
				return
			}
			if _, err := pw.Write(p); err != nil {
				return
			}
		}
	}()
	return pr
}

// socketWriter writes each write as one binary message.
type socketWriter struct{ s rest.Socket }

func (w socketWriter) Write(p []byte) (int, error) {
	if err := w.s.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}
