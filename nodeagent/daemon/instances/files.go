package instances

import (
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strconv"

	"orch/modules/lxc"
	"orch/nodeagent/api"
	"orch/nodeagent/daemon/rest"
)

// This file is LXD's file API on the instance's owner: GET, POST and DELETE
// /1.0/instances/{name}/files?path=P with LXD's X-LXD-uid/gid/mode/type/write headers.

// getFile is GET /1.0/instances/{name}/files?path=P: a regular file's content, or a
// directory's entry names (a JSON list, X-LXD-type: directory), as LXD answers.
func (s *Service) getFile(w http.ResponseWriter, r *http.Request, row instanceRow) error {
	m, _, err := s.drivers()
	if err != nil {
		return err
	}
	e, err := m.FileOpenEntry(row.name, r.URL.Query().Get("path"))
	if err != nil {
		return driverError(err) // the driver names the instance
	}
	defer e.File.Close()
	setFileHeaders(w.Header(), e.Info)
	if e.Dir {
		names, err := e.Names()
		if err != nil {
			return err
		}
		w.Header().Set(api.HeaderFileType, "directory")
		return rest.WriteOK(w, names, "")
	}
	w.Header().Set(api.HeaderFileType, "file")
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(e.Info.Size, 10))
	_, _ = io.Copy(w, e.File)
	return nil
}

// setFileHeaders sets LXD's owner and mode headers.
func setFileHeaders(h http.Header, info lxc.FileInfo) {
	h.Set(api.HeaderFileMode, fmt.Sprintf("%04o", uint32(info.Mode)))
	h.Set(api.HeaderFileUID, strconv.Itoa(info.UID))
	h.Set(api.HeaderFileGID, strconv.Itoa(info.GID))
}

// postFile is POST /1.0/instances/{name}/files?path=P: with X-LXD-type file (or none) the
// body becomes the file (replaced, or appended to with X-LXD-write: append); with
// X-LXD-type directory the directory is made (an existing one is kept).
func (s *Service) postFile(w http.ResponseWriter, r *http.Request, row instanceRow) error {
	m, _, err := s.drivers()
	if err != nil {
		return err
	}
	opts, err := pushOptions(r.Header)
	if err != nil {
		return err
	}
	path := r.URL.Query().Get("path")
	switch t := r.Header.Get(api.HeaderFileType); t {
	case "", "file":
		err = m.FilePush(row.name, path, r.Body, opts)
	case "directory":
		err = m.FileMkdir(row.name, path, opts)
	default:
		return rest.BadRequest("%s: %q is not supported (file or directory)", api.HeaderFileType, t)
	}
	if err != nil {
		return driverError(err) // the driver names the instance
	}
	return rest.WriteOK(w, nil, "")
}

// pushOptions reads LXD's mode, owner and write headers of a push.
func pushOptions(h http.Header) (lxc.PushOptions, error) {
	opts := lxc.PushOptions{}
	if v := h.Get(api.HeaderFileMode); v != "" {
		mode, err := strconv.ParseUint(v, 8, 32)
		if err != nil {
			return opts, rest.BadRequest("%s: %q is not an octal mode", api.HeaderFileMode, v)
		}
		opts.Mode = fs.FileMode(mode)
	}
	for hdr, dst := range map[string]*int{api.HeaderFileUID: &opts.UID, api.HeaderFileGID: &opts.GID} {
		if v := h.Get(hdr); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < -1 {
				return opts, rest.BadRequest("%s: %q is not a number", hdr, v)
			}
			if n > 0 {
				*dst = n
			}
		}
	}
	switch v := h.Get(api.HeaderFileWrite); v {
	case "", "overwrite":
	case "append":
		opts.Append = true
	default:
		return opts, rest.BadRequest("%s: %q (overwrite or append)", api.HeaderFileWrite, v)
	}
	return opts, nil
}

// deleteFile is DELETE /1.0/instances/{name}/files?path=P: remove a file or an empty
// directory.
func (s *Service) deleteFile(w http.ResponseWriter, r *http.Request, row instanceRow) error {
	m, _, err := s.drivers()
	if err != nil {
		return err
	}
	if err := m.FileRemove(row.name, r.URL.Query().Get("path")); err != nil {
		return driverError(err)
	}
	return rest.WriteOK(w, nil, "")
}
