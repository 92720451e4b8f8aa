package hostmods

import (
	"context"
	"fmt"

	"orch/playbooks"
)

// replace replaces every match of a (multi-line) regexp in a file, optionally only between
// the after and before patterns.
func replaceModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("replace", a, "path", "dest", "destfile", "name", "regexp", "replace", "after", "before",
		"backup", "validate", "encoding", "mode", "owner", "group", "unsafe_writes", "attributes", "others"); err != nil {
		return playbooks.Result{}, err
	}
	path, _ := strArg(a, "", "path", "dest", "destfile", "name")
	if path == "" {
		return playbooks.Result{}, fmt.Errorf("%w \"path\": required", playbooks.ErrArgs)
	}
	expr, err := a.Required("regexp")
	if err != nil {
		return playbooks.Result{}, err
	}
	re, err := compileRegexp("regexp", expr, "(?m)")
	if err != nil {
		return playbooks.Result{}, err
	}
	repl, _ := a.String("replace", "")
	edit, err := editArgs(a, path)
	if err != nil {
		return playbooks.Result{}, err
	}
	f, err := readTextFile(ctx, t, path)
	if err != nil {
		return playbooks.Result{}, err
	}
	if !f.exists {
		return playbooks.Result{Failed: true, Msg: fmt.Sprintf("Path %s does not exist !", path), Data: map[string]any{"rc": 257}}, nil
	}
	start, end, miss, err := section(a, f.content)
	if err != nil || miss != "" {
		return playbooks.Result{Msg: miss}, err
	}
	part := f.content[start:end]
	n := len(re.FindAllStringIndex(part, -1))
	replaced := re.ReplaceAllString(part, pyTemplate(repl))
	res := playbooks.Result{Data: map[string]any{"backup": ""}}
	content := f.content
	if n > 0 && replaced != part {
		content = f.content[:start] + replaced + f.content[end:]
		res.Msg = fmt.Sprintf("%d replacements made", n)
	}
	return res, edit.apply(ctx, t, f, content, &res)
}

// section returns the part of content between after and before (Ansible builds
// after(?P<subsection>.*?)before with DOTALL); miss is Ansible's message when they do not
// match.
func section(a playbooks.Args, content string) (start, end int, miss string, err error) {
	after, _ := a.String("after", "")
	before, _ := a.String("before", "")
	var pattern string
	switch {
	case after != "" && before != "":
		pattern = after + "(?P<subsection>.*?)" + before
	case after != "":
		pattern = after + "(?P<subsection>.*)"
	case before != "":
		pattern = "(?P<subsection>.*)" + before
	default:
		return 0, len(content), "", nil
	}
	re, err := compileRegexp("after/before", pattern, "(?s)")
	if err != nil {
		return 0, 0, "", err
	}
	m := re.FindStringSubmatchIndex(content)
	if m == nil {
		return 0, 0, "Pattern for before/after params did not match the given file: " + pattern, nil
	}
	i := 2 * re.SubexpIndex("subsection")
	return m[i], m[i+1], "", nil
}
