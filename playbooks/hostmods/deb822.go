package hostmods

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"orch/playbooks"
)

// deb822Fields are deb822_repository's repository fields, in the order Ansible writes them
// (its argument spec's, alphabetical), and whether each is a list or a boolean.
var deb822Fields = []struct {
	arg  string
	kind byte // 's' string, 'l' list, 'b' bool, 'i' int
}{
	{"allow_downgrade_to_insecure", 'b'}, {"allow_insecure", 'b'}, {"allow_weak", 'b'}, {"architectures", 'l'},
	{"by_hash", 'b'}, {"check_date", 'b'}, {"check_valid_until", 'b'}, {"components", 'l'}, {"date_max_future", 'i'},
	{"enabled", 'b'}, {"inrelease_path", 's'}, {"languages", 'l'}, {"name", 's'}, {"pdiffs", 'b'}, {"signed_by", 's'},
	{"suites", 'l'}, {"targets", 'l'}, {"trusted", 'b'}, {"types", 'l'}, {"uris", 'l'},
}

var (
	deb822Under = regexp.MustCompile(`[_\s]+`)
	deb822Other = regexp.MustCompile(`[^a-z0-9-]+`)
)

// deb822Slug is the file name Ansible derives from the repository's name.
func deb822Slug(name string) string {
	return deb822Other.ReplaceAllString(deb822Under.ReplaceAllString(strings.ToLower(name), "-"), "")
}

// deb822FieldName is a field's deb822 name (X-Repolib-Name, URIs, Signed-By...).
func deb822FieldName(arg string) string {
	switch arg {
	case "name":
		return "X-Repolib-Name"
	case "uris":
		return "URIs"
	}
	parts := strings.Split(arg, "_")
	for i, p := range parts {
		parts[i] = strings.ToUpper(p[:1]) + p[1:]
	}
	return strings.Join(parts, "-")
}

// deb822RepositoryModule is ansible.builtin.deb822_repository: it writes
// /etc/apt/sources.list.d/<slug>.sources with the fields given, in Ansible's order and
// format; a signed_by URL is downloaded on the host into /etc/apt/keyrings/<slug>.asc (or
// .gpg when not armored), an existing file's path is used as is, anything else (an inline
// key) is written into the file. state absent removes the file and the key.
func deb822RepositoryModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	allowed := []string{"mode", "state", "install_python_debian"}
	for _, f := range deb822Fields {
		allowed = append(allowed, f.arg)
	}
	if err := playbooks.AllowArgs("deb822_repository", a, allowed...); err != nil {
		return playbooks.Result{}, err
	}
	name, err := a.Required("name")
	if err != nil {
		return playbooks.Result{}, err
	}
	state, _ := a.String("state", "present")
	if err := choice("state", state, "present", "absent"); err != nil {
		return playbooks.Result{}, err
	}
	slug := deb822Slug(name)
	dest := "/etc/apt/sources.list.d/" + slug + ".sources"
	keyBase := "/etc/apt/keyrings/" + slug
	if state == "absent" {
		o, err := runOK(ctx, t, "reading "+dest, "for f in "+q(dest)+" "+q(keyBase+".asc")+" "+q(keyBase+".gpg")+"; do [ -e \"$f\" ] && echo \"have=$f\"; done; :", nil)
		if err != nil {
			return playbooks.Result{}, err
		}
		var have []string
		for _, l := range strings.Split(o.stdout, "\n") {
			if f, ok := strings.CutPrefix(l, "have="); ok {
				have = append(have, f)
			}
		}
		res := playbooks.Result{Data: map[string]any{"repo": nil, "dest": dest, "key_filename": keyBase + ".gpg"}}
		if len(have) == 0 {
			return res, nil
		}
		return res, t.Change("remove "+strings.Join(have, ", "), func() error {
			_, err := runOK(ctx, t, "removing "+dest, "rm -f -- "+shellJoin(have), nil)
			return err
		})
	}
	signedBy, _ := a.String("signed_by", "")
	keyFile, keyCmd := "", ""
	if signedBy != "" && regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*://`).MatchString(signedBy) {
		// download on the host; keep the key where Ansible keeps it, by its armor
		o, err := runOK(ctx, t, "downloading "+signedBy, "t=$(mktemp) || exit 1; trap 'rm -f \"$t\"' EXIT\n"+downloadCmd(signedBy, "$t")+" || exit 4\n"+
			"if grep -q -- '-----BEGIN PGP PUBLIC KEY BLOCK-----' \"$t\"; then e=asc; else e=gpg; fi\n"+
			"echo \"ext=$e\"; echo \"new=$(sha256sum <\"$t\" | cut -d' ' -f1)\"; echo \"old=$(sha256sum <"+q(keyBase)+".$e 2>/dev/null | cut -d' ' -f1)\"", nil)
		if err != nil {
			return playbooks.Result{Failed: true, Msg: "Could not fetch signed_by key: " + err.Error()}, nil
		}
		f := fields(o.stdout)
		keyFile = keyBase + "." + f["ext"]
		if f["new"] != f["old"] {
			keyCmd = "mkdir -p /etc/apt/keyrings && t=$(mktemp /etc/apt/keyrings/.orch-tmp.XXXXXX) && " + downloadCmd(signedBy, "$t") +
				" && chmod 644 \"$t\" && mv -f \"$t\" " + q(keyFile)
		}
		signedBy = keyFile
	}
	var b strings.Builder
	for _, f := range deb822Fields {
		if !a.Has(f.arg) {
			if f.arg == "types" {
				b.WriteString("Types: deb\n")
			}
			continue
		}
		var v string
		switch f.kind {
		case 'b':
			on, err := a.Bool(f.arg, false)
			if err != nil {
				return playbooks.Result{}, err
			}
			v = map[bool]string{true: "yes", false: "no"}[on]
		case 'l':
			l, err := listArg(a, f.arg)
			if err != nil {
				return playbooks.Result{}, err
			}
			if f.arg == "types" {
				for _, x := range l {
					if err := choice("types", x, "deb", "deb-src"); err != nil {
						return playbooks.Result{}, err
					}
				}
			}
			v = strings.Join(l, " ")
		default:
			v, _ = a.String(f.arg, "")
			if f.arg == "signed_by" {
				v = signedBy
			}
		}
		if strings.Contains(strings.TrimSpace(v), "\n") {
			var ls []string
			for _, l := range strings.Split(strings.TrimSpace(v), "\n") {
				if l = strings.TrimSpace(l); l == "" {
					l = "."
				}
				ls = append(ls, "    "+l)
			}
			fmt.Fprintf(&b, "%s:\n%s\n", deb822FieldName(f.arg), strings.Join(ls, "\n"))
			continue
		}
		fmt.Fprintf(&b, "%s: %s\n", deb822FieldName(f.arg), v)
	}
	content := b.String()
	res := playbooks.Result{Data: map[string]any{"repo": content, "dest": dest, "key_filename": nilIfEmpty(keyFile)}}
	if keyCmd != "" {
		if err := t.Change("download "+keyFile, func() error {
			_, err := runOK(ctx, t, "writing "+keyFile, keyCmd, nil)
			return err
		}); err != nil {
			return res, err
		}
	}
	old, err := readTextFile(ctx, t, dest)
	if err != nil {
		return res, err
	}
	mode := a["mode"]
	if mode == nil {
		mode = "0644"
	}
	edit, err := editArgs(playbooks.Args{"mode": mode}, dest)
	if err != nil {
		return res, err
	}
	return res, edit.apply(ctx, t, old, content, &res)
}
