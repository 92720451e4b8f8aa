package hostmods_test

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orch/playbooks"
)

// apiServer is a small JSON API on 127.0.0.1: GET /item returns {"n": 1}, POST /echo
// returns the JSON it got with the request's Content-Type and X-Token headers, /missing 404.
func apiServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/item", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Served-By", "test")
		w.Write([]byte(`{"n": 1, "tags": ["a"]}`))
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var got any
		if err := json.Unmarshal(body, &got); err != nil {
			http.Error(w, "not json: "+string(body), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "got": got, "ctype": r.Header.Get("Content-Type"), "token": r.Header.Get("X-Token")})
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/item", http.StatusFound) })
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// TestURI: GET with a JSON answer (json, headers lower-cased with _, status, msg), POST of a
// body_format json dict with headers and status_code 201 and return_content, a redirect
// followed, a status not in status_code failing with Ansible's message, check mode skipped,
// and the result never changed.
func TestURI(t *testing.T) {
	requireTool(t, "curl")
	url := apiServer(t)
	h := newHarness(t)
	get := h.run("uri: {url: '"+url+"/item'}", false, false)
	if get.status != playbooks.StatusOK {
		t.Fatalf("GET: %s\n%s", get.status, get.out)
	}
	d := get.res.Data
	js, _ := d["json"].(map[string]any)
	if d["status"] != 200 || js["n"] == nil || d["x_served_by"] != "test" || d["content_type"] != "application/json" ||
		d["msg"] != "OK (23 bytes)" || d["redirected"] != false || d["content"] != nil {
		t.Errorf("GET result: %v", d)
	}
	post := h.run("uri:\n  url: "+url+"/echo\n  method: POST\n  body_format: json\n  body: {a: 1, l: [x]}\n"+
		"  headers: {X-Token: secret}\n  status_code: [200, 201]\n  return_content: true", false, false)
	if post.status != playbooks.StatusOK {
		t.Fatalf("POST: %s\n%s", post.status, post.out)
	}
	js, _ = post.res.Data["json"].(map[string]any)
	got, _ := js["got"].(map[string]any)
	if post.res.Data["status"] != 201 || js["method"] != "POST" || js["ctype"] != "application/json" || js["token"] != "secret" ||
		got["a"] != float64(1) || !strings.Contains(post.res.Data["content"].(string), `"method":"POST"`) {
		t.Errorf("POST result: %v", post.res.Data)
	}
	red := h.run("uri: {url: '"+url+"/redirect'}", false, false)
	if red.status != playbooks.StatusOK || red.res.Data["redirected"] != true || red.res.Data["url"] != url+"/item" {
		t.Errorf("redirect: %s %v", red.status, red.res.Data)
	}
	bad := h.run("uri: {url: '"+url+"/missing'}", false, false)
	if bad.status != playbooks.StatusFailed || bad.res.Msg != "Status code was 404 and not [200]: HTTP Error 404: Not Found" {
		t.Errorf("404: %s %q", bad.status, bad.res.Msg)
	}
	if c := h.run("uri: {url: '"+url+"/item'}", true, false); c.status != playbooks.StatusSkipped {
		t.Errorf("--check: %s, want skipped as Ansible's uri (no check mode)", c.status)
	}
}

// TestServiceFacts: this machine's services are listed (sysv here, systemd where PID 1 is
// systemd), each with name, state and source; nothing changes.
func TestServiceFacts(t *testing.T) {
	requireTool(t, "service")
	h := newHarness(t)
	o := h.run("service_facts:", false, false)
	if o.status != playbooks.StatusOK {
		t.Fatalf("service_facts: %s\n%s", o.status, o.out)
	}
	facts, _ := o.res.Data["ansible_facts"].(map[string]any)
	services, _ := facts["services"].(map[string]any)
	if len(services) == 0 {
		t.Fatalf("no services: %v", o.res.Data)
	}
	for name, s := range services {
		m := s.(map[string]any)
		if m["name"] != name || (m["state"] != "running" && m["state"] != "stopped" && m["source"] == "sysv") || m["source"] == nil {
			t.Errorf("service %s: %v", name, m)
		}
	}
	out, _ := exec.Command("sh", "-c", "service --status-all 2>/dev/null | sed -n 's/.*\\] *//p' | head -1").Output()
	if first := strings.TrimSpace(string(out)); first != "" && services[first] == nil {
		t.Errorf("%s (from service --status-all) not in %v", first, services)
	}
}

// TestPackageFacts: the packages dpkg has installed are listed with name, version, arch and
// source apt, as `dpkg-query -W` sees them.
func TestPackageFacts(t *testing.T) {
	requireTool(t, "dpkg-query")
	h := newHarness(t)
	o := h.run("package_facts: {manager: auto}", false, false)
	if o.status != playbooks.StatusOK {
		t.Fatalf("package_facts: %s\n%s", o.status, o.out)
	}
	facts, _ := o.res.Data["ansible_facts"].(map[string]any)
	pkgs, _ := facts["packages"].(map[string]any)
	want, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "dpkg").Output()
	if err != nil {
		t.Fatal(err)
	}
	l, _ := pkgs["dpkg"].([]any)
	if len(l) != 1 || l[0].(map[string]any)["version"] != string(want) || l[0].(map[string]any)["source"] != "apt" {
		t.Errorf("dpkg: %v, want version %s", pkgs["dpkg"], want)
	}
	if bad := h.run("package_facts: {strategy: some}", false, false); bad.status != playbooks.StatusFailed {
		t.Errorf("strategy some: %s", bad.status)
	}
}

// TestDpkgSelections holds an installed package and puts it back: --check reports without
// changing, a run changes, a second run is ok; before/after as Ansible returns them.
func TestDpkgSelections(t *testing.T) {
	requireTool(t, "dpkg")
	out, err := exec.Command("dpkg", "--get-selections", "less").Output()
	if err != nil || !strings.Contains(string(out), "install") {
		t.Skipf("less is not installed with selection install: %q", out)
	}
	t.Cleanup(func() {
		c := exec.Command("dpkg", "--set-selections")
		c.Stdin = strings.NewReader("less install\n")
		if out, err := c.CombinedOutput(); err != nil {
			t.Errorf("restoring less's selection: %v %s", err, out)
		}
	})
	h := newHarness(t)
	first := h.converge("dpkg_selections: {name: less, selection: hold}")
	if first.res.Data["before"] != "install" || first.res.Data["after"] != "hold" {
		t.Errorf("result: %v", first.res.Data)
	}
	if out, _ := exec.Command("dpkg", "--get-selections", "less").Output(); !strings.Contains(string(out), "hold") {
		t.Errorf("dpkg --get-selections less: %q", out)
	}
}

// TestFind: patterns, excludes, regex, file_type, recurse, hidden, depth, size, age and
// contains over a tree, with stat keys, matched and examined; a missing path is skipped.
func TestFind(t *testing.T) {
	h := newHarness(t)
	h.write("t/a.log", "error: x\n")
	h.write("t/b.log", "ok\nan error\n")
	h.write("t/c.txt", strings.Repeat("x", 2048))
	h.write("t/.hidden.log", "h\n")
	h.write("t/sub/d.log", "error\n")
	h.write("t/sub/deep/e.log", "e\n")
	old := filepath.Join(h.dir, "t/b.log")
	if err := os.Chtimes(old, time.Now().Add(-48*time.Hour), time.Now().Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	names := func(o outcome) string {
		var l []string
		files, _ := o.res.Data["files"].([]any)
		for _, f := range files {
			rel, _ := filepath.Rel(filepath.Join(h.dir, "t"), f.(map[string]any)["path"].(string))
			l = append(l, rel)
		}
		return strings.Join(l, " ")
	}
	cases := []struct{ task, want string }{
		{"find: {paths: '{{ d }}/t'}", "a.log b.log c.txt"},
		{"find: {paths: '{{ d }}/t', patterns: '*.log'}", "a.log b.log"},
		{"find: {paths: '{{ d }}/t', patterns: '*.log', hidden: true}", ".hidden.log a.log b.log"},
		{"find: {paths: '{{ d }}/t', patterns: '*.log', recurse: true}", "a.log b.log sub/d.log sub/deep/e.log"},
		{"find: {paths: '{{ d }}/t', patterns: '*.log', recurse: true, depth: 2}", "a.log b.log sub/d.log"},
		{"find: {paths: '{{ d }}/t', patterns: '^[ab]\\.', use_regex: true}", "a.log b.log"},
		{"find: {paths: '{{ d }}/t', excludes: 'a*'}", "b.log c.txt"},
		{"find: {paths: '{{ d }}/t', file_type: directory, recurse: true}", "sub sub/deep"},
		{"find: {paths: '{{ d }}/t', size: 1k}", "c.txt"},
		{"find: {paths: '{{ d }}/t', age: 1d}", "b.log"},
		{"find: {paths: '{{ d }}/t', age: -1d, patterns: '*.log'}", "a.log"},
		{"find: {paths: '{{ d }}/t', contains: 'error', recurse: true}", "a.log sub/d.log"},
		{"find: {paths: '{{ d }}/t', contains: 'error', read_whole_file: true}", "a.log b.log"},
	}
	for _, c := range cases {
		o := h.run(c.task, false, false)
		if o.status != playbooks.StatusOK || names(o) != c.want {
			t.Errorf("%s: %s %q, want %q\n%s", c.task, o.status, names(o), c.want, o.out)
		}
	}
	o := h.run("find: {paths: ['{{ d }}/t', '{{ d }}/nope'], patterns: 'c.txt', get_checksum: true}", true, false)
	files, _ := o.res.Data["files"].([]any)
	if o.status != playbooks.StatusOK || len(files) != 1 || o.res.Data["matched"] != 1 || o.res.Data["examined"] != 5 ||
		o.res.Data["msg"] != "Not all paths examined, check warnings for details" {
		t.Fatalf("with a missing path, in check mode: %s %v", o.status, o.res.Data)
	}
	f := files[0].(map[string]any)
	if f["size"] != int64(2048) || f["isreg"] != true || f["mode"] != "0644" || f["checksum"] == nil || f["pw_name"] == "" {
		t.Errorf("stat keys: %v", f)
	}
}

// TestGetent: a passwd record split at colons into ansible_facts.getent_passwd, a missing
// key failing (or not, with fail_key: false), hosts split at white space.
func TestGetent(t *testing.T) {
	requireTool(t, "getent")
	h := newHarness(t)
	o := h.run("getent: {database: passwd, key: root}", false, false)
	facts, _ := o.res.Data["ansible_facts"].(map[string]any)
	pw, _ := facts["getent_passwd"].(map[string]any)
	root, _ := pw["root"].([]any)
	if o.status != playbooks.StatusOK || len(root) != 6 || root[1] != "0" || root[2] != "0" {
		t.Fatalf("passwd root: %s %v", o.status, o.res.Data)
	}
	if o := h.run("getent: {database: passwd, key: no-such-user-orch}", false, false); o.status != playbooks.StatusFailed ||
		o.res.Msg != "One or more supplied key could not be found in the database." {
		t.Errorf("missing key: %s %q", o.status, o.res.Msg)
	}
	if o := h.run("getent: {database: passwd, key: no-such-user-orch, fail_key: false}", false, false); o.status != playbooks.StatusOK {
		t.Errorf("missing key, fail_key false: %s", o.status)
	}
	o = h.run("getent: {database: hosts, key: localhost}", true, false)
	facts, _ = o.res.Data["ansible_facts"].(map[string]any)
	if hosts, _ := facts["getent_hosts"].(map[string]any); o.status != playbooks.StatusOK || len(hosts) != 1 {
		t.Errorf("hosts localhost in check mode: %s %v", o.status, o.res.Data)
	}
}

// TestModprobe runs what this machine allows: without modprobe every state fails with
// Ansible's message (--check too, as Ansible's does); with it, a module not loaded is ok
// absent and --check of present reports changed, and where /proc/modules lists a module,
// present is ok and --check of absent reports changed without unloading it.
func TestModprobe(t *testing.T) {
	h := newHarness(t)
	if _, err := exec.LookPath("modprobe"); err != nil {
		for _, c := range []struct {
			task  string
			check bool
		}{{"modprobe: {name: orch_no_such_module, state: absent}", false}, {"community.general.modprobe: {name: orch_no_such_module}", true}} {
			if o := h.run(c.task, c.check, false); o.status != playbooks.StatusFailed || o.res.Msg != `Failed to find required executable "modprobe"` {
				t.Errorf("%s without modprobe: %s %q", c.task, o.status, o.res.Msg)
			}
		}
		return
	}
	if o := h.run("modprobe: {name: orch_no_such_module, state: absent}", false, false); o.status != playbooks.StatusOK {
		t.Errorf("absent, not loaded: %s\n%s", o.status, o.out)
	}
	if c := h.run("modprobe: {name: orch_no_such_module}", true, false); c.status != playbooks.StatusChanged {
		t.Errorf("--check of a module not loaded: %s", c.status)
	}
	if o := h.run("modprobe: {name: orch_no_such_module}", false, false); o.status != playbooks.StatusFailed {
		t.Errorf("loading a missing module: %s %q", o.status, o.res.Msg)
	}
	data, err := os.ReadFile("/proc/modules")
	if err != nil || len(data) == 0 {
		t.Logf("no /proc/modules on this kernel: the loaded-module cases are left out")
		return
	}
	name := strings.Fields(string(data))[0]
	if o := h.run("modprobe: {name: "+name+"}", false, false); o.status != playbooks.StatusOK {
		t.Errorf("present, already loaded %s: %s", name, o.status)
	}
	if c := h.run("modprobe: {name: "+name+", state: absent}", true, false); c.status != playbooks.StatusChanged {
		t.Errorf("--check absent of loaded %s: %s", name, c.status)
	}
	if after, _ := os.ReadFile("/proc/modules"); !strings.Contains(string(after), name+" ") {
		t.Errorf("--check unloaded %s", name)
	}
}

// writeWheel writes a pure-Python wheel of distribution name at version into dir, the
// package index of TestPip (no network: pip runs with --no-index --find-links).
func writeWheel(t *testing.T, dir, name, version string) {
	t.Helper()
	di := name + "-" + version + ".dist-info/"
	files := map[string]string{
		name + ".py":         "VALUE = 1\n",
		di + "METADATA":      "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\n",
		di + "WHEEL":         "Wheel-Version: 1.0\nGenerator: orch-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
		di + "top_level.txt": name + "\n",
	}
	var record strings.Builder
	for n := range files {
		record.WriteString(n + ",,\n")
	}
	files[di+"RECORD"] = record.String() + di + "RECORD,,\n"
	p := filepath.Join(dir, name+"-"+version+"-py3-none-any.whl")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z := zip.NewWriter(f)
	for n, c := range files {
		w, err := z.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(c))
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestPip: a package installed into a virtualenv created by python3 -m venv converges
// (--check creates nothing, the first run creates the venv and installs, a second run is
// ok), a pinned version upgrades, absent uninstalls.
func TestPip(t *testing.T) {
	requireTool(t, "python3")
	if out, err := exec.Command("python3", "-c", "import venv, ensurepip").CombinedOutput(); err != nil {
		t.Skipf("python3 has no venv/ensurepip (apt-get install python3-venv): %s", out)
	}
	h := newHarness(t)
	// The first run creates a venv and installs pip into it from ensurepip's wheel: 15 s on
	// a quiet machine, over a minute when the machine is loaded (it failed so in make test).
	h.limit = 5 * time.Minute
	wheels := filepath.Join(h.dir, "wheels")
	os.MkdirAll(wheels, 0o755)
	writeWheel(t, wheels, "orchdemo", "1.0")
	writeWheel(t, wheels, "orchdemo", "2.0")
	common := "virtualenv: '{{ d }}/venv', virtualenv_command: 'python3 -m venv', extra_args: '--no-index --find-links {{ d }}/wheels'"
	first := h.converge("pip: {name: orchdemo, version: '1.0', " + common + "}")
	if !strings.Contains(fmt.Sprint(first.res.Data["stdout"]), "Successfully installed orchdemo-1.0") {
		t.Errorf("first run: %v", first.res.Data)
	}
	list := func() string {
		out, _ := exec.Command(filepath.Join(h.dir, "venv/bin/pip"), "list", "--format=freeze").Output()
		return string(out)
	}
	h.converge("pip: {name: 'orchdemo==2.0', " + common + "}")
	if !strings.Contains(list(), "orchdemo==2.0") {
		t.Errorf("after pinning 2.0: %s", list())
	}
	// extra_args go to pip uninstall too (as in Ansible), which has no --no-index.
	h.converge("pip: {name: orchdemo, state: absent, virtualenv: '{{ d }}/venv'}")
	if strings.Contains(list(), "orchdemo") {
		t.Errorf("after absent: %s", list())
	}
}

// TestIptablesWithoutIptables: where iptables is not installed (this machine) a rule fails
// naming the missing command; where it is, a rule already absent stays ok in --check.
func TestIptablesWithoutIptables(t *testing.T) {
	h := newHarness(t)
	o := h.run("iptables: {chain: INPUT, protocol: tcp, destination_port: '22', jump: ACCEPT}", true, false)
	if _, err := exec.LookPath("iptables"); err != nil {
		if o.status != playbooks.StatusFailed || !strings.Contains(o.res.Msg, "iptables not found") {
			t.Errorf("without iptables: %s %q", o.status, o.res.Msg)
		}
		return
	}
	if o := h.run("iptables: {chain: INPUT, comment: orch-no-such-rule, jump: ACCEPT, state: absent}", true, false); o.status != playbooks.StatusOK {
		t.Errorf("absent rule in --check: %s\n%s", o.status, o.out)
	}
}

// TestGatheredFactsUnderAnsibleFacts: the facts service_facts, package_facts and getent set
// are both variables (getent_passwd) and ansible_facts.<name>, as in Ansible, even with
// gather_facts off; set_fact's variables are not under ansible_facts.
func TestGatheredFactsUnderAnsibleFacts(t *testing.T) {
	requireTool(t, "getent", "dpkg-query", "service")
	h := newHarness(t)
	for _, c := range []struct {
		that string
		ok   bool
	}{
		{"getent_passwd.root[1] == '0' and ansible_facts.getent_passwd.root[1] == '0'", true},
		{"'dpkg' in ansible_facts.packages and 'dpkg' in packages", true},
		{"ansible_facts.services | length > 0", true},
		{"ansible_facts.x is defined", false},
	} {
		o := h.runSrc("- hosts: h1\n  gather_facts: false\n  tasks:\n    - getent: {database: passwd, key: root}\n    - package_facts:\n"+
			"    - service_facts:\n    - set_fact: {x: 1}\n    - assert: {that: [\""+c.that+"\"]}\n", false, false)
		if (o.status == playbooks.StatusOK) != c.ok {
			t.Errorf("%s: %s %s", c.that, o.status, o.res.Msg)
		}
	}
}

// TestYumRepository: a repository section converges in a .repo file (written as Python's
// RawConfigParser writes it), another file's sections and comments-free rewrite are kept,
// absent removes the section and then the empty file.
func TestYumRepository(t *testing.T) {
	h := newHarness(t)
	h.write("other.repo", "# comment\n[keep]\nname = Keep\nbaseurl = http://192.0.2.9/\n")
	task := "yum_repository: {name: epel, description: EPEL 9, baseurl: ['http://192.0.2.1/a', 'http://192.0.2.1/b'], gpgcheck: true, enabled: true, reposdir: '{{ d }}', file: other}"
	h.converge(task)
	want := "[keep]\nname = Keep\nbaseurl = http://192.0.2.9/\n\n[epel]\nbaseurl = http://192.0.2.1/a\n\thttp://192.0.2.1/b\nenabled = 1\ngpgcheck = 1\nname = EPEL 9\n\n"
	if got := h.read("other.repo"); got != want {
		t.Errorf("other.repo:\n%s\nwant:\n%s", got, want)
	}
	h.converge("yum_repository: {name: epel, state: absent, reposdir: '{{ d }}', file: other}")
	h.converge("yum_repository: {name: keep, state: absent, reposdir: '{{ d }}', file: other}")
	if _, err := os.Stat(filepath.Join(h.dir, "other.repo")); !os.IsNotExist(err) {
		t.Errorf("the empty file is still there: %v", err)
	}
	if o := h.run("yum_repository: {name: x, description: X, baseurl: 'http://192.0.2.1/', reposdir: '{{ d }}/nope'}", false, false); o.status != playbooks.StatusFailed ||
		o.res.Msg != "Repo directory '"+h.dir+"/nope' does not exist." {
		t.Errorf("missing reposdir: %s %q", o.status, o.res.Msg)
	}
}

// TestSelinuxConfig: on a host where SELinux does not run (this one, the Debian lab's) the
// state and policy converge in the config file and a reboot is reported as required;
// a state other than disabled needs a policy.
func TestSelinuxConfig(t *testing.T) {
	if out, err := exec.Command("sh", "-c", "command -v getenforce && getenforce").Output(); err == nil && !strings.Contains(string(out), "Disabled") {
		t.Skipf("SELinux runs here (%s): the test would change it", out)
	}
	h := newHarness(t)
	h.write("config", "# SELinux config\nSELINUX=disabled\nSELINUXTYPE=targeted\n")
	first := h.converge("ansible.posix.selinux: {policy: mls, state: permissive, configfile: '{{ d }}/config'}")
	if got := h.read("config"); got != "# SELinux config\nSELINUX=permissive\nSELINUXTYPE=mls\n" {
		t.Errorf("config: %q", got)
	}
	if first.res.Data["reboot_required"] != true || !strings.Contains(first.res.Msg, "Config SELinux state changed from 'disabled' to 'permissive'") {
		t.Errorf("result: %q %v", first.res.Msg, first.res.Data)
	}
	if o := h.run("selinux: {state: enforcing, configfile: '{{ d }}/config'}", false, false); o.status != playbooks.StatusFailed ||
		o.res.Msg != "Policy is required if state is not 'disabled'" {
		t.Errorf("no policy: %s %q", o.status, o.res.Msg)
	}
}

// TestSebooleanWithoutSelinux: where SELinux does not run, seboolean fails with Ansible's
// message (--check too).
func TestSebooleanWithoutSelinux(t *testing.T) {
	if out, err := exec.Command("sh", "-c", "command -v getenforce && getenforce").Output(); err == nil && !strings.Contains(string(out), "Disabled") {
		t.Skipf("SELinux runs here (%s)", out)
	}
	h := newHarness(t)
	for _, check := range []bool{true, false} {
		if o := h.run("ansible.posix.seboolean: {name: httpd_can_network_connect, state: true, persistent: true}", check, false); o.status != playbooks.StatusFailed ||
			o.res.Msg != "SELinux is disabled on this host." {
			t.Errorf("check=%v: %s %q", check, o.status, o.res.Msg)
		}
	}
}
