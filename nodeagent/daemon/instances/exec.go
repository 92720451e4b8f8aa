package instances

import (
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strconv"
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
	m, _, err := s.drivers()
	if err != nil {
		return err
	}
	info, err := m.Info(r.Context(), row.name)
	if err != nil {
		return driverError(err)
	}
	if info.State != lxc.StateRunning {
		return rest.Conflict("instance %q is not running (%s)", row.name, statusOf(info.State))
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

// getFile is GET /1.0/instances/{name}/files?path=P (on the owner): the file's bytes, with
// its mode and owner in headers. The path is resolved inside the instance's rootfs.
func (s *Service) getFile(w http.ResponseWriter, r *http.Request, row instanceRow) error {
	m, _, err := s.drivers()
	if err != nil {
		return err
	}
	path := r.URL.Query().Get("path")
	f, info, err := m.FileOpen(row.name, path)
	if err != nil {
		return driverError(err) // the driver names the instance
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set(api.HeaderFileMode, fmt.Sprintf("%04o", uint32(info.Mode)))
	w.Header().Set(api.HeaderFileUID, strconv.Itoa(info.UID))
	w.Header().Set(api.HeaderFileGID, strconv.Itoa(info.GID))
	w.Header().Set("Content-Length", strconv.FormatInt(info.Size, 10))
	_, _ = io.Copy(w, f)
	return nil
}

// postFile is POST /1.0/instances/{name}/files?path=P (on the owner): the body becomes the
// file, created or truncated, inside the instance's rootfs.
func (s *Service) postFile(w http.ResponseWriter, r *http.Request, row instanceRow) error {
	m, _, err := s.drivers()
	if err != nil {
		return err
	}
	opts := lxc.PushOptions{}
	if v := r.Header.Get(api.HeaderFileMode); v != "" {
		mode, err := strconv.ParseUint(v, 8, 32)
		if err != nil {
			return rest.BadRequest("%s: %q is not an octal mode", api.HeaderFileMode, v)
		}
		opts.Mode = fs.FileMode(mode)
	}
	opts.UID, _ = strconv.Atoi(r.Header.Get(api.HeaderFileUID))
	opts.GID, _ = strconv.Atoi(r.Header.Get(api.HeaderFileGID))
	if err := m.FilePush(row.name, r.URL.Query().Get("path"), r.Body, opts); err != nil {
		return driverError(err) // the driver names the instance
	}
	return rest.WriteOK(w, nil, "")
}
