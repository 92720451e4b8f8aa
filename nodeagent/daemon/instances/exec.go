package instances

import (
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"sync"

	"orch/modules/lxc"
	"orch/nodeagent/api"
	"orch/nodeagent/daemon/rest"
)

// postInstanceExec runs a command in the instance (on its owner): the request body is its stdin,
// the answer a stream of output frames ending with the exit code (api.ReadExecFrames). With
// tty=1 the command gets a terminal and the body is frames too (api.ExecTTY).
func (s *Service) postInstanceExec(w http.ResponseWriter, r *http.Request, row instanceRow) error {
	q := r.URL.Query()
	if !q.Has("command") {
		return s.postExecOperation(w, r, row)
	}
	argv := q["command"]
	if len(argv) == 0 {
		return rest.BadRequest("%v", errBadCommand)
	}
	m, err := s.runningHere(r.Context(), row.name)
	if err != nil {
		return err
	}
	opts := lxc.ExecOptions{Cwd: q.Get("cwd"), Env: q["env"]}
	var stdin io.Reader = r.Body
	if q.Get("tty") != "" {
		in, err := newTTYInput(q, r.Body)
		if err != nil {
			return err
		}
		defer in.Close()
		stdin, opts.TTY = in, in.tty
	}
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex()
	w.Header().Set("Content-Type", api.ExecContentType)
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	fw := &frameWriter{w: w, rc: rc}
	code, err := m.Exec(r.Context(), row.name, argv, stdin, fw.stream(api.FrameStdout), fw.stream(api.FrameStderr), opts)
	if err != nil {
		return fw.write(api.FrameError, []byte(err.Error()))
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(int32(code)))
	return fw.write(api.FrameExit, b[:])
}

// frameWriter writes exec frames from several goroutines, flushing each.
type frameWriter struct {
	mu sync.Mutex
	w  io.Writer
	rc *http.ResponseController
}

func (f *frameWriter) write(kind byte, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := api.WriteExecFrame(f.w, kind, p); err != nil {
		return nil // the client went away; nothing more to tell it
	}
	_ = f.rc.Flush()
	return nil
}

// stream returns a writer sending frames of one kind.
func (f *frameWriter) stream(kind byte) io.Writer { return streamWriter{f, kind} }

type streamWriter struct {
	f    *frameWriter
	kind byte
}

func (s streamWriter) Write(p []byte) (int, error) {
	for rest := p; len(rest) > 0; {
		n := min(len(rest), 64<<10)
		if err := s.f.write(s.kind, rest[:n]); err != nil {
			return 0, err
		}
		rest = rest[n:]
	}
	return len(p), nil
}

// runningHere is the LXC manager of instance name, which must be running on this member
// (what exec needs, in either framing); the answer why not otherwise.
func (s *Service) runningHere(ctx context.Context, name string) (*lxc.Manager, error) {
	m, _, err := s.drivers()
	if err != nil {
		return nil, err
	}
	info, err := m.Info(ctx, name)
	if err != nil {
		return nil, driverError(err)
	}
	if info.State != lxc.StateRunning {
		return nil, rest.Conflict("instance %q is not running (%s)", name, statusOf(info.State))
	}
	return m, nil
}
