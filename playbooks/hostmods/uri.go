package hostmods

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"orch/playbooks"
)

// uriArgNames are the arguments of Ansible's uri module.
var uriArgNames = []string{"url", "method", "body", "body_format", "src", "status_code", "return_content", "headers",
	"timeout", "validate_certs", "url_username", "user", "url_password", "password", "force_basic_auth",
	"follow_redirects", "creates", "removes", "dest", "mode", "owner", "group", "http_agent", "use_proxy",
	"unix_socket", "remote_src", "ca_path", "unredirected_headers", "decompress", "ciphers", "use_netrc",
	"client_cert", "client_key", "use_gssapi", "force", "unsafe_writes", "attributes", "seuser", "serole",
	"selevel", "setype"}

// uriMethod is the one-uppercase-word rule Ansible applies to method.
var uriMethod = regexp.MustCompile(`^[A-Z]+$`)

// uri makes an HTTP request from the host (with curl, as Ansible requests from the host) and
// returns Ansible's keys: status, url, msg, redirected, elapsed, the response headers
// lower-cased with - as _, content with return_content, json when the response is JSON. It
// changes nothing (changed=false) unless dest is written; like Ansible's, it does not run in
// check mode.
func uriModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	if err := playbooks.AllowArgs("uri", t.Args, uriArgNames...); err != nil {
		return playbooks.Result{}, err
	}
	if t.Check {
		return playbooks.Result{Skipped: true, Msg: "remote module (uri) does not support check mode"}, nil
	}
	r, err := uriArgs(t.Args)
	if err != nil {
		return playbooks.Result{}, err
	}
	start := time.Now()
	o, err := run(ctx, t, r.script(), strings.NewReader(r.body))
	if err != nil {
		return playbooks.Result{}, err
	}
	res := r.result(o, int(time.Since(start).Seconds()))
	if r.dest != "" && !res.Failed && res.Data["status"] != 304 {
		res.Changed = true // Ansible's uri reports changed whenever it writes dest
	}
	return res, nil
}

// uriReq are uri's arguments, validated.
type uriReq struct {
	url, method, body, bodyFormat string
	status                        []int
	returnContent, validate       bool
	follow                        string
	timeout                       int
	headers                       map[string]string
	user, password                string
	creates, removes, dest, src   string
}

func uriArgs(a playbooks.Args) (uriReq, error) {
	r := uriReq{headers: map[string]string{}}
	var err error
	if r.url, err = a.Required("url"); err != nil {
		return r, err
	}
	r.method, _ = a.String("method", "GET")
	r.method = strings.ToUpper(r.method)
	if !uriMethod.MatchString(r.method) {
		return r, fmt.Errorf("%w \"method\": Parameter 'method' needs to be a single word in uppercase, like GET or POST", playbooks.ErrArgs)
	}
	r.bodyFormat, _ = a.String("body_format", "raw")
	r.bodyFormat = strings.ToLower(r.bodyFormat)
	if err := choice("body_format", r.bodyFormat, "raw", "json", "form-urlencoded"); err != nil {
		return r, err
	}
	if h, ok := a["headers"].(map[string]any); ok {
		for k, v := range h {
			r.headers[k] = fmt.Sprint(v)
		}
	} else if a.Has("headers") {
		return r, fmt.Errorf("%w \"headers\": a dictionary is required", playbooks.ErrArgs)
	}
	if r.body, err = uriBody(a["body"], r.bodyFormat, r.headers); err != nil {
		return r, err
	}
	r.status = []int{200}
	if a.Has("status_code") {
		r.status = nil
		codes, err := listArg(a, "status_code")
		if err != nil {
			return r, err
		}
		for _, c := range codes {
			n, err := strconv.Atoi(c)
			if err != nil {
				return r, fmt.Errorf("%w \"status_code\": %q is not an integer", playbooks.ErrArgs, c)
			}
			r.status = append(r.status, n)
		}
	}
	if r.returnContent, err = a.Bool("return_content", false); err != nil {
		return r, err
	}
	if r.validate, err = a.Bool("validate_certs", true); err != nil {
		return r, err
	}
	r.follow, _ = a.String("follow_redirects", "safe")
	if err := choice("follow_redirects", r.follow, "all", "no", "none", "safe", "urllib2", "yes"); err != nil {
		return r, err
	}
	if r.timeout, err = a.Int("timeout", 30); err != nil {
		return r, err
	}
	r.user, _ = strArg(a, "", "url_username", "user")
	r.password, _ = strArg(a, "", "url_password", "password")
	r.creates, _ = a.String("creates", "")
	r.removes, _ = a.String("removes", "")
	r.dest, _ = a.String("dest", "")
	r.src, _ = a.String("src", "")
	if r.src != "" && a.Has("body") {
		return r, fmt.Errorf("%w: parameters are mutually exclusive: body|src", playbooks.ErrArgs)
	}
	return r, nil
}

// uriBody encodes body as body_format says, adding the Content-Type Ansible adds.
func uriBody(body any, format string, headers map[string]string) (string, error) {
	hasType := false
	for k := range headers {
		hasType = hasType || strings.EqualFold(k, "content-type")
	}
	switch format {
	case "json":
		if !hasType {
			headers["Content-Type"] = "application/json"
		}
		if s, ok := body.(string); ok || body == nil {
			return s, nil
		}
		b, err := json.Marshal(body)
		return string(b), err
	case "form-urlencoded":
		if !hasType {
			headers["Content-Type"] = "application/x-www-form-urlencoded"
		}
		m, ok := body.(map[string]any)
		if !ok {
			s, _ := body.(string)
			return s, nil
		}
		v := url.Values{}
		for k, x := range m {
			v.Set(k, fmt.Sprint(x))
		}
		return v.Encode(), nil
	}
	if body == nil {
		return "", nil
	}
	return fmt.Sprint(body), nil
}

// script is the one command: creates/removes, then curl writing headers and body to a
// temporary directory, printed back as key=value lines (headers and body base64).
func (r uriReq) script() string {
	var b strings.Builder
	if r.creates != "" {
		fmt.Fprintf(&b, "if [ -e %s ]; then echo skipped=creates; exit 0; fi\n", q(r.creates))
	}
	if r.removes != "" {
		fmt.Fprintf(&b, "if [ ! -e %s ]; then echo skipped=removes; exit 0; fi\n", q(r.removes))
	}
	b.WriteString("command -v curl >/dev/null || { echo 'uri needs curl on the host' >&2; exit 127; }\n")
	b.WriteString("t=$(mktemp -d) || exit 1\ntrap 'rm -rf \"$t\"' EXIT\n")
	method := []string{"-X", q(r.method)}
	if r.method == "HEAD" {
		method = []string{"-I"} // -X HEAD would wait for a body
	}
	args := append([]string{"curl", "-sS"}, method...)
	args = append(args, "--max-time", strconv.Itoa(r.timeout), "-D", "\"$t/h\"", "-o", "\"$t/b\"",
		"-w", q("%{http_code} %{url_effective}"))
	if !r.validate {
		args = append(args, "-k")
	}
	if r.follow == "all" || r.follow == "yes" || (r.follow == "safe" || r.follow == "urllib2") && (r.method == "GET" || r.method == "HEAD") {
		args = append(args, "-L")
	}
	if r.user != "" {
		args = append(args, "-u", q(r.user+":"+r.password))
	}
	keys := make([]string, 0, len(r.headers))
	for k := range r.headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-H", q(k+": "+r.headers[k]))
	}
	switch {
	case r.src != "":
		args = append(args, "--data-binary", q("@"+r.src))
	case r.body != "":
		args = append(args, "--data-binary", "@-")
	}
	b.WriteString(strings.Join(append(args, "--", q(r.url)), " ") + " >\"$t/w\" 2>\"$t/e\"\necho \"rc=$?\"\n")
	b.WriteString("echo \"w=$(cat \"$t/w\")\"\necho \"err=$(tr '\\n' ' ' < \"$t/e\")\"\n")
	b.WriteString("[ -f \"$t/h\" ] && echo \"h=$(base64 -w0 < \"$t/h\")\"\n[ -f \"$t/b\" ] && echo \"b=$(base64 -w0 < \"$t/b\")\"\n")
	if r.dest != "" {
		fmt.Fprintf(&b, "if [ -f \"$t/b\" ]; then d=%s; [ -d \"$d\" ] && d=\"$d/index.html\"; cp \"$t/b\" \"$d\" && echo \"dest=$d\"; fi\n", q(r.dest))
	}
	return b.String()
}

// result turns the probe's lines into the module's result.
func (r uriReq) result(o output, elapsed int) playbooks.Result {
	f := fields(o.stdout)
	if s := f["skipped"]; s != "" {
		p := r.creates
		msg := "skipped, since '%s' exists"
		if s == "removes" {
			p, msg = r.removes, "skipped, since '%s' does not exist"
		}
		return playbooks.Result{Data: map[string]any{"stdout": fmt.Sprintf(msg, p)}}
	}
	if o.rc != 0 {
		return playbooks.Result{Failed: true, Msg: "uri: " + strings.TrimSpace(o.stderr)}
	}
	data := map[string]any{"url": r.url, "changed": false, "elapsed": elapsed, "redirected": false, "cookies": map[string]any{},
		"cookies_string": ""}
	code, eff, _ := strings.Cut(f["w"], " ")
	status, _ := strconv.Atoi(code)
	data["status"] = status
	if eff != "" {
		data["url"] = eff
		data["redirected"] = eff != r.url
	}
	hdr, _ := base64.StdEncoding.DecodeString(f["h"])
	body, _ := base64.StdEncoding.DecodeString(f["b"])
	ctype := uriHeaders(string(hdr), data)
	if f["rc"] != "0" || status == 0 {
		data["status"] = -1
		return playbooks.Result{Failed: true, Msg: "Status code was -1 and not " + intList(r.status) + ": Request failed: " + strings.TrimSpace(f["err"]), Data: data}
	}
	length, _ := data["content_length"].(string)
	if length == "" {
		length = "unknown" // Ansible prints the Content-Length header, not the body's size
	}
	msg := "OK (" + length + " bytes)"
	if status >= 400 {
		msg = "HTTP Error " + code + ": " + uriReason(string(hdr))
	}
	if f["dest"] != "" {
		data["path"] = f["dest"]
	}
	isJSON := uriIsJSON(ctype)
	if isJSON {
		var js any
		if json.Unmarshal(body, &js) == nil {
			data["json"] = js
		}
	}
	ok := false
	for _, s := range r.status {
		ok = ok || s == status
	}
	if r.returnContent {
		data["content"] = string(body)
	}
	if !ok {
		data["msg"] = "Status code was " + code + " and not " + intList(r.status) + ": " + msg
		return playbooks.Result{Failed: true, Msg: data["msg"].(string), Data: data}
	}
	data["msg"] = msg
	return playbooks.Result{Msg: msg, Data: data}
}

// uriHeaders adds the last response's headers (after redirects) to data, lower-cased with
// - as _, and returns the Content-Type.
func uriHeaders(raw string, data map[string]any) string {
	blocks := strings.Split(strings.ReplaceAll(raw, "\r\n", "\n"), "\n\n")
	last := ""
	for _, b := range blocks {
		if strings.TrimSpace(b) != "" {
			last = b
		}
	}
	ctype := ""
	for i, l := range strings.Split(last, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if i == 0 || !ok {
			continue
		}
		key := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(k)), "-", "_")
		v = strings.TrimSpace(v)
		if key == "content_type" {
			ctype = v
		}
		if prev, dup := data[key].(string); dup && key != "url" && key != "status" {
			v = prev + ", " + v
		}
		switch key {
		case "url", "status", "msg", "elapsed", "redirected", "changed", "json", "content", "cookies", "cookies_string":
			continue // the module's own keys win over a header of the same name
		}
		data[key] = v
	}
	return ctype
}

// uriReason is the reason phrase of the last status line.
func uriReason(raw string) string {
	reason := ""
	for _, l := range strings.Split(strings.ReplaceAll(raw, "\r\n", "\n"), "\n") {
		if strings.HasPrefix(l, "HTTP/") {
			parts := strings.SplitN(l, " ", 3)
			if len(parts) == 3 {
				reason = parts[2]
			}
		}
	}
	return reason
}

// uriIsJSON is Ansible's test of a Content-Type that the module decodes as JSON.
func uriIsJSON(ctype string) bool {
	mt, _, _ := strings.Cut(ctype, ";")
	_, sub, _ := strings.Cut(strings.ToLower(strings.TrimSpace(mt)), "/")
	if _, suffix, ok := strings.Cut(sub, "+"); ok {
		sub = suffix
	}
	return sub == "json" || sub == "javascript"
}

// intList prints a list of ints as Python prints it: [200, 201].
func intList(l []int) string {
	s := make([]string, len(l))
	for i, n := range l {
		s[i] = strconv.Itoa(n)
	}
	return "[" + strings.Join(s, ", ") + "]"
}
