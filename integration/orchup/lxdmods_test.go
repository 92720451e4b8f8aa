package orchup

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"orch/modules/image/simplestreams"
	"orch/nodeagent/api"
)

// lxdModulesEnv forms a 2-host cluster with `orch up` and plays lxdSetup, with extra
// tasks appended, on it; it returns the environment and the busybox image it imported.
func lxdModulesEnv(t *testing.T, extra string) (*env, string) {
	t.Helper()
	e := newEnv(t, 2)
	img := busyboxImage(t)
	e.mustUp()
	pb := filepath.Join(e.dir, "lxd-setup.yml")
	if err := os.WriteFile(pb, []byte(lxdSetup+extra), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e.orch("play", pb, "-e", "image_src="+img); r.code != 0 {
		t.Fatalf("setup play exited %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	return e, img
}

// lxdSetup declares, with orch's own modules, what the LXD modules' playbooks expect an
// operator to have: a dir pool, a managed bridge and the busybox image.
const lxdSetup = `- hosts: host1
  gather_facts: false
  tasks:
    - agent_facts: {}
      register: agent
    - storage_pool: {via: host1, fingerprint: "{{ agent.fingerprint }}", name: playpool, driver: dir}
    - network: {via: host1, fingerprint: "{{ agent.fingerprint }}", name: playbr0, config: {ipv4.address: auto}}
    - image: {via: host1, fingerprint: "{{ agent.fingerprint }}", alias: busybox, src: "{{ image_src }}"}
`

// taskResult is one task's result on host1 in `orch play --format json`.
type taskResult map[string]any

func (r taskResult) changed() bool { return r["changed"] == true }
func (r taskResult) failed() bool  { return r["failed"] == true }

// actions is the result's actions as strings.
func (r taskResult) actions() []string {
	l, _ := r["actions"].([]any)
	out := []string{}
	for _, a := range l {
		out = append(out, fmt.Sprint(a))
	}
	return out
}

// playTask runs one task on host1 through `orch play --format json` (extra orch play
// arguments after it) and returns its result there.
func (e *env) playTask(t *testing.T, task string, args ...string) taskResult {
	t.Helper()
	pb := filepath.Join(e.dir, "lxd-task.yml")
	src := "- hosts: host1\n  gather_facts: false\n  tasks:\n    - " + strings.ReplaceAll(strings.TrimSpace(task), "\n", "\n      ") + "\n"
	if err := os.WriteFile(pb, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.orch(append([]string{"play", pb, "--format", "json"}, args...)...)
	var doc struct {
		Plays []struct {
			Tasks []struct {
				Hosts map[string]taskResult `json:"hosts"`
			} `json:"tasks"`
		} `json:"plays"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || len(doc.Plays) != 1 || len(doc.Plays[0].Tasks) != 1 {
		t.Fatalf("orch play %s exited %d: %v\n%s\n%s%s", strings.Join(args, " "), r.code, err, src, r.stdout, r.stderr)
	}
	return doc.Plays[0].Tasks[0].Hosts["host1"]
}

// want fails unless the result has the given changed flag and actions, and did not fail.
func want(t *testing.T, what string, r taskResult, changed bool, actions ...string) {
	t.Helper()
	if actions == nil {
		actions = []string{}
	}
	if r.failed() || r.changed() != changed || !reflect.DeepEqual(r.actions(), actions) {
		t.Fatalf("%s: want changed=%v actions=%v, got %v", what, changed, actions, r)
	}
}

// instanceOf reads an instance through orch's own client (`orch list`'s API).
func instanceOf(t *testing.T, e *env, name string) (api.Instance, bool) {
	t.Helper()
	var list []api.Instance
	mustJSON(t, e, &list, "list", "--format", "json")
	for _, in := range list {
		if in.Name == name {
			return in, true
		}
	}
	return api.Instance{}, false
}

// TestLXDModules runs operators' community.general.lxd_profile and lxd_container tasks with
// `orch play` against a 2-member cluster formed by `orch up`: the modules run on host1 over
// SSH, find no LXD socket there and speak to the agent's (/var/lib/nodeagent/unix.socket)
// through `nodeagent query`. A profile is created, left alone, updated and, at the end,
// renamed and deleted; a container is launched on host2 with config, a device and the
// profile, gets its DHCP address (wait_for_ipv4_addresses), is left alone by a second run
// and a --check run, gets exactly one config key changed, goes through stop, start,
// restart, freeze and unfreeze, and is deleted (after a --check that deletes nothing).
// Errors name the instance; a virtual machine is refused.
func TestLXDModules(t *testing.T) {
	needContainers(t)
	e, _ := lxdModulesEnv(t, "")

	profile := `community.general.lxd_profile:
  name: web
  description: dir root, eth0 on playbr0
  config: {user.role: %s}
  devices:
    root: {path: /, pool: playpool, type: disk}
    eth0: {name: eth0, network: playbr0, type: nic}`
	want(t, "profile --check", e.playTask(t, fmt.Sprintf(profile, "web"), "--check"), true, "create")
	var p api.Profile
	if r := e.orch("profile", "show", "web", "--format", "json"); r.code == 0 {
		t.Fatalf("--check created the profile: %s", r.stdout)
	}
	want(t, "profile create", e.playTask(t, fmt.Sprintf(profile, "web")), true, "create")
	want(t, "profile again", e.playTask(t, fmt.Sprintf(profile, "web")), false)
	want(t, "profile update", e.playTask(t, fmt.Sprintf(profile, "frontend")), true, "apply_profile_configs")
	mustJSON(t, e, &p, "profile", "show", "web", "--format", "json")
	if p.Config["user.role"] != "frontend" || p.Devices["eth0"]["network"] != "playbr0" || p.Description != "dir root, eth0 on playbr0" {
		t.Fatalf("profile after the update: %+v", p)
	}

	container := `lxd_container:
  name: c1
  state: %s
  target: host2
  source: {type: image, alias: busybox}
  profiles: [web]
  config: {user.owner: alice, user.tier: %s}
  devices:
    agent: {type: disk, source: /var/lib/nodeagent, path: /mnt/agent, readonly: true}
  wait_for_ipv4_addresses: true
  timeout: 60`
	c1 := func(state, tier string) string { return fmt.Sprintf(container, state, tier) }

	want(t, "launch --check", e.playTask(t, c1("started", "a"), "--check"), true, "create", "start")
	if _, ok := instanceOf(t, e, "c1"); ok {
		t.Fatal("--check created c1")
	}
	r := e.playTask(t, c1("started", "a"))
	want(t, "launch", r, true, "create", "start")
	addrs, _ := r["addresses"].(map[string]any)
	if eth0, _ := addrs["eth0"].([]any); r["old_state"] != "absent" || len(eth0) != 1 {
		t.Fatalf("launch: want old_state absent and one IPv4 address on eth0: %v", r)
	}
	in, _ := instanceOf(t, e, "c1")
	if in.Location != "host2" || in.Status != api.InstanceRunning || in.Config["user.owner"] != "alice" ||
		in.Devices["agent"]["readonly"] != "true" || !reflect.DeepEqual(in.Profiles, []string{"web"}) {
		t.Fatalf("c1 after the launch: %+v", in)
	}
	want(t, "launch again", e.playTask(t, c1("started", "a")), false)
	want(t, "launch again --check", e.playTask(t, c1("started", "a"), "--check"), false)

	want(t, "one key changed", e.playTask(t, c1("started", "b")), true, "apply_instance_configs")
	after, _ := instanceOf(t, e, "c1")
	if after.Config["user.tier"] != "b" || after.Config["user.owner"] != "alice" || !reflect.DeepEqual(after.Devices, in.Devices) {
		t.Fatalf("c1 after changing user.tier: %+v (before %+v)", after, in)
	}
	for k, v := range in.Config {
		if k != "user.tier" && after.Config[k] != v {
			t.Errorf("config %s changed from %q to %q", k, v, after.Config[k])
		}
	}

	for _, step := range []struct {
		state, old string
		actions    []string
		status     string
	}{
		{"stopped", "started", []string{"stop"}, api.InstanceStopped},
		{"started", "stopped", []string{"start"}, api.InstanceRunning},
		{"restarted", "started", []string{"restart"}, api.InstanceRunning},
		{"frozen", "started", []string{"freeze"}, "Frozen"},
		{"started", "frozen", []string{"unfreeze"}, api.InstanceRunning},
	} {
		r := e.playTask(t, c1(step.state, "b"))
		want(t, "state "+step.state, r, true, step.actions...)
		if r["old_state"] != step.old {
			t.Fatalf("state %s: old_state %v, want %s", step.state, r["old_state"], step.old)
		}
		if in, _ := instanceOf(t, e, "c1"); in.Status != step.status {
			t.Fatalf("after state %s: c1 is %s, want %s", step.state, in.Status, step.status)
		}
	}

	bad := e.playTask(t, "lxd_container: {name: c2, source: {type: image, alias: no-such-image}}")
	if !bad.failed() || !strings.Contains(fmt.Sprint(bad["msg"]), "instance c2: ") {
		t.Fatalf("a launch from a missing image: %v", bad)
	}
	vm := e.playTask(t, "lxd_container: {name: vm1, type: virtual-machine, source: {type: image, alias: busybox}}")
	if !vm.failed() || !strings.Contains(fmt.Sprint(vm["msg"]), "LXC containers only") {
		t.Fatalf("a virtual machine: %v", vm)
	}

	want(t, "delete --check", e.playTask(t, "lxd_container: {name: c1, state: absent}", "--check"), true, "stop", "delete")
	if _, ok := instanceOf(t, e, "c1"); !ok {
		t.Fatal("--check deleted c1")
	}
	want(t, "delete", e.playTask(t, "lxd_container: {name: c1, state: absent}"), true, "stop", "delete")
	if _, ok := instanceOf(t, e, "c1"); ok {
		t.Fatal("c1 still there after state absent")
	}
	want(t, "delete again", e.playTask(t, "lxd_container: {name: c1, state: absent}"), false)

	want(t, "profile rename", e.playTask(t, "lxd_profile: {name: web, new_name: web2}"), true, "rename")
	mustJSON(t, e, &p, "profile", "show", "web2", "--format", "json")
	want(t, "profile delete", e.playTask(t, "lxd_profile: {name: web2, state: absent}"), true, "delete")
	if r := e.orch("profile", "show", "web2", "--format", "json"); r.code == 0 {
		t.Fatalf("web2 still there: %s", r.stdout)
	}
	t.Run("https", func(t *testing.T) { lxdOverHTTPS(t, e) })
}

// lxdOverHTTPS: the modules reach a member over HTTPS with a client certificate made on
// host1 and get it trusted with trust_password (POST /1.0/certificates), the member's
// certificate checked against SSL_CERT_FILE (the cluster certificate) as Python's default
// context checks it; a wrong password fails without showing it.
func lxdOverHTTPS(t *testing.T, e *env) {
	if r := e.orch("config", "set", "core.trust_password", "s3cret-pw"); r.code != 0 {
		t.Fatalf("orch config set core.trust_password: %d %s%s", r.code, r.stdout, r.stderr)
	}
	h1 := e.lab.Host("host1")
	for _, n := range []string{"good", "bad"} {
		cmd := "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=" + n +
			" -keyout /root/" + n + ".key -out /root/" + n + ".crt"
		if out, err := h1.Exec(t.Context(), "sh", "-c", cmd); err != nil {
			t.Fatalf("%s: %v %s", cmd, err, out)
		}
	}
	task := `lxd_profile:
  url: https://%s:8443
  client_cert: /root/%s.crt
  client_key: /root/%s.key
  trust_password: %s
  name: viahttps
  config: {user.via: https}
environment: {SSL_CERT_FILE: /var/lib/nodeagent/cluster.crt}`
	want(t, "profile over https", e.playTask(t, fmt.Sprintf(task, h1.Addr, "good", "good", "s3cret-pw")), true, "create")
	var p api.Profile
	mustJSON(t, e, &p, "profile", "show", "viahttps", "--format", "json")
	want(t, "again, trusted already", e.playTask(t, fmt.Sprintf(task, h1.Addr, "good", "good", "s3cret-pw")), false)
	bad := e.playTask(t, fmt.Sprintf(task, h1.Addr, "bad", "bad", "wrong-pw"))
	t.Logf("a wrong trust password: %v", bad["msg"])
	if msg := fmt.Sprint(bad["msg"]); !bad.failed() || strings.Contains(msg, "wrong-pw") || !strings.Contains(msg, "profile viahttps") {
		t.Fatalf("a wrong trust password: %v", bad)
	}
}

// streamsOnGateway serves the busybox image over simplestreams (alias busybox) on the
// lab's gateway, where the hosts reach this machine.
func streamsOnGateway(t *testing.T, e *env, rootfs string) string {
	t.Helper()
	dir := t.TempDir()
	meta := filepath.Join(t.TempDir(), "lxd.tar.xz")
	if err := simplestreams.WriteMeta(t.Context(), meta, "x86_64", map[string]string{"os": "busybox", "description": "busybox"}); err != nil {
		t.Fatal(err)
	}
	if err := simplestreams.Write(dir, []simplestreams.Entry{{Aliases: []string{"busybox"}, OS: "busybox", Release: "1",
		Arch: runtime.GOARCH, Version: "20260101_0000", Rootfs: rootfs, Meta: meta}}); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(e.lab.Gateway(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.FileServer(http.Dir(dir)))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestLXDThirdPartyPlaybook runs a public playbook written for Ansible and LXD
// (testdata/lxd-thirdparty, see its README for the source and what is adapted) with
// `orch play` on a cluster formed by `orch up`: three containers launched from an image
// server given by URL with the default profile, waited for their IPv4 addresses, then
// prepared with `lxc exec` (LXD's own client on host1, pointed at the agent's socket). The
// file the play appends arrives in each container; a second run launches nothing.
func TestLXDThirdPartyPlaybook(t *testing.T) {
	needContainers(t)
	if _, err := exec.LookPath("lxc"); err != nil {
		t.Skip("lxc (LXD's client) not found: install lxd-client")
	}
	defaultProfile := `
    - community.general.lxd_profile:
        name: default
        merge_profile: true
        devices:
          root: {path: /, pool: playpool, type: disk}
          eth0: {name: eth0, network: playbr0, type: nic}
`
	e, img := lxdModulesEnv(t, defaultProfile)
	server := streamsOnGateway(t, e, img)
	if r := e.orch("remote", "add", "streams", server); r.code != 0 {
		t.Fatalf("orch remote add: %d %s%s", r.code, r.stdout, r.stderr)
	}
	lxcConfig := "default-remote: orch\nremotes:\n  orch:\n    addr: unix:///var/lib/nodeagent/unix.socket\n    public: false\n"
	if out, err := e.lab.Host("host1").Exec(t.Context(), "sh", "-c", "mkdir -p /root/.config/lxc && cat > /root/.config/lxc/config.yml <<'EOF'\n"+lxcConfig+"EOF"); err != nil {
		t.Fatalf("lxc's config on host1: %v %s", err, out)
	}

	h1 := e.lab.Host("host1")
	inv := filepath.Join(e.dir, "thirdparty.ini")
	if err := os.WriteFile(inv, []byte(fmt.Sprintf("[remote_host]\nhost1 ansible_host=%s ansible_user=root ansible_ssh_private_key_file=%s\n",
		h1.Addr, e.lab.KeyFile())), 0o644); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	play := []string{"play", filepath.Join(wd, "testdata/lxd-thirdparty/create-lxcs.yml"),
		"-e", "remote_server=" + server, "-e", "image_alias=busybox", "-e", "container_user=root",
		"-e", "ssh_public_key_path=/etc/hostname", "-e", "destination_path=/home/root/.ssh/authorized_keys"}
	r := e.orchWith(inv, play...)
	if r.code != 0 {
		t.Fatalf("the third-party playbook exited %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("first run:\n%s", r.stdout)
	hostname, err := os.ReadFile("/etc/hostname")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"test1", "test2", "test3"} {
		in, ok := instanceOf(t, e, name)
		if !ok || in.Status != api.InstanceRunning || len(in.IPv4) == 0 {
			t.Fatalf("%s: %+v (listed %v), want Running with an IPv4 address", name, in, ok)
		}
		got := e.orch("exec", name, "--", "cat", "/home/root/.ssh/authorized_keys")
		if got.code != 0 || strings.TrimSpace(got.stdout) != strings.TrimSpace(string(hostname)) {
			t.Fatalf("%s's authorized_keys: exit %d %q, want %q (%s)", name, got.code, got.stdout, hostname, got.stderr)
		}
	}
	r = e.orchWith(inv, append(play, "--format", "json")...)
	var doc struct {
		Plays []struct {
			Tasks []struct {
				Hosts map[string]taskResult `json:"hosts"`
			} `json:"tasks"`
		} `json:"plays"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != 0 || len(doc.Plays) != 1 {
		t.Fatalf("second run exited %d: %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if launch := doc.Plays[0].Tasks[0].Hosts["host1"]; launch.changed() || launch.failed() {
		t.Fatalf("second run: the launch task changed or failed: %v", launch)
	}
}

// lxdCompare is a playbook of lxd_profile and lxd_container tasks that ansible-playbook (with
// community.general's modules) and orch play both run on host1, each with its own prefix
// for the names; url is given, since Ansible's default is LXD's socket.
const lxdCompare = `- hosts: host1
  gather_facts: false
  vars:
    lxd: unix:/var/lib/nodeagent/unix.socket
    prof: {url: "{{ lxd }}", name: "{{ p }}prof", description: d,
           devices: {root: {path: /, pool: playpool, type: disk}, eth0: {name: eth0, network: playbr0, type: nic}}}
    c: {url: "{{ lxd }}", name: "{{ p }}c", source: {type: image, alias: busybox}, profiles: ["{{ p }}prof"],
        wait_for_ipv4_addresses: true, timeout: 60}
  tasks:
    - name: profile create
      community.general.lxd_profile: '{{ prof | combine({"config": {"user.a": "1"}}) }}'
    - name: profile again
      community.general.lxd_profile: '{{ prof | combine({"config": {"user.a": "1"}}) }}'
    - name: profile update
      community.general.lxd_profile: '{{ prof | combine({"config": {"user.a": "2"}}) }}'
    - name: launch
      community.general.lxd_container: '{{ c | combine({"config": {"user.x": "1", "user.y": "1"}}) }}'
    - name: launch again
      community.general.lxd_container: '{{ c | combine({"config": {"user.x": "1"}}) }}'
    - name: one key
      community.general.lxd_container: '{{ c | combine({"config": {"user.x": "2"}}) }}'
    - name: stop
      community.general.lxd_container: {url: "{{ lxd }}", name: "{{ p }}c", state: stopped}
    - name: start
      community.general.lxd_container: {url: "{{ lxd }}", name: "{{ p }}c", state: started}
    - name: restart
      community.general.lxd_container: {url: "{{ lxd }}", name: "{{ p }}c", state: restarted}
    - name: freeze
      community.general.lxd_container: {url: "{{ lxd }}", name: "{{ p }}c", state: frozen}
    - name: unfreeze
      community.general.lxd_container: {url: "{{ lxd }}", name: "{{ p }}c", state: started}
    - name: freeze again
      community.general.lxd_container: {url: "{{ lxd }}", name: "{{ p }}c", state: frozen}
    - name: stop from frozen
      community.general.lxd_container: {url: "{{ lxd }}", name: "{{ p }}c", state: stopped}
    - name: delete
      community.general.lxd_container: {url: "{{ lxd }}", name: "{{ p }}c", state: absent}
    - name: delete again
      community.general.lxd_container: {url: "{{ lxd }}", name: "{{ p }}c", state: absent}
    - name: launch failure
      community.general.lxd_container: {url: "{{ lxd }}", name: "{{ p }}bad", source: {type: image, alias: no-such-image}}
      ignore_errors: true
    - name: profile rename
      community.general.lxd_profile: {url: "{{ lxd }}", name: "{{ p }}prof", new_name: "{{ p }}prof2"}
    - name: profile delete
      community.general.lxd_profile: {url: "{{ lxd }}", name: "{{ p }}prof2", state: absent}
`

// compared is what is compared of one task's result.
func compared(r taskResult) string {
	_, addrs := r["addresses"]
	return fmt.Sprintf("changed=%v failed=%v actions=%v old_state=%v addresses=%v", r.changed(), r.failed(), r.actions(), r["old_state"], addrs)
}

// resultLines reads a json callback document (Ansible's or orch's) into "task: compared"
// lines for host1.
func resultLines(t *testing.T, out string) []string {
	t.Helper()
	var doc struct {
		Plays []struct {
			Tasks []struct {
				Task  struct{ Name string }
				Hosts map[string]taskResult `json:"hosts"`
			} `json:"tasks"`
		} `json:"plays"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Plays) != 1 {
		t.Fatalf("json output: %v\n%s", err, out)
	}
	var lines []string
	for _, task := range doc.Plays[0].Tasks {
		lines = append(lines, task.Task.Name+": "+compared(task.Hosts["host1"]))
	}
	return lines
}

// TestLXDModulesAgainstAnsible runs the same lxd_profile/lxd_container playbook with
// ansible-playbook (community.general's modules, over SSH to host1, speaking to the agent's
// socket) and with orch play on one cluster: every task's changed, failed, actions,
// old_state and whether addresses are returned are the same.
func TestLXDModulesAgainstAnsible(t *testing.T) {
	needContainers(t)
	ansible, err := exec.LookPath("ansible-playbook")
	if err != nil {
		t.Skip("ansible-playbook not installed (apt-get install ansible): nothing to compare with")
	}
	if out, err := exec.Command("ansible-doc", "-l", "community.general").Output(); err != nil || !strings.Contains(string(out), "lxd_container") {
		t.Skip("community.general's lxd_container is not installed (Debian's ansible package has it)")
	}
	e, _ := lxdModulesEnv(t, "")
	cmp := filepath.Join(e.dir, "lxd-compare.yml")
	if err := os.WriteFile(cmp, []byte(lxdCompare), 0o644); err != nil {
		t.Fatal(err)
	}

	h := e.lab.Host("host1")
	inv := filepath.Join(e.dir, "ansible.ini")
	line := fmt.Sprintf("host1 ansible_host=%s ansible_user=root ansible_ssh_private_key_file=%s ansible_ssh_common_args='-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes' ansible_python_interpreter=/usr/bin/python3\n",
		h.Addr, e.lab.KeyFile(), e.lab.KnownHostsFile())
	if err := os.WriteFile(inv, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), ansible, "-i", inv, cmp, "-e", "p=a")
	cmd.Env = append(os.Environ(), "ANSIBLE_STDOUT_CALLBACK=json", "ANSIBLE_NOCOLOR=1", "ANSIBLE_RETRY_FILES_ENABLED=0")
	out, err := cmd.Output()
	if err != nil && len(out) == 0 {
		t.Fatalf("ansible-playbook: %v", err)
	}
	want := resultLines(t, string(out))
	r := e.orch("play", cmp, "-e", "p=o", "--format", "json")
	got := resultLines(t, r.stdout)
	t.Logf("ansible-playbook:\n%s", strings.Join(want, "\n"))
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("orch play differs from ansible-playbook:\norch:\n%s\nansible:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
