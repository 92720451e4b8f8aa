package hostmods

import (
	"context"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/pmezard/go-difflib/difflib"

	"orch/playbooks"
)

// textFile is a remote file read whole by one command: the modules that edit files
// (lineinfile, blockinfile, replace, ini_file, cron, sysctl, mount's fstab) compute the new
// content in Go and write it back with one more command.
type textFile struct {
	path    string
	exists  bool
	content string
	mode    fs.FileMode
	owner   string // user name (or uid when it has none)
	group   string
	uid     string
	gid     string
}

// readTextFile reads path on the host; a missing file is exists=false, a directory an error.
func readTextFile(ctx context.Context, t *playbooks.TaskContext, path string) (textFile, error) {
	f, _, err := readTextFileWith(ctx, t, path, "")
	return f, err
}

// fileMark separates the output of readTextFileWith's extra commands from the file.
const fileMark = "<<orch-file>>\n"

// readTextFileWith reads path and, in the same command, runs extra (commands printing
// key=value lines), returned as fields: a module's whole probe in one round trip.
func readTextFileWith(ctx context.Context, t *playbooks.TaskContext, path, extra string) (textFile, map[string]string, error) {
	script := extra + "\nprintf '" + strings.TrimSuffix(fileMark, "\n") + "\\n'\n" + `p=` + q(path) + `
if [ -d "$p" ]; then echo dir; exit 0; fi
if [ ! -e "$p" ]; then echo absent; exit 0; fi
stat -L -c 'file %a %U %G %u %g' -- "$p" && cat -- "$p"`
	o, err := runOK(ctx, t, "reading "+path, script, nil)
	if err != nil {
		return textFile{}, nil, err
	}
	before, rest, ok := strings.Cut(o.stdout, fileMark)
	if !ok {
		return textFile{}, nil, fmt.Errorf("reading %s: unexpected output %q", path, lastLines(o.stdout, 3))
	}
	f, err := parseTextFile(path, rest)
	return f, fields(before), err
}

// parseTextFile reads the header line (kind, mode, owner...) and the content after it.
func parseTextFile(path, out string) (textFile, error) {
	head, body, _ := strings.Cut(out, "\n")
	f := textFile{path: path}
	h := strings.Fields(head)
	switch {
	case len(h) == 1 && h[0] == "absent":
		return f, nil
	case len(h) == 1 && h[0] == "dir":
		return f, fmt.Errorf("%w: %s is a directory", playbooks.ErrArgs, path)
	case len(h) != 6:
		return f, fmt.Errorf("reading %s: unexpected output %q", path, head)
	}
	m, _ := strconv.ParseUint(h[1], 8, 32)
	f.exists, f.content, f.mode = true, body, fs.FileMode(m)
	f.owner, f.group, f.uid, f.gid = h[2], h[3], h[4], h[5]
	return f, nil
}

// fileAttrs are Ansible's common file arguments: mode, owner, group.
type fileAttrs struct {
	mode         fs.FileMode
	hasMode      bool
	owner, group string
}

// fileAttrsArgs reads mode/owner/group from a module's arguments.
func fileAttrsArgs(a playbooks.Args) (fileAttrs, error) {
	var fa fileAttrs
	var err error
	if fa.mode, fa.hasMode, err = a.Mode("mode"); err != nil {
		return fa, err
	}
	if fa.owner, err = a.String("owner", ""); err != nil {
		return fa, err
	}
	fa.group, err = a.String("group", "")
	return fa, err
}

// differs reports whether f's attributes are not what fa asks.
func (fa fileAttrs) differs(f textFile) bool {
	return (fa.hasMode && f.mode != fa.mode) ||
		(fa.owner != "" && fa.owner != f.owner && fa.owner != f.uid) ||
		(fa.group != "" && fa.group != f.group && fa.group != f.gid)
}

// script returns the commands that give the file at the shell variable $v fa's attributes.
func (fa fileAttrs) script(v string) string {
	var b strings.Builder
	if fa.owner != "" {
		fmt.Fprintf(&b, "chown %s \"$%s\" || exit 1\n", q(fa.owner), v)
	}
	if fa.group != "" {
		fmt.Fprintf(&b, "chgrp %s \"$%s\" || exit 1\n", q(fa.group), v)
	}
	if fa.hasMode {
		fmt.Fprintf(&b, "chmod %o \"$%s\" || exit 1\n", fa.mode, v)
	}
	return b.String()
}

// fileEdit is a whole-content edit of a remote file.
type fileEdit struct {
	path     string
	attrs    fileAttrs
	backup   bool   // copy the old file to path.<date>~ first (Ansible's backup=yes)
	validate string // command with %s for the new file, run before it replaces the old
	mkdirs   bool   // create the parent directory (create=yes on a missing file)
}

// editArgs reads backup and validate besides the file attributes.
func editArgs(a playbooks.Args, path string) (fileEdit, error) {
	e := fileEdit{path: path}
	var err error
	if e.attrs, err = fileAttrsArgs(a); err != nil {
		return e, err
	}
	if e.backup, err = a.Bool("backup", false); err != nil {
		return e, err
	}
	if e.validate, err = a.String("validate", ""); err != nil {
		return e, err
	}
	if e.validate != "" && !strings.Contains(e.validate, "%s") {
		return e, fmt.Errorf("%w \"validate\": must contain %%s: %s", playbooks.ErrArgs, e.validate)
	}
	return e, nil
}

// apply writes content when it differs from old (or old does not exist) and fixes the
// attributes; each through the Change gate. It fills res: changed message parts, backup,
// diff.
func (e fileEdit) apply(ctx context.Context, t *playbooks.TaskContext, old textFile, content string, res *playbooks.Result) error {
	if res.Data == nil {
		res.Data = map[string]any{}
	}
	contentChanged := !old.exists || old.content != content
	if contentChanged {
		if t.Diff {
			res.Diff = unifiedDiff(e.path, old.content, content)
		}
		err := t.Change(fmt.Sprintf("write %s (%d bytes)", e.path, len(content)), func() error {
			backup, err := e.write(ctx, t, old, content)
			if backup != "" {
				res.Data["backup"], res.Data["backup_file"] = backup, backup
			}
			return err
		})
		return err
	}
	if !e.attrs.differs(old) {
		return nil
	}
	if res.Msg != "" {
		res.Msg += " and ownership, perms or SE linux context changed"
	} else {
		res.Msg = "ownership, perms or SE linux context changed"
	}
	return t.Change("set mode/owner/group of "+e.path, func() error {
		_, err := runOK(ctx, t, "setting attributes of "+e.path, "p="+q(e.path)+"\n"+e.attrs.script("p"), nil)
		return err
	})
}

// write replaces the file atomically (temporary file in the same directory, then mv),
// keeping the old file's mode and owner unless attributes are given; it returns the backup
// file's name.
func (e fileEdit) write(ctx context.Context, t *playbooks.TaskContext, old textFile, content string) (string, error) {
	var b strings.Builder
	// A link is followed, as Ansible writes to the link's target (realpath).
	fmt.Fprintf(&b, "p=%s\n[ -L \"$p\" ] && p=$(readlink -f -- \"$p\")\nd=$(dirname -- \"$p\")\n", q(e.path))
	if e.mkdirs {
		b.WriteString("mkdir -p -- \"$d\" || exit 1\n")
	}
	b.WriteString("tmp=$(mktemp \"$d/.orch-tmp.XXXXXX\") || exit 1\ntrap 'rm -f \"$tmp\"' EXIT\ncat > \"$tmp\" || exit 1\n")
	if old.exists {
		b.WriteString("chmod --reference=\"$p\" \"$tmp\" && chown --reference=\"$p\" \"$tmp\" || exit 1\n")
	} else {
		b.WriteString("chmod 644 \"$tmp\" || exit 1\n")
	}
	b.WriteString(e.attrs.script("tmp"))
	if e.validate != "" {
		cmd := strings.ReplaceAll(e.validate, "%s", "\"$tmp\"")
		fmt.Fprintf(&b, "if ! out=$(%s 2>&1); then echo \"failed to validate: $out\" >&2; exit 3; fi\n", cmd)
	}
	if e.backup && old.exists {
		b.WriteString("bk=\"$p.$$.$(date +%Y-%m-%d@%H:%M:%S)~\"; cp -p -- \"$p\" \"$bk\" || exit 1; echo \"backup=$bk\"\n")
	}
	b.WriteString("mv -f -- \"$tmp\" \"$p\" || exit 1\ntrap - EXIT\n")
	o, err := runOK(ctx, t, "writing "+e.path, b.String(), strings.NewReader(content))
	if err != nil {
		return "", err
	}
	return fields(o.stdout)["backup"], nil
}

// unifiedDiff is the diff Ansible shows with --diff (Python's difflib, of which go-difflib
// is a port): "--- before: path", "+++ after: path", hunks with three lines of context.
func unifiedDiff(path, before, after string) string {
	if before == after {
		return ""
	}
	d := difflib.UnifiedDiff{A: splitKeep(before), B: splitKeep(after),
		FromFile: "before: " + path, ToFile: "after: " + path, Context: 3}
	s, err := difflib.GetUnifiedDiffString(d)
	if err != nil {
		return ""
	}
	return s
}

// splitKeep splits s into lines keeping their newlines; a last line without one gets one
// and a marker, as difflib shows it.
func splitKeep(s string) []string {
	if s == "" {
		return nil
	}
	l := strings.SplitAfter(s, "\n")
	if l[len(l)-1] == "" {
		l = l[:len(l)-1]
	}
	if last := l[len(l)-1]; !strings.HasSuffix(last, "\n") {
		l[len(l)-1] = last + "\n\\ No newline at end of file\n"
	}
	return l
}

// splitLines splits file content into lines that keep their "\n" (Python's readlines).
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	l := strings.SplitAfter(s, "\n")
	if l[len(l)-1] == "" {
		l = l[:len(l)-1]
	}
	return l
}
