package hostmods

import (
	"context"
	"encoding/base64"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"orch/playbooks"
)

// findPrintf is what find(1) prints per entry, tab-separated, the path last.
const findPrintf = `%y\t%m\t%U\t%G\t%u\t%g\t%s\t%i\t%D\t%n\t%A@\t%T@\t%C@\t%d\t%p\n`

// findAge and findSize are Ansible's age and size syntaxes.
var (
	findAge  = regexp.MustCompile(`^(-?\d+)(s|m|h|d|w)?$`)
	findSize = regexp.MustCompile(`^(-?\d+)(b|k|m|g|t)?$`)
)

// findArgs are find's arguments, validated.
type findArgs struct {
	paths, patterns, excludes []string
	contains                  *regexp.Regexp
	wholeFile                 bool
	fileType, ageStamp        string
	age, size                 *int64
	recurse, hidden, follow   bool
	checksum, regex           bool
	depth                     int
}

// find lists the files under paths matching Ansible's filters (patterns/excludes as
// globs or regular expressions on the base name, file_type, age, size, contains, hidden,
// recurse, depth) with their stat keys, in one command (one more to read contents for
// contains, one for checksums). It changes nothing.
func findModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	f, err := parseFindArgs(t.Args)
	if err != nil {
		return playbooks.Result{}, err
	}
	o, err := run(ctx, t, f.script(), nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	files, examined, skipped := f.filter(o.stdout, float64(time.Now().UnixNano())/1e9)
	if files, err = f.readContents(ctx, t, files); err != nil {
		return playbooks.Result{}, err
	}
	msg := "All paths examined"
	if len(skipped) > 0 {
		msg = "Not all paths examined, check warnings for details"
	}
	list := make([]any, len(files))
	for i, x := range files {
		list[i] = x
	}
	return playbooks.Result{Msg: msg, Data: map[string]any{"files": list, "matched": len(list), "examined": examined,
		"skipped_paths": skipped, "msg": msg}}, nil
}

func parseFindArgs(a playbooks.Args) (findArgs, error) {
	if err := playbooks.AllowArgs("find", a, "paths", "name", "path", "patterns", "pattern", "excludes", "exclude", "contains",
		"read_whole_file", "file_type", "age", "age_stamp", "size", "recurse", "hidden", "follow", "get_checksum", "use_regex", "depth"); err != nil {
		return findArgs{}, err
	}
	var f findArgs
	var err error
	if f.paths, err = listArg(a, "paths", "name", "path"); err != nil || len(f.paths) == 0 {
		return f, fmt.Errorf("%w \"paths\": required", playbooks.ErrArgs)
	}
	f.patterns, _ = listArg(a, "patterns", "pattern")
	f.excludes, _ = listArg(a, "excludes", "exclude")
	for _, b := range []struct {
		p   *bool
		n   string
		def bool
	}{{&f.wholeFile, "read_whole_file", false}, {&f.recurse, "recurse", false}, {&f.hidden, "hidden", false},
		{&f.follow, "follow", false}, {&f.checksum, "get_checksum", false}, {&f.regex, "use_regex", false}} {
		if *b.p, err = a.Bool(b.n, b.def); err != nil {
			return f, err
		}
	}
	if len(f.patterns) == 0 {
		f.patterns = []string{map[bool]string{true: ".*", false: "*"}[f.regex]}
	}
	f.fileType, _ = a.String("file_type", "file")
	if err := choice("file_type", f.fileType, "any", "directory", "file", "link"); err != nil {
		return f, err
	}
	f.ageStamp, _ = a.String("age_stamp", "mtime")
	if err := choice("age_stamp", f.ageStamp, "atime", "ctime", "mtime"); err != nil {
		return f, err
	}
	if f.age, err = findAmount(a, "age", findAge, map[string]int64{"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}); err != nil {
		return f, err
	}
	if f.size, err = findAmount(a, "size", findSize, map[string]int64{"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}); err != nil {
		return f, err
	}
	if c, _ := a.String("contains", ""); c != "" {
		if f.contains, err = compileRegexp("contains", c, ""); err != nil {
			return f, err
		}
	}
	f.depth, err = a.Int("depth", 0)
	return f, err
}

// findAmount parses age or size: a signed number with an optional unit.
func findAmount(a playbooks.Args, name string, re *regexp.Regexp, units map[string]int64) (*int64, error) {
	s, _ := a.String(name, "")
	if s == "" {
		return nil, nil
	}
	m := re.FindStringSubmatch(strings.ToLower(s))
	if m == nil {
		return nil, fmt.Errorf("%w %q: failed to process %s %q", playbooks.ErrArgs, name, name, s)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	if u, ok := units[m[2]]; ok {
		n *= u
	}
	return &n, nil
}

// script lists every entry under each path with find -printf, marking a path that is not a
// directory.
func (f findArgs) script() string {
	var b strings.Builder
	opt := "-P"
	if f.follow {
		opt = "-L"
	}
	depth := ""
	switch {
	case !f.recurse:
		depth = " -maxdepth 1"
	case f.depth > 0:
		depth = " -maxdepth " + strconv.Itoa(f.depth+1)
	}
	for _, p := range f.paths {
		fmt.Fprintf(&b, "p=%s\ncase \"$p\" in '~'*) p=\"$HOME${p#\\~}\";; esac\n", q(p))
		fmt.Fprintf(&b, "echo \"#path=$p\"\nif [ -d \"$p\" ]; then find %s \"$p\" -mindepth 1%s -printf '%s' 2>/dev/null; else echo \"#notdir\"; fi\n",
			opt, depth, findPrintf)
	}
	return b.String()
}

// filter applies Ansible's filters to the listing; it returns the files, how many entries
// were examined and the paths skipped.
func (f findArgs) filter(out string, now float64) ([]map[string]any, int, map[string]any) {
	var files []map[string]any
	skipped := map[string]any{}
	examined := 0
	root := ""
	for _, l := range strings.Split(out, "\n") {
		if p, ok := strings.CutPrefix(l, "#path="); ok {
			root = p
			continue
		}
		if l == "#notdir" {
			skipped[root] = "'" + root + "' is not a directory"
			continue
		}
		e := strings.SplitN(l, "\t", 15)
		if len(e) != 15 {
			continue
		}
		examined++
		if f.depth > 0 {
			if d, _ := strconv.Atoi(e[13]); d > f.depth {
				continue
			}
		}
		if r := f.match(e, now); r != nil {
			files = append(files, r)
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i]["path"].(string) < files[j]["path"].(string) })
	return files, examined, skipped
}

// match returns the entry's dictionary when it passes the filters (contains is applied
// later, on the contents).
func (f findArgs) match(e []string, now float64) map[string]any {
	p := path.Clean(e[14])
	base := path.Base(p)
	if strings.HasPrefix(base, ".") && !f.hidden {
		return nil
	}
	kind := e[0]
	switch f.fileType {
	case "file":
		if kind != "f" {
			return nil
		}
	case "directory":
		if kind != "d" {
			return nil
		}
	case "link":
		if kind != "l" {
			return nil
		}
	}
	if !f.nameMatches(base) || !f.ageMatches(e, now) {
		return nil
	}
	size, _ := strconv.ParseInt(e[6], 10, 64)
	if kind == "f" && f.size != nil && !amountMatches(size, *f.size) {
		return nil
	}
	return findEntry(p, e)
}

// nameMatches is Ansible's pfilter.
func (f findArgs) nameMatches(base string) bool {
	in := func(pats []string) bool {
		for _, p := range pats {
			if f.regex {
				if re, err := regexp.Compile("^(?:" + p + ")"); err == nil && re.MatchString(base) {
					return true
				}
			} else if ok, _ := path.Match(strings.ReplaceAll(p, "[!", "[^"), base); ok {
				return true
			}
		}
		return false
	}
	return in(f.patterns) && (len(f.excludes) == 0 || !in(f.excludes))
}

// ageMatches is Ansible's agefilter: age >= n, or age <= |n| for a negative n.
func (f findArgs) ageMatches(e []string, now float64) bool {
	if f.age == nil {
		return true
	}
	stamp := map[string]string{"atime": e[10], "mtime": e[11], "ctime": e[12]}[f.ageStamp]
	t, _ := strconv.ParseFloat(stamp, 64)
	age := now - t
	if *f.age >= 0 {
		return age >= float64(*f.age)
	}
	return age <= float64(-*f.age)
}

// amountMatches is Ansible's sizefilter: >= n, or <= |n| for a negative n.
func amountMatches(v, n int64) bool {
	if n >= 0 {
		return v >= n
	}
	return v <= -n
}

// findEntry is the stat dictionary of one entry, with Ansible's find keys.
func findEntry(p string, e []string) map[string]any {
	m, _ := strconv.ParseUint(e[1], 8, 32)
	r := map[string]any{"path": p, "mode": fmt.Sprintf("%04o", m), "pw_name": e[4], "gr_name": e[5]}
	for i, k := range []string{"uid", "gid"} {
		n, _ := strconv.ParseInt(e[2+i], 10, 64)
		r[k] = n
	}
	for i, k := range []string{"size", "inode", "dev", "nlink"} {
		n, _ := strconv.ParseInt(e[6+i], 10, 64)
		r[k] = n
	}
	for i, k := range []string{"atime", "mtime", "ctime"} {
		n, _ := strconv.ParseFloat(e[10+i], 64)
		r[k] = n
	}
	kind := e[0]
	r["isdir"], r["isreg"], r["islnk"] = kind == "d", kind == "f", kind == "l"
	r["ischr"], r["isblk"], r["isfifo"], r["issock"] = kind == "c", kind == "b", kind == "p", kind == "s"
	r["xusr"], r["xgrp"], r["xoth"] = m&0o100 != 0, m&0o010 != 0, m&0o001 != 0
	r["rusr"], r["rgrp"], r["roth"] = m&0o400 != 0, m&0o040 != 0, m&0o004 != 0
	r["wusr"], r["wgrp"], r["woth"] = m&0o200 != 0, m&0o020 != 0, m&0o002 != 0
	r["isuid"], r["isgid"] = m&0o4000 != 0, m&0o2000 != 0
	return r
}

// readContents applies contains and get_checksum to the regular files found, reading them
// in one more command.
func (f findArgs) readContents(ctx context.Context, t *playbooks.TaskContext, files []map[string]any) ([]map[string]any, error) {
	if f.contains == nil && !f.checksum {
		return files, nil
	}
	var b strings.Builder
	for _, x := range files {
		if x["isreg"] == true {
			p := q(x["path"].(string))
			fmt.Fprintf(&b, "printf '%%s\\t%%s\\t' %s \"$(sha1sum < %s | cut -d' ' -f1)\"; base64 -w0 < %s; echo\n", p, p, p)
		}
	}
	if b.Len() == 0 {
		return files, nil
	}
	o, err := run(ctx, t, b.String(), nil)
	if err != nil {
		return nil, err
	}
	type content struct{ sum, data string }
	got := map[string]content{}
	for _, l := range strings.Split(o.stdout, "\n") {
		if e := strings.SplitN(l, "\t", 3); len(e) == 3 {
			data, _ := base64.StdEncoding.DecodeString(e[2])
			got[e[0]] = content{e[1], string(data)}
		}
	}
	out := files[:0]
	for _, x := range files {
		c, ok := got[x["path"].(string)]
		if x["isreg"] == true && ok {
			if f.contains != nil && f.fileType == "file" && !f.containsIn(c.data) {
				continue
			}
			if f.checksum {
				x["checksum"] = c.sum
			}
		}
		out = append(out, x)
	}
	return out, nil
}

// containsIn is Ansible's contentfilter: a match at a line's start, or anywhere in the
// whole file with read_whole_file.
func (f findArgs) containsIn(data string) bool {
	if f.wholeFile {
		return f.contains.MatchString(data)
	}
	for _, l := range strings.SplitAfter(data, "\n") {
		if loc := f.contains.FindStringIndex(l); loc != nil && loc[0] == 0 {
			return true
		}
	}
	return false
}
