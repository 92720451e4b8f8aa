package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestConnection(t *testing.T) {
	home, _ := os.UserHomeDir()
	inv := mustParse(t, "inv.yml", `
all:
  vars:
    ansible_user: admin
  hosts:
    plain:
    full:
      ansible_host: 10.0.0.5
      ansible_port: "2222"
      ansible_user: root
      ansible_ssh_private_key_file: ~/.ssh/id_ed25519
      ansible_become: "yes"
      ansible_become_user: ops
    legacy:
      ansible_ssh_host: 10.0.0.6
      ansible_ssh_port: 2200
      ansible_ssh_user: old
      ansible_private_key_file: /keys/k
      ansible_become: 1
    jump_orch:
      orch_proxy_jump: bastion@jump.example.com:2022
      ansible_ssh_common_args: -o ProxyJump=ignored.example.com
    jump_common:
      ansible_ssh_common_args: -o StrictHostKeyChecking=no -o 'ProxyJump=u@j1,j2:2200'
    jump_j:
      ansible_ssh_extra_args: -J ssh://u@[2001:db8::9]:22
    jump_none:
      ansible_ssh_common_args: -o ProxyJump=none
    become_off:
      ansible_become: off
`)
	cases := map[string]Connection{
		"plain": {Host: "plain", Port: 22, User: "admin", BecomeUser: "root"},
		"full": {Host: "10.0.0.5", Port: 2222, User: "root", PrivateKeyFile: filepath.Join(home, ".ssh/id_ed25519"),
			Become: true, BecomeUser: "ops"},
		"legacy":      {Host: "10.0.0.6", Port: 2200, User: "old", PrivateKeyFile: "/keys/k", Become: true, BecomeUser: "root"},
		"jump_orch":   {Host: "jump_orch", Port: 22, User: "admin", BecomeUser: "root", ProxyJump: []Endpoint{{"bastion", "jump.example.com", 2022}}},
		"jump_common": {Host: "jump_common", Port: 22, User: "admin", BecomeUser: "root", ProxyJump: []Endpoint{{"u", "j1", 22}, {"", "j2", 2200}}},
		"jump_j":      {Host: "jump_j", Port: 22, User: "admin", BecomeUser: "root", ProxyJump: []Endpoint{{"u", "2001:db8::9", 22}}},
		"jump_none":   {Host: "jump_none", Port: 22, User: "admin", BecomeUser: "root"},
		"become_off":  {Host: "become_off", Port: 22, User: "admin", BecomeUser: "root"},
	}
	for name, want := range cases {
		got, err := inv.Host(name).Connection()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, want)
		}
	}
	if got := cases["jump_j"].ProxyJump[0].Address(); got != "[2001:db8::9]:22" {
		t.Errorf("Address() = %s", got)
	}
}

func TestConnectionErrors(t *testing.T) {
	cases := []struct{ vars, want string }{
		{"ansible_port=abc", `inv.ini:2:3: host "h": ansible_port: invalid value: "abc" is not a port number (1-65535)`},
		{"ansible_port=70000", `inv.ini:2:3: host "h": ansible_port: invalid value: 70000 is not a port number (1-65535)`},
		{"ansible_become=maybe", `inv.ini:2:3: host "h": ansible_become: invalid value: "maybe" is not a boolean (use yes/no, true/false, on/off or 1/0)`},
		{"ansible_become=2", `inv.ini:2:3: host "h": ansible_become: invalid value: 2 is not a boolean (use yes/no, true/false, on/off or 1/0)`},
		{"ansible_user=[1]", `inv.ini:2:3: host "h": ansible_user: invalid value: want a string, got a list`},
		{"orch_proxy_jump=a@b:c", `inv.ini:2:3: host "h": orch_proxy_jump: invalid value "a@b:c": bad port "c"`},
		{"orch_proxy_jump=@:22", `inv.ini:2:3: host "h": orch_proxy_jump: invalid value "@:22": bad host "" (want [user@]host[:port])`},
		{`ansible_ssh_common_args="-o ProxyCommand='ssh -W %h:%p b'"`, `inv.ini:2:3: host "h": ansible_ssh_common_args: invalid value "-o ProxyCommand='ssh -W %h:%p b'": ProxyCommand is not supported, set orch_proxy_jump (user@host:port) instead`},
	}
	for _, c := range cases {
		inv := mustParse(t, "inv.ini", "[g]\nh "+c.vars+"\n")
		_, err := inv.Host("h").Connection()
		if err == nil || err.Error() != c.want {
			t.Errorf("%s: error\n got %v\nwant %s", c.vars, err, c.want)
		}
		if !errors.Is(err, ErrBadValue) {
			t.Errorf("%s: %v does not wrap ErrBadValue", c.vars, err)
		}
	}
}

func TestAgentSettings(t *testing.T) {
	inv := mustParse(t, "inv.yml", `
all:
  hosts:
    n1:
    n2:
      ansible_host: 10.0.0.2
    n3:
      ansible_host: 2001:db8::3
    n4:
      node_name: member-4
      agent_dir: /srv/agent4/
      cluster_address: 10.1.0.4:9443
      member_config:
        - {entity: storage-pool, name: local, key: source, value: /dev/sdb}
        - {entity: storage-pool, name: local, key: size, value: 10, description: in GiB}
    n5:
      cluster_address: 10.1.0.5
    n6:
      client_address: 192.0.2.6
`)
	cases := map[string]AgentSettings{
		"n1": {NodeName: "n1", Dir: DefaultAgentDir, ClusterAddress: "n1:8443", ClientAddress: "n1:8443"},
		"n2": {NodeName: "n2", Dir: DefaultAgentDir, ClusterAddress: "10.0.0.2:8443", ClientAddress: "10.0.0.2:8443"},
		"n3": {NodeName: "n3", Dir: DefaultAgentDir, ClusterAddress: "[2001:db8::3]:8443", ClientAddress: "[2001:db8::3]:8443"},
		"n4": {NodeName: "member-4", Dir: "/srv/agent4", ClusterAddress: "10.1.0.4:9443", ClientAddress: "10.1.0.4:9443", MemberConfig: []MemberConfig{
			{Entity: "storage-pool", Name: "local", Key: "source", Value: "/dev/sdb"},
			{Entity: "storage-pool", Name: "local", Key: "size", Value: "10", Description: "in GiB"},
		}},
		"n5": {NodeName: "n5", Dir: DefaultAgentDir, ClusterAddress: "10.1.0.5:8443", ClientAddress: "10.1.0.5:8443"},
		"n6": {NodeName: "n6", Dir: DefaultAgentDir, ClusterAddress: "n6:8443", ClientAddress: "192.0.2.6:8443"},
	}
	for name, want := range cases {
		got, err := inv.Host(name).Agent()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, want)
		}
	}
}

func TestAgentSettingsErrors(t *testing.T) {
	cases := []struct{ vars, want string }{
		{"node_name: 'a b'", `inv.yml:4:7: host "h": node_name: invalid value "a b": want a non-empty name without blanks, slashes or control characters`},
		{"agent_dir: relative/dir", `inv.yml:4:7: host "h": agent_dir: invalid value "relative/dir": want an absolute path`},
		{"agent_dir: //", `inv.yml:4:7: host "h": agent_dir: invalid value "//": want an absolute path other than /`},
		{"cluster_address: 'a:b:c'", `inv.yml:4:7: host "h": cluster_address: invalid value "a:b:c": want host:port`},
		{"cluster_address: 'h:0'", `inv.yml:4:7: host "h": cluster_address: invalid value "h:0": want host:port with a port in 1-65535`},
		{"client_address: 'a:b:c'", `inv.yml:4:7: host "h": client_address: invalid value "a:b:c": want host:port`},
		{"member_config: {entity: x}", `inv.yml:4:7: host "h": member_config: invalid value: want a list of {entity, name, key, value}, got a mapping`},
		{"member_config: [{entity: x, key: k, colour: red}]", `inv.yml:4:7: host "h": member_config: invalid value[0]: unknown field "colour" (want entity, name, key, value, description)`},
		{"member_config: [{entity: x}]", `inv.yml:4:7: host "h": member_config: invalid value[0]: key is required`},
		{"member_config: [{entity: x, key: k, value: [1]}]", `inv.yml:4:7: host "h": member_config: invalid value[0]: value: want a string, got a list`},
	}
	for _, c := range cases {
		inv := mustParse(t, "inv.yml", "all:\n  hosts:\n    h:\n      "+c.vars+"\n")
		_, err := inv.Host("h").Agent()
		if err == nil || err.Error() != c.want {
			t.Errorf("%s: error\n got %v\nwant %s", c.vars, err, c.want)
		}
	}
}

func TestAnsibleBool(t *testing.T) {
	for _, v := range []any{true, "yes", "Yes", "on", "1", "true", "TRUE", "t", "y", 1, 1.0, " yes "} {
		if b, ok := ansibleBool(v); !ok || !b {
			t.Errorf("ansibleBool(%#v) = %v, %v; want true", v, b, ok)
		}
	}
	for _, v := range []any{false, "no", "off", "0", "false", "f", "n", 0, 0.0} {
		if b, ok := ansibleBool(v); !ok || b {
			t.Errorf("ansibleBool(%#v) = %v, %v; want false", v, b, ok)
		}
	}
	for _, v := range []any{"maybe", 2, nil, []any{}} {
		if _, ok := ansibleBool(v); ok {
			t.Errorf("ansibleBool(%#v) accepted", v)
		}
	}
}
