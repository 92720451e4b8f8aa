package playbooks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"orch/internal/shell"
	"orch/playbooks/template"
)

// copyModule is copy (src or content) and template (src rendered with the
// host's variables). Both are idempotent by sha256 and write atomically.
type copyModule struct{ template bool }

func (m copyModule) Run(ctx context.Context, t *TaskContext) (Result, error) {
	name, allowed := "copy", append([]string{"src", "content", "dest", "mode", "force", "owner", "group", "backup", "validate"}, ignoredFileArgs...)
	if m.template {
		name, allowed = "template", append([]string{"src", "dest", "mode", "force", "owner", "group", "backup", "validate",
			"trim_blocks", "lstrip_blocks", "newline_sequence"}, ignoredFileArgs...)
	}
	if err := allowArgs(name, t.Args, allowed...); err != nil {
		return Result{}, err
	}
	dest, err := t.Args.Required("dest")
	if err != nil {
		return Result{}, err
	}
	mode, hasMode, err := t.Args.Mode("mode")
	if err != nil {
		return Result{}, err
	}
	data, local, err := m.source(t)
	if err != nil {
		return Result{}, err
	}
	if strings.HasSuffix(dest, "/") && local != "" {
		dest += path.Base(local)
	}
	w := fileWrite{dest: dest, data: data, local: local, mode: mode, hasMode: hasMode}
	if w.own, err = ownership(t); err != nil {
		return Result{}, err
	}
	if w.validate, err = t.Args.String("validate", ""); err != nil {
		return Result{}, err
	}
	if w.backup, err = t.Args.Bool("backup", false); err != nil {
		return Result{}, err
	}
	if force, err := t.Args.Bool("force", true); err != nil {
		return Result{}, err
	} else if !force {
		w.onlyIfAbsent = true
	}
	return w.apply(ctx, t)
}

// source returns the content to write and, for copy with src, the local file.
func (m copyModule) source(t *TaskContext) ([]byte, string, error) {
	if t.Args.Has("content") && !m.template {
		if t.Args.Has("src") {
			return nil, "", fmt.Errorf("%w: copy takes src or content, not both", ErrArgs)
		}
		c := t.Args["content"]
		if s, ok := c.(string); ok {
			return []byte(s), "", nil
		}
		return []byte(template.String(c)), "", nil
	}
	src, err := t.Args.Required("src")
	if err != nil {
		return nil, "", err
	}
	local := localFile(t, src, map[bool]string{true: "templates", false: "files"}[m.template])
	data, err := os.ReadFile(local)
	if err != nil {
		return nil, "", fmt.Errorf("%w: src: %w", ErrArgs, err)
	}
	if !m.template {
		return data, local, nil
	}
	out, err := t.eng.RenderFile(local, string(data), templateVars(t.vars, local))
	if err != nil {
		return nil, "", fmt.Errorf("template %w", err)
	}
	return []byte(out), "", nil
}

// templateVars are the host's variables plus what Ansible's template
// module adds: ansible_managed and template_* about the source file.
func templateVars(vars map[string]any, src string) map[string]any {
	out := maps.Clone(vars)
	host, _ := os.Hostname()
	out["template_path"], out["template_fullpath"], out["template_host"] = src, src, host
	out["template_destpath"] = ""
	if _, ok := out["ansible_managed"]; !ok {
		out["ansible_managed"] = "Ansible managed"
	}
	return out
}

// localFile finds src as Ansible looks it up: in the task's role (its files/
// or templates/ directory, then the role's directory), then relative to the
// playbook, then in the playbook's files/ or templates/.
func localFile(t *TaskContext, src, subdir string) string {
	if t.roleDir != "" && !filepath.IsAbs(src) {
		for _, cand := range []string{filepath.Join(t.roleDir, subdir, src), filepath.Join(t.roleDir, "tasks", src), filepath.Join(t.roleDir, src)} {
			if fileExists(cand) {
				return cand
			}
		}
	}
	p := t.LocalPath(src)
	if _, err := os.Stat(p); err == nil || filepath.IsAbs(src) {
		return p
	}
	if alt := t.LocalPath(filepath.Join(subdir, src)); fileExists(alt) {
		return alt
	}
	return p
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// fileWrite puts data at dest unless it is already there.
type fileWrite struct {
	dest         string
	data         []byte
	local        string // push this local file instead of streaming data
	mode         fs.FileMode
	hasMode      bool
	onlyIfAbsent bool
	own          owner
	validate     string // a command run on the new file (%s) before it replaces dest
	backup       bool   // keep the old file as dest.TIME~
}

// ignoredFileArgs are file arguments accepted and left alone: SELinux
// contexts (orch does not relabel), chattr attributes, unsafe_writes.
var ignoredFileArgs = []string{"setype", "seuser", "serole", "selevel", "attributes", "attr", "unsafe_writes"}

// owner is the owner and group arguments (empty: leave as they are).
type owner struct{ user, group string }

func ownership(t *TaskContext) (owner, error) {
	u, err := t.Args.String("owner", "")
	if err != nil {
		return owner{}, err
	}
	g, err := t.Args.String("group", "")
	return owner{u, g}, err
}

// chown sets owner and group where they differ from cur's (all of them when cur is absent).
func (o owner) chown(ctx context.Context, t *TaskContext, p string, cur remoteFile, recurse bool) error {
	spec := ""
	if o.user != "" && (cur.kind == "absent" || o.user != cur.user) {
		spec = o.user
	}
	if o.group != "" && (cur.kind == "absent" || o.group != cur.group) {
		spec += ":" + o.group
	}
	if spec == "" {
		return nil
	}
	flag := ""
	if recurse {
		flag = "-R "
	}
	return t.Change(fmt.Sprintf("chown %s%s %s", flag, spec, p), func() error {
		_, err := remoteOK(ctx, t, "chown "+flag+shell.Quote(spec)+" "+shell.Quote(p), nil)
		return err
	})
}

// remoteFile is what the engine learns about a remote path.
type remoteFile struct {
	kind        string // absent, file, directory, link
	sum         string // sha256 of a file
	mode        fs.FileMode
	user, group string // owner names
	target      string // link target
}

func statRemote(ctx context.Context, t *TaskContext, p string) (remoteFile, error) {
	script := `p=` + shell.Quote(p) + `
if [ -L "$p" ]; then echo link; readlink "$p"
elif [ -d "$p" ]; then echo directory; stat -c '%a %U %G' "$p"
elif [ -e "$p" ]; then echo file; stat -c '%a %U %G' "$p"; sha256sum < "$p" | cut -d' ' -f1
else echo absent; fi`
	out, err := remoteOK(ctx, t, script, nil)
	if err != nil {
		return remoteFile{}, fmt.Errorf("stat %s: %w", p, err)
	}
	f := strings.Split(out, "\n")
	rf := remoteFile{kind: f[0]}
	switch {
	case rf.kind == "link" && len(f) > 1:
		rf.target = f[1]
	case (rf.kind == "directory" || rf.kind == "file") && len(f) > 1:
		fields := strings.Fields(f[1])
		m, _ := strconv.ParseUint(fields[0], 8, 32)
		rf.mode = fs.FileMode(m)
		if len(fields) == 3 {
			rf.user, rf.group = fields[1], fields[2]
		}
		if len(f) > 2 {
			rf.sum = f[2]
		}
	}
	return rf, nil
}

func (w fileWrite) apply(ctx context.Context, t *TaskContext) (Result, error) {
	sum := sha256.Sum256(w.data)
	want := hex.EncodeToString(sum[:])
	cur, err := statRemote(ctx, t, w.dest)
	if err != nil {
		return Result{}, err
	}
	if cur.kind == "directory" {
		return Result{}, fmt.Errorf("%w: dest %s is a directory", ErrArgs, w.dest)
	}
	data := map[string]any{"dest": w.dest, "checksum": want, "size": len(w.data)}
	res := Result{Data: data}
	if cur.kind == "file" && (cur.sum == want || w.onlyIfAbsent) {
		if w.hasMode && cur.mode != w.mode {
			err = t.Change(fmt.Sprintf("chmod %04o %s", w.mode, w.dest), func() error {
				_, err := remoteOK(ctx, t, fmt.Sprintf("chmod %o %s", w.mode, shell.Quote(w.dest)), nil)
				return err
			})
		}
		if err == nil {
			err = w.own.chown(ctx, t, w.dest, cur, false)
		}
		return res, err
	}
	mode := w.mode
	if !w.hasMode {
		mode = 0o644
		if cur.kind == "file" {
			mode = cur.mode
		}
	}
	if t.Diff {
		res.Diff = w.diff(ctx, t, cur)
	}
	err = t.Change(fmt.Sprintf("write %s (%d bytes)", w.dest, len(w.data)), func() error {
		if w.backup && cur.kind == "file" {
			if _, err := remoteOK(ctx, t, fmt.Sprintf("cp -p %[1]s %[1]s.$(date +%%Y-%%m-%%d@%%H:%%M:%%S)~", shell.Quote(w.dest)), nil); err != nil {
				return err
			}
		}
		return w.write(ctx, t, mode)
	})
	if err == nil {
		err = w.own.chown(ctx, t, w.dest, remoteFile{kind: "absent"}, false)
	}
	return res, err
}

func (w fileWrite) diff(ctx context.Context, t *TaskContext, cur remoteFile) string {
	var before []byte
	if cur.kind == "file" {
		out, err := remoteOK(ctx, t, "head -c 65536 "+shell.Quote(w.dest), nil)
		if err != nil {
			return ""
		}
		before = []byte(out + "\n")
	}
	return simpleDiff(w.dest, before, w.data)
}

func (w fileWrite) write(ctx context.Context, t *TaskContext, mode fs.FileMode) error {
	if w.local != "" && w.validate == "" {
		conn, err := t.Conn()
		if err != nil {
			return err
		}
		_, err = conn.Push(ctx, w.local, w.dest, mode)
		return err
	}
	data := w.data
	if w.local != "" {
		b, err := os.ReadFile(w.local)
		if err != nil {
			return err
		}
		data = b
	}
	tmp := w.dest + ".orch-tmp"
	check := ""
	if w.validate != "" {
		v := strings.ReplaceAll(w.validate, "%s", shell.Quote(tmp))
		check = fmt.Sprintf(" && { %s || { rm -f %s; echo 'validation failed: %s' >&2; exit 1; }; }", v, shell.Quote(tmp), strings.ReplaceAll(w.validate, "'", ""))
	}
	script := fmt.Sprintf("cat > %[1]s && chmod %[2]o %[1]s%[4]s && mv -f %[1]s %[3]s", shell.Quote(tmp), mode, shell.Quote(w.dest), check)
	_, err := remoteOK(ctx, t, script, bytes.NewReader(data))
	return err
}

// fileModule manages paths: state file, directory, absent, touch or link.
func fileModule(ctx context.Context, t *TaskContext) (Result, error) {
	if err := allowArgs("file", t.Args, append([]string{"path", "dest", "name", "state", "mode", "src", "owner", "group", "recurse", "force", "follow"}, ignoredFileArgs...)...); err != nil {
		return Result{}, err
	}
	p, _ := t.Args.String("path", "")
	for _, alias := range []string{"dest", "name"} {
		if p == "" {
			p, _ = t.Args.String(alias, "")
		}
	}
	if p == "" {
		return Result{}, fmt.Errorf("%w \"path\": required", ErrArgs)
	}
	state, err := t.Args.String("state", "file")
	if err != nil {
		return Result{}, err
	}
	mode, hasMode, err := t.Args.Mode("mode")
	if err != nil {
		return Result{}, err
	}
	cur, err := statRemote(ctx, t, p)
	if err != nil {
		return Result{}, err
	}
	f := fileState{p: p, cur: cur, mode: mode, hasMode: hasMode}
	if f.own, err = ownership(t); err != nil {
		return Result{}, err
	}
	if f.recurse, err = t.Args.Bool("recurse", false); err != nil {
		return Result{}, err
	}
	res := Result{Data: map[string]any{"path": p, "state": state}}
	switch state {
	case "directory":
		err = f.directory(ctx, t)
	case "file":
		err = f.file(ctx, t)
	case "absent":
		err = f.absent(ctx, t)
	case "touch":
		err = f.touch(ctx, t)
	case "link":
		err = f.link(ctx, t)
	default:
		err = fmt.Errorf("%w \"state\": %q is not file, directory, absent, touch or link", ErrArgs, state)
	}
	if err == nil && (state == "directory" || state == "file" || state == "touch") {
		err = f.own.chown(ctx, t, p, cur, f.recurse && state == "directory")
	}
	return res, err
}

type fileState struct {
	p       string
	cur     remoteFile
	mode    fs.FileMode
	hasMode bool
	own     owner
	recurse bool
}

func (f fileState) q() string { return shell.Quote(f.p) }

func (f fileState) run(ctx context.Context, t *TaskContext, desc, cmd string) error {
	return t.Change(desc, func() error {
		_, err := remoteOK(ctx, t, cmd, nil)
		return err
	})
}

func (f fileState) chmod(ctx context.Context, t *TaskContext) error {
	if !f.hasMode || f.cur.mode == f.mode {
		return nil
	}
	return f.run(ctx, t, fmt.Sprintf("chmod %04o %s", f.mode, f.p), fmt.Sprintf("chmod %o %s", f.mode, f.q()))
}

func (f fileState) directory(ctx context.Context, t *TaskContext) error {
	switch f.cur.kind {
	case "directory":
		return f.chmod(ctx, t)
	case "absent":
		cmd := "mkdir -p " + f.q()
		if f.hasMode {
			cmd += fmt.Sprintf(" && chmod %o %s", f.mode, f.q())
		}
		return f.run(ctx, t, "create directory "+f.p, cmd)
	}
	return fmt.Errorf("%s exists and is a %s, not a directory", f.p, f.cur.kind)
}

func (f fileState) file(ctx context.Context, t *TaskContext) error {
	switch f.cur.kind {
	case "file":
		return f.chmod(ctx, t)
	case "absent":
		return fmt.Errorf("file %s is absent, cannot continue (use state: touch to create it)", f.p)
	}
	return fmt.Errorf("%s is a %s, not a file", f.p, f.cur.kind)
}

func (f fileState) absent(ctx context.Context, t *TaskContext) error {
	if f.cur.kind == "absent" {
		return nil
	}
	return f.run(ctx, t, "remove "+f.p, "rm -rf "+f.q())
}

func (f fileState) touch(ctx context.Context, t *TaskContext) error {
	cmd := "touch " + f.q()
	if f.hasMode {
		cmd += fmt.Sprintf(" && chmod %o %s", f.mode, f.q())
	}
	return f.run(ctx, t, "touch "+f.p, cmd)
}

func (f fileState) link(ctx context.Context, t *TaskContext) error {
	src, err := t.Args.Required("src")
	if err != nil {
		return err
	}
	if f.cur.kind == "link" && f.cur.target == src {
		return nil
	}
	if f.cur.kind == "directory" {
		return fmt.Errorf("%s is a directory, not replacing it with a link", f.p)
	}
	return f.run(ctx, t, fmt.Sprintf("link %s -> %s", f.p, src), "ln -sfn "+shell.Quote(src)+" "+f.q())
}
