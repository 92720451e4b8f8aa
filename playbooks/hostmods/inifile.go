package hostmods

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"orch/playbooks"
)

// ini_file (community.general) sets, adds or removes options and sections of an INI file,
// with community.general's algorithm (commented-out options are reused, exclusive values).
func iniFileModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("ini_file", a, "path", "dest", "section", "option", "value", "values", "state",
		"exclusive", "no_extra_spaces", "allow_no_value", "create", "backup", "ignore_spaces", "modify_inactive_option",
		"follow", "mode", "owner", "group", "unsafe_writes", "attributes", "others"); err != nil {
		return playbooks.Result{}, err
	}
	ini, err := iniArgs(a)
	if err != nil {
		return playbooks.Result{}, err
	}
	edit, err := editArgs(a, ini.path)
	if err != nil {
		return playbooks.Result{}, err
	}
	f, err := readTextFile(ctx, t, ini.path)
	if err != nil {
		return playbooks.Result{}, err
	}
	if !f.exists && !ini.create {
		return playbooks.Result{Failed: true, Msg: fmt.Sprintf("Destination %s does not exist!", ini.path), Data: map[string]any{"rc": 257}}, nil
	}
	content, msg := ini.apply(f.content)
	res := playbooks.Result{Msg: msg, Data: map[string]any{"path": ini.path, "backup": ""}}
	if !f.exists && content == "" {
		return res, nil
	}
	edit.mkdirs = true
	return res, edit.apply(ctx, t, f, content, &res)
}

// iniFile are ini_file's arguments.
type iniFile struct {
	path, section, option string
	values                []string
	hasValue              bool
	present, exclusive    bool
	noSpaces, allowNoVal  bool
	create, ignoreSpaces  bool
	inactive              bool
}

func iniArgs(a playbooks.Args) (iniFile, error) {
	ini := iniFile{}
	var err error
	if ini.path, _ = strArg(a, "", "path", "dest"); ini.path == "" {
		return ini, fmt.Errorf("%w \"path\": required", playbooks.ErrArgs)
	}
	ini.section, _ = a.String("section", "")
	ini.option, _ = a.String("option", "")
	state, _ := a.String("state", "present")
	if err := choice("state", state, "present", "absent"); err != nil {
		return ini, err
	}
	ini.present = state == "present"
	if a.Has("value") {
		v, _ := a.String("value", "")
		ini.values, ini.hasValue = []string{v}, true
	} else if a.Has("values") {
		if ini.values, err = listArg(a, "values"); err != nil {
			return ini, err
		}
		ini.hasValue = true
	}
	for _, o := range []struct {
		name string
		def  bool
		dst  *bool
	}{{"exclusive", true, &ini.exclusive}, {"no_extra_spaces", false, &ini.noSpaces}, {"allow_no_value", false, &ini.allowNoVal},
		{"create", true, &ini.create}, {"ignore_spaces", false, &ini.ignoreSpaces}, {"modify_inactive_option", true, &ini.inactive}} {
		if *o.dst, err = a.Bool(o.name, o.def); err != nil {
			return ini, err
		}
	}
	return ini, nil
}

// fakeSection is the name community.general puts above the file for options outside any
// section.
const fakeSection = "ad01e11446efb704fcdbdb21f2c43757423d91c5"

var blankOrComment = regexp.MustCompile(`^[ \t]*([#;].*)?$`)

// optMatch matches an option line: with inactive, commented-out ones too; the value is the
// last group.
func (ini iniFile) optMatch(line string, inactive bool) []string {
	pat := `^( |\t)*(` + regexp.QuoteMeta(ini.option) + `)( |\t)*(=|$)( |\t)*(.*)`
	if inactive {
		pat = `^( |\t)*([#;]?)( |\t)*(` + regexp.QuoteMeta(ini.option) + `)( |\t)*(=|$)( |\t)*(.*)`
	}
	return regexp.MustCompile(pat).FindStringSubmatch(strings.TrimSuffix(line, "\n"))
}

func (ini iniFile) assignment(v string) string {
	if ini.noSpaces {
		return ini.option + "=" + v + "\n"
	}
	return ini.option + " = " + v + "\n"
}

// apply returns the new content and community.general's message.
func (ini iniFile) apply(content string) (string, string) {
	lines := splitLines(content)
	if len(lines) == 0 {
		lines = []string{"\n"} // community.general's start for an empty file
	}
	if n := len(lines); !strings.HasSuffix(lines[n-1], "\n") {
		lines[n-1] += "\n"
	}
	lines = append(append([]string{"[" + fakeSection + "]"}, lines...), "[")
	section := ini.section
	if section == "" {
		section = fakeSection
	}
	secRe := regexp.MustCompile(`^\[\s*` + regexp.QuoteMeta(strings.TrimSpace(section)) + `\s*]`)
	within, start, end := false, 0, 0
	for i, l := range lines {
		if within && strings.HasPrefix(l, "[") {
			end = i
			break
		}
		if secRe.MatchString(l) {
			within, start = true, i
		}
	}
	e := iniEdit{ini: ini, sec: slices.Clone(lines[start:end]), msg: "OK", values: slices.Clone(ini.values)}
	e.changedLines = make([]bool, len(e.sec))
	if ini.present {
		e.present()
	} else {
		e.absent()
	}
	out := append(append(append([]string{}, lines[:start]...), e.sec...), lines[end:]...)
	out = out[1 : len(out)-1]
	if !within && ini.present {
		out = append(out, "["+section+"]\n")
		e.msg = "section and option added"
		switch {
		case ini.option != "" && len(e.values) > 0:
			for _, v := range e.values {
				out = append(out, ini.assignment(v))
			}
		case ini.option != "" && len(e.values) == 0 && ini.allowNoVal:
			out = append(out, ini.option+"\n")
		default:
			e.msg = "only section added"
		}
	}
	return strings.Join(out, ""), e.msg
}

// iniEdit is the work on one section's lines.
type iniEdit struct {
	ini            iniFile
	sec            []string
	changedLines   []bool
	values         []string
	msg            string
	noValuePresent bool
}

func (e *iniEdit) update(i int, newLine string) {
	changed := e.sec[i] != newLine
	if e.ini.ignoreSpaces {
		if old := e.ini.optMatch(e.sec[i], true); old != nil && old[2] == "" {
			nw := e.ini.optMatch(newLine, true)
			changed = nw == nil || strings.TrimSpace(old[8]) != strings.TrimSpace(nw[8])
		}
	}
	if changed {
		e.sec[i] = newLine
		e.msg = "option changed"
	}
	e.changedLines[i] = true
}

func (e *iniEdit) present() {
	ini := e.ini
	if ini.option == "" {
		return
	}
	for i, l := range e.sec {
		m := ini.optMatch(l, ini.inactive)
		if m == nil {
			continue
		}
		val := m[len(m)-1]
		if k := slices.Index(e.values, val); len(e.values) > 0 && k >= 0 {
			if val == "" && ini.allowNoVal {
				e.update(i, ini.option+"\n")
				e.noValuePresent = true
			} else {
				e.update(i, ini.assignment(val))
			}
			e.values = slices.Delete(e.values, k, k+1)
		} else if len(e.values) == 0 && ini.allowNoVal {
			e.update(i, ini.option+"\n")
			e.noValuePresent = true
			break
		}
	}
	if ini.exclusive && !ini.allowNoVal {
		e.exclusive()
	}
	e.insertMissing()
}

// exclusive gives remaining matching lines the remaining values and drops the rest.
func (e *iniEdit) exclusive() {
	ini := e.ini
	if len(e.values) > 0 {
		for i, l := range e.sec {
			if !e.changedLines[i] && ini.optMatch(l, ini.inactive) != nil {
				e.update(i, ini.assignment(e.values[0]))
				e.values = e.values[1:]
				if len(e.values) == 0 {
					break
				}
			}
		}
	}
	for i := len(e.sec) - 1; i > 0; i-- {
		if !e.changedLines[i] && ini.optMatch(e.sec[i], ini.inactive) != nil {
			e.sec = slices.Delete(e.sec, i, i+1)
			e.changedLines = slices.Delete(e.changedLines, i, i+1)
			e.msg = "option changed"
		}
	}
}

// insertMissing adds the values left after the section's last non-blank, non-comment line.
func (e *iniEdit) insertMissing() {
	ini := e.ini
	for i := len(e.sec); i > 0; i-- {
		if blankOrComment.MatchString(strings.TrimSuffix(e.sec[i-1], "\n")) {
			continue
		}
		var add []string
		if len(e.values) > 0 {
			for _, v := range e.values {
				add = append(add, ini.assignment(v))
			}
		} else if ini.allowNoVal && !e.noValuePresent && !ini.hasValue {
			add = []string{ini.option + "\n"}
		}
		if len(add) > 0 {
			e.sec = slices.Insert(e.sec, i, add...)
			e.msg = "option added"
		}
		return
	}
}

func (e *iniEdit) absent() {
	ini := e.ini
	if ini.option == "" {
		if len(e.sec) > 0 {
			e.sec, e.msg = nil, "section removed"
		}
		return
	}
	var keep []string
	for _, l := range e.sec {
		m := ini.optMatch(l, false)
		drop := m != nil && (ini.exclusive || slices.Contains(ini.values, m[len(m)-1]))
		if !ini.exclusive && len(ini.values) == 0 {
			drop = false
		}
		if !drop {
			keep = append(keep, l)
		}
	}
	if len(keep) != len(e.sec) {
		e.sec, e.msg = keep, "option changed"
	}
}
