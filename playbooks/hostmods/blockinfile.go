package hostmods

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"orch/playbooks"
)

// blockinfile inserts, updates or removes a block of lines between two marker lines.
func blockinfileModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("blockinfile", a, "path", "dest", "destfile", "name", "state", "marker", "block", "content",
		"insertafter", "insertbefore", "create", "backup", "marker_begin", "marker_end", "append_newline", "prepend_newline",
		"validate", "mode", "owner", "group", "unsafe_writes", "attributes"); err != nil {
		return playbooks.Result{}, err
	}
	b, err := blockArgs(a)
	if err != nil {
		return playbooks.Result{}, err
	}
	edit, err := editArgs(a, b.path)
	if err != nil {
		return playbooks.Result{}, err
	}
	f, err := readTextFile(ctx, t, b.path)
	if err != nil {
		return playbooks.Result{}, err
	}
	if !f.exists && !b.create {
		return playbooks.Result{Failed: true, Msg: fmt.Sprintf("Path %s does not exist !", b.path), Data: map[string]any{"rc": 257}}, nil
	}
	content := b.apply(f.content)
	res := playbooks.Result{Data: map[string]any{"backup": ""}}
	switch {
	case f.exists && content == f.content:
	case !f.exists && !b.present:
		return res, nil
	case !f.exists:
		res.Msg = "File created"
	case !b.present || b.block == "":
		res.Msg = "Block removed"
	default:
		res.Msg = "Block inserted"
	}
	edit.mkdirs = true
	return res, edit.apply(ctx, t, f, content, &res)
}

// block are blockinfile's arguments.
type block struct {
	path, block         string
	marker0, marker1    string
	present, create     bool
	after, before       string
	insRe               *regexp.Regexp
	appendNL, prependNL bool
}

func blockArgs(a playbooks.Args) (block, error) {
	var b block
	var err error
	if b.path, _ = strArg(a, "", "path", "dest", "destfile", "name"); b.path == "" {
		return b, fmt.Errorf("%w \"path\": required", playbooks.ErrArgs)
	}
	state, _ := a.String("state", "present")
	if err := choice("state", state, "present", "absent"); err != nil {
		return b, err
	}
	b.present = state == "present"
	b.block, _ = strArg(a, "", "block", "content")
	marker, _ := a.String("marker", "# {mark} ANSIBLE MANAGED BLOCK")
	begin, _ := a.String("marker_begin", "BEGIN")
	end, _ := a.String("marker_end", "END")
	b.marker0 = strings.ReplaceAll(marker, "{mark}", begin) + "\n"
	b.marker1 = strings.ReplaceAll(marker, "{mark}", end) + "\n"
	for _, o := range []struct {
		name string
		dst  *bool
	}{{"create", &b.create}, {"append_newline", &b.appendNL}, {"prepend_newline", &b.prependNL}} {
		if *o.dst, err = a.Bool(o.name, false); err != nil {
			return b, err
		}
	}
	b.after, _ = a.String("insertafter", "")
	b.before, _ = a.String("insertbefore", "")
	if b.after != "" && b.before != "" {
		return b, fmt.Errorf("%w: insertafter and insertbefore are mutually exclusive", playbooks.ErrArgs)
	}
	if b.after == "" && b.before == "" {
		b.after = "EOF"
	}
	switch {
	case b.after != "" && b.after != "EOF":
		b.insRe, err = compileRegexp("insertafter", b.after, "")
	case b.before != "" && b.before != "BOF":
		b.insRe, err = compileRegexp("insertbefore", b.before, "")
	}
	return b, err
}

// apply is Ansible's blockinfile: drop the old block (between the markers), then insert the
// new one where the old one was, else after/before the last line matching insertafter/
// insertbefore, else at the end (BOF: the beginning).
func (b block) apply(content string) string {
	lines := splitLines(content)
	var blockLines []string
	if b.present && b.block != "" {
		body := b.block
		if !strings.HasSuffix(body, "\n") {
			body += "\n"
		}
		blockLines = append(append([]string{b.marker0}, splitLines(body)...), b.marker1)
	}
	n0, n1 := -1, -1
	for i, l := range lines {
		if l == b.marker0 {
			n0 = i
		}
		if l == b.marker1 {
			n1 = i
		}
	}
	switch {
	case n0 == -1 || n1 == -1:
		n0 = b.insertPoint(lines)
	case n0 < n1:
		lines = append(lines[:n0:n0], lines[n1+1:]...)
	default:
		lines = append(lines[:n1:n1], lines[n0+1:]...)
		n0 = n1
	}
	if n0 > 0 && !strings.HasSuffix(lines[n0-1], "\n") {
		lines[n0-1] += "\n"
	}
	if b.prependNL && b.present && n0 != 0 && lines[n0-1] != "\n" {
		blockLines = append([]string{"\n"}, blockLines...)
	}
	if b.appendNL && b.present {
		if after := n0; after < len(lines) && lines[after] != "\n" {
			blockLines = append(blockLines, "\n")
		}
	}
	out := append(append(append([]string{}, lines[:n0]...), blockLines...), lines[n0:]...)
	return strings.Join(out, "")
}

// insertPoint is where a block not yet in the file goes.
func (b block) insertPoint(lines []string) int {
	if b.insRe == nil {
		if b.before == "BOF" {
			return 0
		}
		return len(lines)
	}
	n := -1
	for i, l := range lines {
		if b.insRe.MatchString(strings.TrimSuffix(l, "\n")) {
			n = i
		}
	}
	switch {
	case n == -1:
		return len(lines)
	case b.after != "":
		return n + 1
	}
	return n
}
