package hostmods

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"orch/playbooks"
)

// sourcesDir is where apt_repository writes new sources.
const sourcesDir = "/etc/apt/sources.list.d"

// apt_repository adds or removes a one-line APT source ("deb URL suite components") in
// /etc/apt/sources.list.d/FILENAME.list, then updates the cache (update_cache=yes). Every
// sources file is read in one command.
func aptRepositoryModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("apt_repository", a, "repo", "state", "filename", "mode", "update_cache", "update-cache",
		"validate_certs", "codename", "install_python_apt", "update_cache_retries", "update_cache_retry_max_delay"); err != nil {
		return playbooks.Result{}, err
	}
	repo, err := a.Required("repo")
	if err != nil {
		return playbooks.Result{}, err
	}
	if strings.HasPrefix(repo, "ppa:") {
		return playbooks.Result{}, fmt.Errorf("apt_repository: %w: PPA sources (%s); give the deb line", ErrUnsupported, repo)
	}
	repo = normalizeSource(repo)
	state, _ := a.String("state", "present")
	if err := choice("state", state, "present", "absent"); err != nil {
		return playbooks.Result{}, err
	}
	update, err := boolArg(a, true, "update_cache", "update-cache")
	if err != nil {
		return playbooks.Result{}, err
	}
	o, err := runOK(ctx, t, "reading APT sources", `for f in /etc/apt/sources.list `+sourcesDir+`/*.list; do [ -f "$f" ] && { echo "==> $f"; cat -- "$f"; echo; }; done; true`, nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	files := parseSources(o.stdout)
	res := playbooks.Result{Data: map[string]any{"repo": repo, "state": state, "sources_added": []any{}, "sources_removed": []any{}}}
	var edits []string
	if state == "present" {
		for _, f := range files {
			if f.has(repo) {
				return res, nil
			}
		}
		name, _ := a.String("filename", "")
		path := sourcesDir + "/" + sourceFilename(repo, name)
		res.Data["sources_added"] = []any{path}
		edits = append(edits, "printf '%s\\n' "+q(repo)+" >> "+q(path)+" && chmod "+fileModeArg(a)+" "+q(path))
	} else {
		var removed []any
		for _, f := range files {
			if f.has(repo) {
				removed = append(removed, f.path)
				edits = append(edits, "sed -i -E "+q(`\#^[[:space:]]*`+sourceRegexp(repo)+`[[:space:]]*$#d`)+" "+q(f.path)+
					" && { grep -q '[^[:space:]]' "+q(f.path)+" || rm -f -- "+q(f.path)+"; }")
			}
		}
		if removed == nil {
			return res, nil
		}
		res.Data["sources_removed"] = removed
	}
	if update {
		edits = append(edits, "apt-get -q update")
	}
	return res, t.Change(fmt.Sprintf("%s APT source %s", map[bool]string{true: "add", false: "remove"}[state == "present"], repo), func() error {
		_, err := runOK(ctx, t, "apt_repository "+repo, "export LC_ALL=C DEBIAN_FRONTEND=noninteractive\n"+strings.Join(edits, " && "), nil)
		return err
	})
}

func fileModeArg(a playbooks.Args) string {
	if m, ok, err := a.Mode("mode"); err == nil && ok {
		return fmt.Sprintf("%o", m)
	}
	return "644"
}

// normalizeSource collapses blanks, as apt_repository compares sources.
func normalizeSource(s string) string { return strings.Join(strings.Fields(s), " ") }

// sourceRegexp matches a source line whatever its blanks (for sed -E with # as the
// delimiter).
func sourceRegexp(repo string) string {
	parts := strings.Fields(repo)
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(regexp.QuoteMeta(p), "#", `\#`)
	}
	return strings.Join(parts, "[[:space:]]+")
}

type sourcesFile struct {
	path  string
	lines []string
}

func (f sourcesFile) has(repo string) bool {
	for _, l := range f.lines {
		if normalizeSource(l) == repo {
			return true
		}
	}
	return false
}

func parseSources(out string) []sourcesFile {
	var files []sourcesFile
	for _, l := range strings.Split(out, "\n") {
		if p, ok := strings.CutPrefix(l, "==> "); ok {
			files = append(files, sourcesFile{path: p})
		} else if len(files) > 0 {
			files[len(files)-1].lines = append(files[len(files)-1].lines, l)
		}
	}
	return files
}

var (
	sourceOptions = regexp.MustCompile(`\[[^\]]+\]`)
	sourceScheme  = regexp.MustCompile(`\w+://`)
	nonAlnum      = regexp.MustCompile(`[^a-zA-Z0-9]`)
)

// sourceFilename is Ansible's name for a new source's file: the filename argument, else the
// URL's host and path with every other character turned into '_' ("deb
// http://dl.google.com/linux/chrome/deb/ stable main" → dl_google_com_linux_chrome_deb.list).
func sourceFilename(repo, filename string) string {
	if filename != "" {
		return filename + ".list"
	}
	line := sourceScheme.ReplaceAllString(sourceOptions.ReplaceAllString(repo, ""), "")
	var parts []string
	for _, p := range strings.Fields(line) {
		if p != "deb" && p != "deb-src" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return "source.list"
	}
	first := parts[0]
	if i := strings.LastIndex(first, "@"); i >= 0 {
		first = first[i+1:]
	}
	return strings.Join(strings.Fields(nonAlnum.ReplaceAllString(first, " ")), "_") + ".list"
}
