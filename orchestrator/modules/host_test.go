package modules

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"orch/inventory"
	"orch/nodeagent/api"
	"orch/orchestrator/transport"
	"orch/playbooks"
)

// TestPreseedFromAgentSettings: the member's part of the preseed comes from the typed
// agent settings, member_config included, without going back through host variables.
func TestPreseedFromAgentSettings(t *testing.T) {
	a := inventory.AgentSettings{NodeName: "m1", Dir: "/srv/a", ClusterAddress: "10.0.0.1:8443", ClientAddress: "10.0.0.1:9443",
		MemberConfig: []inventory.MemberConfig{{Entity: "storage-pool", Name: "local", Key: "source", Value: "/dev/sdb", Description: "d"}}}
	vars := map[string]any{"config": map[string]any{"images.auto_update_interval": 6}}
	p, err := Deps{}.preseedFor(a, vars, true)
	if err != nil {
		t.Fatal(err)
	}
	want := &api.ClusterPut{Enabled: true, ServerName: "m1", ServerAddress: "10.0.0.1:8443",
		MemberConfig: []api.MemberConfigKey{{Entity: "storage-pool", Name: "local", Key: "source", Value: "/dev/sdb", Description: "d"}}}
	if !reflect.DeepEqual(p.Cluster, want) {
		t.Errorf("cluster part\n got %+v\nwant %+v", p.Cluster, want)
	}
	if p.Config["core.https_address"] != "10.0.0.1:9443" || p.Config["cluster.https_address"] != "10.0.0.1:8443" ||
		p.Config["images.auto_update_interval"] != "6" {
		t.Errorf("config %v", p.Config)
	}
	join, err := Deps{}.preseedFor(a, nil, false)
	if err != nil || len(join.Config) != 0 || join.Cluster.ServerName != "m1" {
		t.Errorf("join preseed %+v, %v", join, err)
	}
}

// failingSSH is an SSHDialer that cannot connect.
type failingSSH struct{ err error }

func (f failingSSH) SSH(ctx context.Context, host string) (*transport.Conn, error) { return nil, f.err }

// TestSSHFailureIsUnreachable: a module that cannot reach its host marks it UNREACHABLE,
// as the engine's own connections do, naming the host; without connections it says so.
func TestSSHFailureIsUnreachable(t *testing.T) {
	d := Deps{SSH: failingSSH{errors.New("dial tcp: connection refused")}}
	_, err := d.ssh(t.Context(), "node1")
	if !errors.Is(err, playbooks.ErrUnreachable) || !strings.HasPrefix(err.Error(), "node1: ") {
		t.Errorf("got %v, want node1: ... wrapping ErrUnreachable", err)
	}
	if _, err := (Deps{}).ssh(t.Context(), "node1"); !errors.Is(err, ErrNoSSH) {
		t.Errorf("without Deps.SSH: %v", err)
	}
	if _, err := (Deps{}).agent("nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown host: %v", err)
	}
}
