package api

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestInstancesPostForms: orch's string source starts the instance; LXD's source object
// (as `lxc launch` and pylxd send it) creates it stopped unless "start"; what cannot be
// done here is refused naming the field.
func TestInstancesPostForms(t *testing.T) {
	for _, c := range []struct {
		body, want string
		noStart    bool
	}{
		{`{"name":"c1","source":"busybox"}`, "busybox", false},
		{`{"name":"c1","source":{"type":"image","alias":"busybox"},"devices":{},"ephemeral":false,"type":"container","profiles":null,"config":{},"instance_type":""}`, "busybox", true},
		{`{"name":"c1","source":{"type":"image","fingerprint":"abc123"},"start":true}`, "abc123", false},
	} {
		var p InstancesPost
		if err := json.Unmarshal([]byte(c.body), &p); err != nil || p.Source != c.want || p.NoStart != c.noStart || p.Name != "c1" {
			t.Fatalf("%s: %+v %v", c.body, p, err)
		}
	}
	for body, want := range map[string]string{
		`{"name":"c1","source":{"type":"copy"}}`:                                       "only \"image\"",
		`{"name":"c1","source":{"type":"image","alias":"x","server":"https://img"}}`:   "image servers",
		`{"name":"c1","source":{"type":"image","alias":"x"},"devices":{"eth1":{}}}`:    "devices",
		`{"name":"c1","source":"busybox","bogus":1}`:                                   "unknown field",
		`{"name":"c1","source":{"type":"image","alias":"x"},"type":"virtual-machine"}`: "only containers",
	} {
		var p InstancesPost
		if err := json.Unmarshal([]byte(body), &p); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %v, want an error with %q", body, err, want)
		}
	}
}
