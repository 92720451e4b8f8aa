package hostmods

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"orch/playbooks"
)

// yumRepoBools are yum_repository's boolean options, written as 0/1.
var yumRepoBools = map[string]bool{"async": true, "enabled": true, "enablegroups": true, "gpgcheck": true,
	"module_hotfixes": true, "keepalive": true, "protect": true, "repo_gpgcheck": true, "s3_enabled": true,
	"skip_if_unavailable": true, "ssl_check_cert_permissions": true, "sslverify": true}

// yumRepoOptions are the options Ansible writes (its allowed_params, but name, which is
// description), with the aliases it accepts.
var yumRepoOptions = []string{"async", "bandwidth", "baseurl", "cost", "deltarpm_metadata_percentage", "deltarpm_percentage",
	"enabled", "enablegroups", "exclude", "failovermethod", "gpgcakey", "gpgcheck", "gpgkey", "module_hotfixes", "http_caching",
	"include", "includepkgs", "ip_resolve", "keepalive", "keepcache", "metadata_expire", "metadata_expire_filter", "metalink",
	"mirrorlist", "mirrorlist_expire", "password", "priority", "protect", "proxy", "proxy_password", "proxy_username",
	"repo_gpgcheck", "retries", "s3_enabled", "skip_if_unavailable", "sslcacert", "ssl_check_cert_permissions",
	"sslclientcert", "sslclientkey", "sslverify", "throttle", "timeout", "ui_repoid_vars", "username"}

var yumRepoAliases = map[string]string{"ca_cert": "sslcacert", "client_cert": "sslclientcert", "client_key": "sslclientkey",
	"validate_certs": "sslverify"}

// iniSection is one section of a file read as Python's RawConfigParser reads it.
type iniSection struct {
	name string
	keys []string
	vals map[string]string
}

// yum_repository adds, replaces or removes one repository section in
// reposdir/<file>.repo as Ansible's does: the file is read and rewritten as Python's
// RawConfigParser (comments dropped, keys lower-cased, `key = value`), and it changes only
// when the sorted dump of its sections differs.
func yumRepositoryModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	allowed := append([]string{"name", "description", "file", "reposdir", "state", "params", "mode", "owner", "group"}, yumRepoOptions...)
	for k := range yumRepoAliases {
		allowed = append(allowed, k)
	}
	if err := playbooks.AllowArgs("yum_repository", a, allowed...); err != nil {
		return playbooks.Result{}, err
	}
	if a.Has("params") {
		return playbooks.Result{Failed: true, Msg: "The params option to yum_repository was removed in Ansible 2.5 since it circumvents Ansible's option handling"}, nil
	}
	repo, err := a.Required("name")
	if err != nil {
		return playbooks.Result{}, err
	}
	state, _ := a.String("state", "present")
	if err := choice("state", state, "present", "absent"); err != nil {
		return playbooks.Result{}, err
	}
	opts, err := yumRepoValues(a)
	if err != nil {
		return playbooks.Result{}, err
	}
	if state == "present" {
		if opts["baseurl"] == "" && opts["metalink"] == "" && opts["mirrorlist"] == "" {
			return playbooks.Result{Failed: true, Msg: "Parameter 'baseurl', 'metalink' or 'mirrorlist' is required."}, nil
		}
		if !a.Has("description") {
			return playbooks.Result{Failed: true, Msg: "Parameter 'description' is required."}, nil
		}
	}
	file, _ := a.String("file", repo)
	dir, _ := a.String("reposdir", "/etc/yum.repos.d")
	dest := strings.TrimSuffix(dir, "/") + "/" + file + ".repo"
	f, extra, err := readTextFileWith(ctx, t, dest, "[ -d "+q(dir)+" ] && echo dir=1")
	if err != nil {
		return playbooks.Result{}, err
	}
	if extra["dir"] != "1" {
		return playbooks.Result{Failed: true, Msg: fmt.Sprintf("Repo directory '%s' does not exist.", dir)}, nil
	}
	sections := parseRawConfig(f.content)
	before := dumpSections(sections)
	sections = removeSection(sections, repo)
	if state == "present" {
		s := iniSection{name: repo, vals: map[string]string{}}
		keys := make([]string, 0, len(opts))
		for k := range opts {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			s.keys, s.vals[k] = append(s.keys, k), opts[k]
		}
		sections = append(sections, s)
	}
	after := dumpSections(sections)
	res := playbooks.Result{Data: map[string]any{"repo": repo, "state": state,
		"diff": map[string]any{"before_header": dest, "before": before, "after_header": dest, "after": after}}}
	if before == after {
		if !f.exists {
			return res, nil
		}
		edit, err := editArgs(a, dest)
		if err != nil {
			return res, err
		}
		return res, edit.apply(ctx, t, f, f.content, &res)
	}
	if t.Diff {
		res.Diff = unifiedDiff(dest, before, after)
	}
	if len(sections) == 0 {
		return res, t.Change("remove empty "+dest, func() error {
			_, err := runOK(ctx, t, "removing "+dest, "rm -f -- "+q(dest), nil)
			return err
		})
	}
	edit, err := editArgs(a, dest)
	if err != nil {
		return res, err
	}
	return res, edit.apply(ctx, t, f, writeRawConfig(sections), &res)
}

// yumRepoValues are the options to write, as strings: booleans 0/1, baseurl and gpgkey
// lists one a line, exclude and includepkgs lists space-separated, description as name.
func yumRepoValues(a playbooks.Args) (map[string]string, error) {
	out := map[string]string{}
	if d, _ := a.String("description", ""); a.Has("description") {
		out["name"] = d
	}
	for _, k := range append(yumRepoOptions, "ca_cert", "client_cert", "client_key", "validate_certs") {
		if !a.Has(k) {
			continue
		}
		key := k
		if alias, ok := yumRepoAliases[k]; ok {
			key = alias
		}
		switch {
		case yumRepoBools[key]:
			b, err := a.Bool(k, false)
			if err != nil {
				return nil, err
			}
			out[key] = map[bool]string{true: "1", false: "0"}[b]
		case key == "baseurl" || key == "gpgkey" || key == "exclude" || key == "includepkgs":
			l, err := listArg(a, k)
			if err != nil {
				return nil, err
			}
			out[key] = strings.Join(l, map[bool]string{true: "\n", false: " "}[key == "baseurl" || key == "gpgkey"])
		default:
			out[key] = fmt.Sprint(a[k])
		}
	}
	return out, nil
}

// parseRawConfig reads sections as RawConfigParser does: comments (# ;) and blank lines
// dropped, `key = value` or `key: value` with the key lower-cased, indented lines continuing
// the previous value.
func parseRawConfig(content string) []iniSection {
	var out []iniSection
	var cur *iniSection
	last := ""
	for _, l := range strings.Split(content, "\n") {
		trim := strings.TrimSpace(l)
		if trim == "" || strings.HasPrefix(trim, "#") || strings.HasPrefix(trim, ";") {
			continue
		}
		if cur != nil && last != "" && (l[0] == ' ' || l[0] == '\t') {
			cur.vals[last] += "\n" + trim
			continue
		}
		if strings.HasPrefix(trim, "[") && strings.HasSuffix(trim, "]") {
			name := trim[1 : len(trim)-1]
			out = removeSection(out, name)
			out = append(out, iniSection{name: name, vals: map[string]string{}})
			cur, last = &out[len(out)-1], ""
			continue
		}
		if cur == nil {
			continue
		}
		i := strings.IndexAny(trim, "=:")
		if i < 0 {
			continue
		}
		k, v := strings.ToLower(strings.TrimSpace(trim[:i])), strings.TrimSpace(trim[i+1:])
		if _, seen := cur.vals[k]; !seen {
			cur.keys = append(cur.keys, k)
		}
		cur.vals[k], last = v, k
	}
	return out
}

func removeSection(l []iniSection, name string) []iniSection {
	out := l[:0:0]
	for _, s := range l {
		if s.name != name {
			out = append(out, s)
		}
	}
	return out
}

// dumpSections is Ansible's YumRepo.dump: sections and keys sorted.
func dumpSections(l []iniSection) string {
	sorted := append([]iniSection(nil), l...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	var b strings.Builder
	for _, s := range sorted {
		fmt.Fprintf(&b, "[%s]\n", s.name)
		keys := append([]string(nil), s.keys...)
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s = %s\n", k, s.vals[k])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// writeRawConfig is RawConfigParser.write: sections and keys in order, a multi-line value's
// later lines indented with a tab, a blank line after each section.
func writeRawConfig(l []iniSection) string {
	var b strings.Builder
	for _, s := range l {
		fmt.Fprintf(&b, "[%s]\n", s.name)
		for _, k := range s.keys {
			fmt.Fprintf(&b, "%s = %s\n", k, strings.ReplaceAll(s.vals[k], "\n", "\n\t"))
		}
		b.WriteString("\n")
	}
	return b.String()
}
