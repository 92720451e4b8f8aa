package modules

import (
	"errors"
	"strings"
	"testing"

	"orch/nodeagent/api"
)

func whats(steps []step) string {
	var out []string
	for _, s := range steps {
		out = append(out, s.what)
	}
	return strings.Join(out, "; ")
}

// TestEntitySteps: a pool is defined on every member then created, only the missing
// definitions are made again, nothing is done when it exists as declared, a different
// global key is an error, absent deletes.
func TestEntitySteps(t *testing.T) {
	members := []string{"n1", "n2"}
	spec := entitySpec{common: common{name: "data", state: "present"}, typ: "btrfs",
		global: map[string]string{"volume.size": "1GiB"}, members: map[string]map[string]string{"n2": {"source": "/dev/sdb"}}}
	cases := []struct {
		cur  *entityState
		want string
	}{
		{nil, "define storage pool data on n1; define storage pool data on n2; create storage pool data"},
		{&entityState{status: api.StatusPending, locations: []string{"n1"}}, "define storage pool data on n2; create storage pool data"},
		{&entityState{status: api.StatusCreated, typ: "btrfs", config: map[string]string{"volume.size": "1GiB"}}, ""},
	}
	for _, c := range cases {
		steps, err := entitySteps(poolAPI, spec, c.cur, members)
		if err != nil || whats(steps) != c.want {
			t.Errorf("cur %+v: steps %q, %v; want %q", c.cur, whats(steps), err, c.want)
		}
	}
	_, err := entitySteps(poolAPI, spec, &entityState{status: api.StatusCreated, typ: "btrfs", config: map[string]string{"volume.size": "2GiB"}}, members)
	if !errors.Is(err, ErrDiffers) || !strings.Contains(err.Error(), "volume.size") {
		t.Errorf("differing key: %v", err)
	}
	spec.state = "absent"
	if steps, _ := entitySteps(poolAPI, spec, &entityState{status: api.StatusCreated}, members); whats(steps) != "delete storage pool data" {
		t.Errorf("absent: %q", whats(steps))
	}
	if steps, _ := entitySteps(poolAPI, spec, nil, members); len(steps) != 0 {
		t.Errorf("absent and gone: %q", whats(steps))
	}
}

func TestNetworkAutoAddressIsNotADifference(t *testing.T) {
	spec := entitySpec{common: common{name: "br0", state: "present"}, typ: "bridge", global: map[string]string{"ipv4.address": "auto"}}
	steps, err := entitySteps(networkAPI, spec, &entityState{status: api.StatusCreated, typ: "bridge", config: map[string]string{"ipv4.address": "10.1.2.1/24"}}, []string{"n1"})
	if err != nil || len(steps) != 0 {
		t.Fatalf("steps %q, %v", whats(steps), err)
	}
}

func TestVolumeSteps(t *testing.T) {
	s := volumeSpec{common: common{name: "v1", state: "present"}, pool: "data", target: "n2"}
	if got := whats(volumeSteps(s, false)); got != "create volume data/v1 on n2" {
		t.Errorf("create: %q", got)
	}
	if got := whats(volumeSteps(s, true)); got != "" {
		t.Errorf("exists: %q", got)
	}
	s.state = "absent"
	if got := whats(volumeSteps(s, true)); got != "delete volume data/v1 on n2" {
		t.Errorf("absent: %q", got)
	}
}
