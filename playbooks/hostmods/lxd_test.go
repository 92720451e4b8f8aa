package hostmods

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"orch/playbooks"
)

// The modules' decisions, in check mode (no request is sent): Ansible's state machine,
// its comparisons and the bodies it sends. The modules against a real cluster, and against
// Ansible's own on the same cluster, are integration/orchup's TestLXDModules,
// TestLXDModulesAgainstAnsible and TestLXDThirdPartyPlaybook.

// checkContainer is an lxd_container task in check mode on an instance described by old
// (nil: absent).
func checkContainer(t *testing.T, args map[string]any, old map[string]any) *lxdContainer {
	t.Helper()
	tc := &playbooks.TaskContext{Check: true, Args: args}
	m, err := lxdContainerArgs(tc)
	if err != nil {
		t.Fatal(err)
	}
	m.oldState = "absent"
	if old != nil {
		b, _ := json.Marshal(old)
		if err := json.Unmarshal(b, &m.old); err != nil {
			t.Fatal(err)
		}
		m.oldState = lxdStates[old["status"].(string)]
	}
	if err := m.converge(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLXDContainerStateMachine(t *testing.T) {
	running := map[string]any{"status": "Running", "config": map[string]any{"user.a": "1", "volatile.x": "v"}, "profiles": []any{"default"}}
	stopped := map[string]any{"status": "Stopped", "config": map[string]any{"user.a": "1"}}
	frozen := map[string]any{"status": "Frozen", "config": map[string]any{"user.a": "1"}}
	for _, c := range []struct {
		state  string
		old    map[string]any
		config map[string]any
		want   []string
	}{
		{"started", nil, nil, []string{"create", "start"}},
		{"started", running, map[string]any{"user.a": "1"}, nil},
		{"started", running, map[string]any{"user.a": 2}, []string{"apply_instance_configs"}},
		{"started", stopped, nil, []string{"start"}},
		{"started", frozen, nil, []string{"unfreeze"}},
		{"stopped", nil, nil, []string{"create"}},
		{"stopped", stopped, map[string]any{"user.b": true}, []string{"start", "apply_instance_configs", "stop"}},
		{"stopped", frozen, nil, []string{"unfreeze", "stop"}},
		{"restarted", running, nil, []string{"restart"}},
		{"restarted", nil, nil, []string{"create", "start"}},
		{"frozen", stopped, nil, []string{"start", "freeze"}},
		{"frozen", nil, nil, []string{"create", "start", "freeze"}},
		{"absent", frozen, nil, []string{"unfreeze", "stop", "delete"}},
		{"absent", stopped, nil, []string{"delete"}},
		{"absent", nil, nil, nil},
	} {
		args := map[string]any{"name": "c1", "state": c.state, "source": map[string]any{"type": "image", "alias": "busybox"}}
		if c.config != nil {
			args["config"] = c.config
		}
		m := checkContainer(t, args, c.old)
		if want := append([]string{}, c.want...); !reflect.DeepEqual(append([]string{}, m.actions...), want) {
			t.Errorf("state %s from %v, config %v: actions %v, want %v", c.state, c.old["status"], c.config, m.actions, c.want)
		}
	}
}

// TestLXDContainerPutBody: the PUT keeps the instance's sections, volatile keys included,
// sets only the given config keys (numbers and booleans as LXD's strings) and replaces a
// differing section whole.
func TestLXDContainerPutBody(t *testing.T) {
	old := map[string]any{"status": "Running", "architecture": "x86_64",
		"config":   map[string]any{"user.a": "1", "user.keep": "k", "volatile.eth0.hwaddr": "00:16:3e:00:00:01"},
		"devices":  map[string]any{"root": map[string]any{"type": "disk", "path": "/", "pool": "p"}},
		"profiles": []any{"default"}, "ephemeral": false}
	m := checkContainer(t, map[string]any{"name": "c1", "config": map[string]any{"user.a": 2, "limits.cpu.allowance": true},
		"profiles": []any{"default", "web"}, "devices": map[string]any{"root": map[string]any{"type": "disk", "path": "/", "pool": "p"}}}, old)
	if got := m.differing(); !reflect.DeepEqual(got, []string{"config", "profiles"}) {
		t.Fatalf("differing sections %v", got)
	}
	b, _ := json.Marshal(m.putBody())
	var body map[string]any
	_ = json.Unmarshal(b, &body)
	want := map[string]any{"architecture": "x86_64", "ephemeral": false,
		"config":   map[string]any{"user.a": "2", "user.keep": "k", "volatile.eth0.hwaddr": "00:16:3e:00:00:01", "limits.cpu.allowance": "true"},
		"devices":  map[string]any{"root": map[string]any{"type": "disk", "path": "/", "pool": "p"}},
		"profiles": []any{"default", "web"}}
	if !reflect.DeepEqual(body, want) {
		t.Fatalf("PUT body\n%v\nwant\n%v", body, want)
	}
	// {} given and none there is no change (LXD answers {} where Ansible compares null).
	m = checkContainer(t, map[string]any{"name": "c1", "devices": map[string]any{}}, map[string]any{"status": "Running"})
	if len(m.actions) != 0 {
		t.Fatalf("empty devices on an instance without: %v", m.actions)
	}
}

func TestLXDContainerRefusesVM(t *testing.T) {
	_, err := lxdContainerArgs(&playbooks.TaskContext{Args: map[string]any{"name": "v", "type": "virtual-machine"}})
	if err == nil || !strings.Contains(err.Error(), "LXC containers only") {
		t.Fatalf("virtual-machine: %v", err)
	}
}

// TestLXDProfileBodies: without merge_profile the PUT carries only the given sections (the
// server empties the others, as with Ansible); with it, the given ones are merged into the
// profile's, a device's keys one by one.
func TestLXDProfileBodies(t *testing.T) {
	old := map[string]any{"name": "web", "description": "d", "config": map[string]any{"user.a": "1"},
		"devices": map[string]any{"eth0": map[string]any{"type": "nic", "network": "br0"}}}
	for _, c := range []struct {
		merge bool
		want  map[string]any
	}{
		{false, map[string]any{"devices": map[string]any{"eth0": map[string]any{"mtu": "1400"}}}},
		{true, map[string]any{"description": "d", "config": map[string]any{"user.a": "1"},
			"devices": map[string]any{"eth0": map[string]any{"type": "nic", "network": "br0", "mtu": "1400"}}}},
	} {
		tc := &playbooks.TaskContext{Check: true, Args: map[string]any{"name": "web", "merge_profile": c.merge,
			"devices": map[string]any{"eth0": map[string]any{"mtu": 1400}}}}
		m, err := lxdProfileArgs(tc)
		if err != nil {
			t.Fatal(err)
		}
		m.old = old
		if !m.needsApply() {
			t.Fatal("a differing device is no change")
		}
		b, _ := json.Marshal(m.putBody())
		var body map[string]any
		_ = json.Unmarshal(b, &body)
		if !reflect.DeepEqual(body, c.want) {
			t.Errorf("merge_profile %v: PUT body %v, want %v", c.merge, body, c.want)
		}
	}
}

// TestLXDPrelude: the default url looks for LXD's sockets (snap's first) and falls back to
// the agent's, under agent_dir; an https url adds the client certificate, $HOME's by default.
func TestLXDPrelude(t *testing.T) {
	c := &lxdClient{url: lxdDefaultURL, snapURL: lxdSnapURL, agentDir: "/srv/agent"}
	p := c.prelude()
	for _, want := range []string{"na=/srv/agent/bin/nodeagent", "[ -S /var/snap/lxd/common/lxd/unix.socket ]",
		"elif [ -S /var/lib/lxd/unix.socket ]", "else u=unix:/srv/agent/unix.socket", `query --raw --wait --url "$u" "$@"`} {
		if !strings.Contains(p, want) {
			t.Errorf("prelude has no %q:\n%s", want, p)
		}
	}
	c = &lxdClient{url: "https://10.0.0.1:8443", agentDir: agentDirDefault, key: "/k ey"}
	p = c.prelude()
	for _, want := range []string{"u=https://10.0.0.1:8443", `--cert "$HOME/.config/lxc/client.crt" --key '/k ey'`} {
		if !strings.Contains(p, want) {
			t.Errorf("prelude has no %q:\n%s", want, p)
		}
	}
}

// TestLXDContainerDiff: with --diff, the config key that changes shows as Ansible's
// callback shows the module's before/after dicts.
func TestLXDContainerDiff(t *testing.T) {
	tc := &playbooks.TaskContext{Check: true, Diff: true, Args: map[string]any{"name": "c1", "config": map[string]any{"user.a": "2"}}}
	m, err := lxdContainerArgs(tc)
	if err != nil {
		t.Fatal(err)
	}
	m.oldState = "started"
	_ = json.Unmarshal([]byte(`{"config": {"user.a": "1"}, "status": "Running"}`), &m.old)
	if err := m.converge(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, _ := m.result(nil)
	for _, want := range []string{"--- before\n+++ after\n", `-            "user.a": "1"`, `+            "user.a": "2"`} {
		if !strings.Contains(res.Diff, want) {
			t.Errorf("diff has no %q:\n%s", want, res.Diff)
		}
	}
}

// TestLXDConfigValuesAsStrings: a config or device value from YAML becomes LXD's string the
// way templating writes it: booleans lower-case, whole numbers without an exponent,
// a list or a dictionary as JSON, null as empty.
func TestLXDConfigValuesAsStrings(t *testing.T) {
	got := strMap(map[string]any{
		"security.nesting": true, "limits.cpu": 2, "limits.memory": float64(2e9),
		"limits.cpu.allowance": 0.5, "user.list": []any{"a", 1}, "user.map": map[string]any{"k": "v"},
		"user.none": nil, "user.s": "x",
	})
	want := map[string]string{
		"security.nesting": "true", "limits.cpu": "2", "limits.memory": "2000000000",
		"limits.cpu.allowance": "0.5", "user.list": `["a",1]`, "user.map": `{"k":"v"}`,
		"user.none": "", "user.s": "x",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("strMap = %v, want %v", got, want)
	}
}
