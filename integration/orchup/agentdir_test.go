package orchup

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"orch/nodeagent/api"
)

// TestAgentSettingsTravel: a host's agent settings go from the inventory to the running
// agent and to `orch node` as written: host1 has its own agent directory and member name,
// host2 the defaults. The agent lives only in host1's directory, the cluster knows host1 by
// its member name, `orch node` reaches the agent there and passes its exit code through,
// and a second `orch up` finds everything converged.
func TestAgentSettingsTravel(t *testing.T) {
	e := newEnv(t, 2)
	const dir = "/var/lib/nodeagent/custom-1" // inside the host's private /var/lib/nodeagent
	e.vars["host1"]["agent_dir"], e.vars["host1"]["node_name"] = dir, "member-1"
	h1 := e.lab.Host("host1")
	if log, ok := h1.Path(dir + "/logs/nodeagent.log"); ok {
		e.lab.LogFile(log)
	}
	e.mustUp()

	var names []string
	for _, m := range e.members() {
		names = append(names, m.ServerName)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"host2", "member-1"}) {
		t.Errorf("members %v, want host2 and member-1", names)
	}
	for p, want := range map[string]bool{dir + "/bin/nodeagent": true, dir + "/cluster.crt": true, "/var/lib/nodeagent/bin/nodeagent": false} {
		hp, ok := h1.Path(p)
		if !ok {
			t.Fatalf("%s is not in host1's private filesystem", p)
		}
		if _, err := os.Stat(hp); (err == nil) != want {
			t.Errorf("host1 %s: exists=%v, want %v", p, err == nil, want)
		}
	}

	r := e.orch("node", "host1", "--", "info", "--format", "json")
	var env api.Environment
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &env) != nil || env.ServerName != "member-1" {
		t.Errorf("orch node host1 -- info: exit %d, server %q\nstdout:\n%s\nstderr:\n%s", r.code, env.ServerName, r.stdout, r.stderr)
	}
	if r := e.orch("node", "host1", "--", "cluster", "show", "no-such-member"); r.code == 0 {
		t.Errorf("orch node passed a failed agent command as exit 0:\n%s%s", r.stdout, r.stderr)
	}

	if r := e.mustUp(); !strings.Contains(r.stdout, "Converged: nothing changed.") {
		t.Errorf("second orch up changed something:\n%s", r.stdout)
	}
}
