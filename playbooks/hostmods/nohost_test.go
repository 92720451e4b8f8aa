package hostmods

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"orch/playbooks"
)

// No ZFS pool, RabbitMQ broker or MongoDB server is available here (zfsutils is not in
// Debian main, no MongoDB package, and a RabbitMQ broker would need its Erlang node on this
// shared machine): these tests check the commands and decisions of zfs, rabbitmq_* and
// mongodb_user, what a real run would execute.

func TestZFSCommands(t *testing.T) {
	props, err := zfsProps(playbooks.Args{"name": "rpool/ansible", "state": "present", "quota": "10G", "snapdir": "visible",
		"extra_zfs_properties": map[string]any{"compression": true}})
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"compression", "quota", "snapdir"}
	if got := zfsCreate("rpool/ansible", "", props, keys); got != "zfs create -p -o compression=on -o quota=10G -o snapdir=visible 'rpool/ansible'" &&
		strings.ReplaceAll(got, "'", "") != "zfs create -p -o compression=on -o quota=10G -o snapdir=visible rpool/ansible" {
		t.Errorf("create: %s", got)
	}
	if got := zfsCreate("rpool/smallvol", "", map[string]string{"volsize": "10M"}, []string{"volsize"}); strings.ReplaceAll(got, "'", "") != "zfs create -p -V 10M rpool/smallvol" {
		t.Errorf("volume: %s", got)
	}
	if got := zfsCreate("rpool/ansible@mysnapshot", "", nil, nil); strings.ReplaceAll(got, "'", "") != "zfs snapshot rpool/ansible@mysnapshot" {
		t.Errorf("snapshot: %s", got)
	}
	if got := zfsCreate("rpool/clone", "rpool/ansible@mysnapshot", nil, nil); strings.ReplaceAll(got, "'", "") != "zfs clone -p rpool/ansible@mysnapshot rpool/clone" {
		t.Errorf("clone: %s", got)
	}
	for _, c := range []struct {
		have, want string
		same       bool
	}{{"10737418240", "10G", true}, {"10485760", "10M", true}, {"visible", "visible", true}, {"on", "off", false}, {"1073741824", "2G", false}} {
		if zfsSameValue(c.have, c.want) != c.same {
			t.Errorf("zfsSameValue(%s, %s) != %v", c.have, c.want, c.same)
		}
	}
}

func TestRabbitMQPlans(t *testing.T) {
	enable, disable := rabbitmqPluginPlan([]string{"rabbitmq_management", "rabbitmq_tracing"}, []string{"rabbitmq_tracing", "rabbitmq_shovel"}, "enabled", false)
	if !slices.Equal(enable, []string{"rabbitmq_management"}) || !slices.Equal(disable, []string{"rabbitmq_shovel"}) {
		t.Errorf("enabled: %v %v", enable, disable)
	}
	_, disable = rabbitmqPluginPlan([]string{"rabbitmq_management"}, []string{"rabbitmq_shovel"}, "enabled", true)
	if len(disable) != 0 {
		t.Errorf("new_only disables %v", disable)
	}
	_, disable = rabbitmqPluginPlan([]string{"rabbitmq_shovel", "x"}, []string{"rabbitmq_shovel"}, "disabled", false)
	if !slices.Equal(disable, []string{"rabbitmq_shovel"}) {
		t.Errorf("disabled: %v", disable)
	}
	p, _ := rabbitmqPerms(playbooks.Args{"vhost": "/test", "read_priv": ".*"})
	if p[0] != (rabbitmqPerm{"/test", "^$", "^$", ".*"}) {
		t.Errorf("perms: %+v", p)
	}
	p, _ = rabbitmqPerms(playbooks.Args{"permissions": []any{map[string]any{"vhost": "/", "configure_priv": ".*", "write_priv": ".*", "read_priv": ".*"}}})
	if p[0] != (rabbitmqPerm{"/", ".*", ".*", ".*"}) {
		t.Errorf("permissions: %+v", p)
	}
	if got := rabbitmqctl("rabbitmqctl", "rabbit", "set_permissions", "-p", "/", "u", ".*", "^$", "^$"); got != "rabbitmqctl -q -n rabbit set_permissions -p / u '.*' '^$' '^$'" {
		t.Errorf("rabbitmqctl: %s", got)
	}
}

// TestMongoUserScript checks the task given to the mongo shell and, when node is installed,
// that the script is valid JavaScript.
func TestMongoUserScript(t *testing.T) {
	task, uri, err := mongoUserTask(playbooks.Args{"database": "test", "user": "admin", "password": "p\"w'`", "login_user": "admin",
		"login_password": "x", "login_port": "27017", "state": "present"})
	if err != nil {
		t.Fatal(err)
	}
	if uri != "mongodb://localhost:27017/admin" || fmt.Sprint(task["roles"]) != "[readWrite]" || task["update_password"] != "always" {
		t.Errorf("task %v uri %s", task, uri)
	}
	in, _ := json.Marshal(task)
	js := fmt.Sprintf(mongoUserScript, in)
	if !strings.Contains(js, `"password":"p\"w'`+"`"+`"`) {
		t.Errorf("password not carried as a JSON string:\n%s", js)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed: the script's syntax is not checked")
	}
	f := filepath.Join(t.TempDir(), "u.js")
	if err := os.WriteFile(f, []byte(js), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(node, "--check", f).CombinedOutput(); err != nil {
		t.Fatalf("node --check: %v\n%s", err, out)
	}
}
