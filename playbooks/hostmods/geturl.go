package hostmods

import (
	"context"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"orch/playbooks"
)

// get_url downloads a URL on the host (curl, wget or python3, whichever it has) to dest, in
// one command: with force=no (the default) an existing dest is left alone unless a given
// checksum differs; with force=yes the download replaces dest only when its content differs.
func getURLModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("get_url", a, "url", "dest", "checksum", "force", "mode", "owner", "group", "headers",
		"timeout", "validate_certs", "url_username", "username", "url_password", "password", "force_basic_auth", "backup",
		"tmp_dest", "http_agent", "use_proxy", "decompress", "unsafe_writes", "attributes", "ciphers", "client_cert",
		"client_key", "use_gssapi", "use_netrc", "unredirected_headers", "sha256sum"); err != nil {
		return playbooks.Result{}, err
	}
	g, err := getURLArgs(a)
	if err != nil {
		return playbooks.Result{}, err
	}
	script := g.script(t.Check)
	var o output
	do := func() (bool, error) {
		o, err = run(ctx, t, script, nil)
		if err != nil {
			return false, err
		}
		return fields(o.stdout)["changed"] == "1", nil
	}
	desc := "download " + g.url + " to " + g.dest
	if t.Check {
		if changed, err := do(); err != nil {
			return playbooks.Result{}, err
		} else if changed {
			err = t.Change(desc, nil)
		}
	} else {
		err = t.ChangeIf(desc, do)
	}
	if err != nil {
		return playbooks.Result{}, err
	}
	res, err := g.result(o)
	if err != nil || res.Failed {
		return res, err
	}
	return res, g.fixAttrs(ctx, t, res.Data)
}

// fixAttrs gives an up-to-date dest the mode/owner/group asked for.
func (g getURL) fixAttrs(ctx context.Context, t *playbooks.TaskContext, data map[string]any) error {
	dest, _ := data["dest"].(string)
	mode, _ := data["mode"].(string)
	m, _ := strconv.ParseUint(mode, 8, 32)
	cur := textFile{exists: true, mode: fs.FileMode(m), owner: fmt.Sprint(data["owner"]), group: fmt.Sprint(data["group"]),
		uid: fmt.Sprint(data["uid"]), gid: fmt.Sprint(data["gid"])}
	if dest == "" || mode == "" || !g.attrs.differs(cur) {
		return nil
	}
	return t.Change("set mode/owner/group of "+dest, func() error {
		_, err := runOK(ctx, t, "setting attributes of "+dest, "d="+q(dest)+"\n"+g.attrs.script("d"), nil)
		return err
	})
}

// getURL are get_url's arguments.
type getURL struct {
	url, dest       string
	algo, sum       string
	force, validate bool
	timeout         int
	headers         []string
	user, password  string
	attrs           fileAttrs
	backup          bool
}

func getURLArgs(a playbooks.Args) (getURL, error) {
	var g getURL
	var err error
	if g.url, err = a.Required("url"); err != nil {
		return g, err
	}
	if g.dest, err = a.Required("dest"); err != nil {
		return g, err
	}
	if c, _ := a.String("checksum", ""); c != "" {
		algo, sum, ok := strings.Cut(c, ":")
		if !ok || checksumTools[algo] == "" {
			return g, fmt.Errorf("%w \"checksum\": %q must be <algorithm>:<checksum> (sha1, sha256, md5...)", playbooks.ErrArgs, c)
		}
		g.algo, g.sum = algo, strings.ToLower(strings.TrimSpace(sum))
	}
	if g.force, err = a.Bool("force", false); err != nil {
		return g, err
	}
	if g.validate, err = a.Bool("validate_certs", true); err != nil {
		return g, err
	}
	if g.timeout, err = a.Int("timeout", 10); err != nil {
		return g, err
	}
	if h, ok := a["headers"].(map[string]any); ok {
		for k, v := range h {
			g.headers = append(g.headers, k+": "+fmt.Sprint(v))
		}
	}
	g.user, _ = strArg(a, "", "url_username", "username")
	g.password, _ = strArg(a, "", "url_password", "password")
	g.backup, _ = a.Bool("backup", false)
	g.attrs, err = fileAttrsArgs(a)
	return g, err
}

// fetchCmd downloads the URL to "$tmp" and prints status_code=.
func (g getURL) fetchCmd() string {
	curl := []string{"curl", "-sS", "-L", "-o", "$tmp", "-w", "status_code=%{http_code}\\n", "--max-time", strconv.Itoa(g.timeout)}
	wget := []string{"wget", "-q", "-O", "$tmp", "-T", strconv.Itoa(g.timeout)}
	if !g.validate {
		curl, wget = append(curl, "-k"), append(wget, "--no-check-certificate")
	}
	for _, h := range g.headers {
		curl, wget = append(curl, "-H", h), append(wget, "--header="+h)
	}
	if g.user != "" {
		curl = append(curl, "-u", g.user+":"+g.password)
		wget = append(wget, "--user="+g.user, "--password="+g.password)
	}
	quote := func(l []string) string {
		out := make([]string, len(l))
		for i, s := range l {
			out[i] = q(s)
			if s == "$tmp" {
				out[i] = `"$tmp"`
			}
		}
		return strings.Join(out, " ")
	}
	return "if command -v curl >/dev/null; then " + quote(curl) + " -f -- " + q(g.url) + " || exit 4\n" +
		"elif command -v wget >/dev/null; then " + quote(wget) + " -- " + q(g.url) + " || exit 4; echo status_code=200\n" +
		"else python3 -c 'import sys,urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' " + q(g.url) + " \"$tmp\" || exit 4; echo status_code=200; fi\n"
}

// script is the whole task on the host: decide, download, compare, replace.
func (g getURL) script(check bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "export LC_ALL=C\nd=%s\nurl=%s\n", q(g.dest), q(g.url))
	// A directory dest gets the URL's last path element.
	b.WriteString(`if [ -d "$d" ]; then f=${url%%\?*}; f=${f##*/}; [ -n "$f" ] || f=index.html; d="$d/$f"; fi
echo "dest=$d"
`)
	sumTool := "sha1sum"
	if g.sum != "" {
		sumTool = checksumTools[g.algo]
	}
	fmt.Fprintf(&b, "summ() { %s < \"$1\" | cut -d' ' -f1; }\n", sumTool)
	b.WriteString(`finish() { [ -f "$d" ] && { echo "checksum_dest=$(sha1sum < "$d" | cut -d' ' -f1)"; stat -c 'mode=%a
owner=%U
group=%G
uid=%u
gid=%g
size=%s' -- "$d"; }; exit 0; }
`)
	already := ""
	if g.sum != "" {
		already = "echo already=1; " // Ansible says "file already exists" when the checksum matches
	}
	b.WriteString("case \"$(" + g.uptodateTest() + ")\" in 1) " + already + "finish;; esac\n")
	if check {
		b.WriteString("[ -e \"$d\" ] || { echo changed=1; exit 0; }\n")
	}
	b.WriteString("tmp=$(mktemp) || exit 1\ntrap 'rm -f \"$tmp\"' EXIT\n" + g.fetchCmd())
	b.WriteString("echo \"checksum_src=$(sha1sum < \"$tmp\" | cut -d' ' -f1)\"\n")
	if g.sum != "" {
		fmt.Fprintf(&b, "if [ \"$(summ \"$tmp\")\" != %s ]; then echo \"The checksum for $d did not match %s; it was $(summ \"$tmp\").\" >&2; exit 5; fi\n", q(g.sum), g.sum)
	}
	b.WriteString("if [ -f \"$d\" ] && cmp -s \"$tmp\" \"$d\"; then finish; fi\n")
	if check {
		b.WriteString("echo changed=1; exit 0\n")
		return b.String()
	}
	if g.backup {
		b.WriteString("[ -f \"$d\" ] && { bk=\"$d.$$.$(date +%Y-%m-%d@%H:%M:%S)~\"; cp -p -- \"$d\" \"$bk\" && echo \"backup_file=$bk\"; }\n")
	}
	b.WriteString("if [ -f \"$d\" ]; then cat \"$tmp\" > \"$d\" || exit 1; else cp -- \"$tmp\" \"$d\" && chmod 644 \"$d\" || exit 1; fi\n")
	b.WriteString(g.attrs.script("d"))
	b.WriteString("echo changed=1\nfinish\n")
	return b.String()
}

// uptodateTest is a command printing 1 when dest needs no download and its attributes are
// already right.
func (g getURL) uptodateTest() string {
	var b strings.Builder
	if g.sum != "" {
		fmt.Fprintf(&b, "[ -f \"$d\" ] && [ \"$(summ \"$d\")\" = %s ]", q(g.sum))
	} else if !g.force {
		b.WriteString("[ -e \"$d\" ]")
	} else {
		return "echo 0"
	}
	return b.String() + " && echo 1"
}

// result turns the script's report into get_url's return values.
func (g getURL) result(o output) (playbooks.Result, error) {
	f := fields(o.stdout)
	data := map[string]any{"url": g.url, "dest": f["dest"], "msg": "OK"}
	for _, k := range []string{"checksum_src", "checksum_dest", "owner", "group", "backup_file"} {
		if v, ok := f[k]; ok {
			data[k] = v
		}
	}
	for _, k := range []string{"uid", "gid", "size", "status_code"} {
		if v, ok := f[k]; ok {
			data[k] = atoi(v)
		}
	}
	if m, ok := f["mode"]; ok {
		n, _ := strconv.ParseUint(m, 8, 32)
		data["mode"] = fmt.Sprintf("%04o", n)
	}
	switch o.rc {
	case 0:
		if sz, ok := data["size"]; ok {
			data["msg"] = fmt.Sprintf("OK (%v bytes)", sz)
		}
		if f["already"] == "1" {
			data["msg"] = "file already exists"
		}
		return playbooks.Result{Data: data}, nil
	case 4:
		return playbooks.Result{Failed: true, Msg: "Request failed: " + lastLines(strings.TrimSpace(o.stderr), 3), Data: data}, nil
	}
	return playbooks.Result{Failed: true, Msg: lastLines(strings.TrimSpace(o.stderr), 3), Data: data}, nil
}
