package hostmods

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"orch/playbooks"
)

// lineinfile ensures a line is in a file (or replaces the line a regexp or a search string
// finds), or that no line matches: Ansible's algorithm, computed in Go on the file read in
// one command.
func lineinfileModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("lineinfile", a, "path", "dest", "destfile", "name", "regexp", "regex", "search_string",
		"state", "line", "value", "backrefs", "insertafter", "insertbefore", "create", "backup", "firstmatch",
		"validate", "mode", "owner", "group", "unsafe_writes", "attributes", "others"); err != nil {
		return playbooks.Result{}, err
	}
	li, err := lineinfileArgs(a)
	if err != nil {
		return playbooks.Result{}, err
	}
	edit, err := editArgs(a, li.path)
	if err != nil {
		return playbooks.Result{}, err
	}
	f, err := readTextFile(ctx, t, li.path)
	if err != nil {
		return playbooks.Result{}, err
	}
	res := playbooks.Result{Data: map[string]any{"backup": ""}}
	if !li.present {
		if !f.exists {
			res.Msg = "file not present"
			return res, nil
		}
		content, found := li.absent(f.content)
		res.Data["found"] = found
		if found > 0 {
			res.Msg = fmt.Sprintf("%d line(s) removed", found)
		}
		return res, edit.apply(ctx, t, f, content, &res)
	}
	if !f.exists && !li.create {
		return playbooks.Result{Failed: true, Msg: fmt.Sprintf("Destination %s does not exist !", li.path), Data: map[string]any{"rc": 257}}, nil
	}
	content, msg := li.ensure(f.content)
	res.Msg = msg
	edit.mkdirs = true
	if !f.exists && msg == "" {
		return res, nil
	}
	return res, edit.apply(ctx, t, f, content, &res)
}

// lineInFile are lineinfile's arguments.
type lineInFile struct {
	path                      string
	re                        *regexp.Regexp
	search                    *string
	line                      string
	hasLine                   bool
	present                   bool
	backrefs, create, firstly bool
	after, before             string
	insRe                     *regexp.Regexp
}

func lineinfileArgs(a playbooks.Args) (lineInFile, error) {
	var li lineInFile
	var err error
	if li.path, err = strArg(a, "", "path", "dest", "destfile", "name"); err != nil || li.path == "" {
		return li, fmt.Errorf("%w \"path\": required", playbooks.ErrArgs)
	}
	state, _ := a.String("state", "present")
	if err := choice("state", state, "present", "absent"); err != nil {
		return li, err
	}
	li.present = state == "present"
	li.hasLine = a.Has("line") || a.Has("value")
	li.line, _ = strArg(a, "", "line", "value")
	if expr, _ := strArg(a, "", "regexp", "regex"); a.Has("regexp") || a.Has("regex") {
		if li.re, err = compileRegexp("regexp", expr, ""); err != nil {
			return li, err
		}
	}
	if a.Has("search_string") {
		s, _ := a.String("search_string", "")
		li.search = &s
		if li.re != nil {
			return li, fmt.Errorf("%w: regexp and search_string are mutually exclusive", playbooks.ErrArgs)
		}
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{{"backrefs", &li.backrefs}, {"create", &li.create}, {"firstmatch", &li.firstly}} {
		if *b.dst, err = a.Bool(b.name, false); err != nil {
			return li, err
		}
	}
	li.after, _ = a.String("insertafter", "")
	li.before, _ = a.String("insertbefore", "")
	if li.after != "" && li.before != "" {
		return li, fmt.Errorf("%w: insertafter and insertbefore are mutually exclusive", playbooks.ErrArgs)
	}
	return li, li.check(a)
}

func (li *lineInFile) check(a playbooks.Args) error {
	var err error
	if li.present && !li.hasLine {
		return fmt.Errorf("%w: line is required with state=present", playbooks.ErrArgs)
	}
	if li.backrefs && li.re == nil {
		return fmt.Errorf("%w: regexp is required with backrefs=true", playbooks.ErrArgs)
	}
	if !li.present && li.re == nil && li.search == nil && !li.hasLine {
		return fmt.Errorf("%w: one of line, search_string, or regexp is required with state=absent", playbooks.ErrArgs)
	}
	switch {
	case li.after != "" && li.after != "BOF" && li.after != "EOF":
		li.insRe, err = compileRegexp("insertafter", li.after, "")
	case li.before != "" && li.before != "BOF":
		li.insRe, err = compileRegexp("insertbefore", li.before, "")
	}
	return err
}

// matches reports whether a line (with its newline) is what regexp or search_string seek.
func (li *lineInFile) matches(l string) ([]int, bool) {
	body := strings.TrimSuffix(l, "\n")
	if li.re != nil {
		m := li.re.FindStringSubmatchIndex(body)
		return m, m != nil
	}
	if li.search != nil {
		return nil, strings.Contains(l, *li.search)
	}
	return nil, false
}

// present returns the new content and Ansible's message ("line added", "line replaced",
// or "" when nothing changes). A line that exists nowhere, with no regexp or search_string
// matching, goes after (before) the last line insertafter (insertbefore) matches, else at
// the end.
func (li *lineInFile) ensure(content string) (string, string) {
	lines := splitLines(content)
	index := [2]int{-1, -1}
	var match []int
	matched := false
	if li.re != nil || li.search != nil {
		for i, l := range lines {
			if m, ok := li.matches(l); ok {
				index[0], match, matched = i, m, true
				if li.firstly {
					break
				}
			}
		}
	}
	if !matched {
		index = li.scanInsert(lines, index)
	}
	nl := li.line + "\n"
	switch {
	case index[0] != -1:
		newLine := li.line
		if li.backrefs && matched {
			body := strings.TrimSuffix(lines[index[0]], "\n")
			newLine = string(li.re.ExpandString(nil, pyTemplate(li.line), body, match))
		}
		if !strings.HasSuffix(newLine, "\n") {
			newLine += "\n"
		}
		if lines[index[0]] != newLine {
			lines[index[0]] = newLine
			return strings.Join(lines, ""), "line replaced"
		}
		return content, ""
	case li.backrefs:
		return content, ""
	case li.before == "BOF" || li.after == "BOF":
		return nl + content, "line added"
	case li.after == "EOF" || index[1] == -1:
		if len(lines) > 0 && !strings.HasSuffix(lines[len(lines)-1], "\n") {
			content += "\n"
		}
		return content + nl, "line added"
	case li.after != "":
		if len(lines) == index[1] {
			if strings.TrimRight(lines[index[1]-1], "\r\n") != li.line {
				return content + nl, "line added"
			}
			return content, ""
		}
		if strings.TrimRight(lines[index[1]], "\r\n") != li.line {
			return insertLine(lines, index[1], nl), "line added"
		}
		return content, ""
	}
	return insertLine(lines, index[1], nl), "line added"
}

// scanInsert finds an exact copy of the line (index[0]) and where insertafter/insertbefore
// match (index[1]).
func (li *lineInFile) scanInsert(lines []string, index [2]int) [2]int {
	for i, l := range lines {
		if li.line == strings.TrimRight(l, "\r\n") {
			index[0] = i
		} else if li.insRe != nil && li.insRe.MatchString(strings.TrimSuffix(l, "\n")) {
			if li.after != "" {
				index[1] = i + 1
			} else {
				index[1] = i
			}
			if li.firstly {
				break
			}
		}
	}
	return index
}

func insertLine(lines []string, at int, l string) string {
	out := make([]string, 0, len(lines)+1)
	out = append(out, lines[:at]...)
	out = append(out, l)
	out = append(out, lines[at:]...)
	return strings.Join(out, "")
}

// absent drops the matching lines and returns how many it dropped.
func (li *lineInFile) absent(content string) (string, int) {
	var keep []string
	found := 0
	for _, l := range splitLines(content) {
		var ok bool
		if li.re != nil || li.search != nil {
			_, ok = li.matches(l)
		} else {
			ok = li.line == strings.TrimRight(l, "\r\n")
		}
		if ok {
			found++
		} else {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, ""), found
}
