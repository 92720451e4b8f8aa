package api

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestInstancesPostForms: orch's string source starts the instance; LXD's source object
// (as `lxc launch` and pylxd send it) creates it stopped unless "start"; what cannot be
// done here is refused naming the field; a copy names its source instance.
func TestInstancesPostForms(t *testing.T) {
	for _, c := range []struct {
		body, want string
		noStart    bool
	}{
		{`{"name":"c1","source":"busybox"}`, "busybox", false},
		{`{"name":"c1","source":{"type":"image","alias":"busybox"},"devices":{},"ephemeral":false,"type":"container","profiles":null,"config":{},"instance_type":""}`, "busybox", true},
		{`{"name":"c1","source":{"type":"image","fingerprint":"abc123"},"start":true}`, "abc123", false},
		{`{"name":"c1","source":{"type":"copy","source":"c0","instance_only":true,"base-image":"f00","live":false}}`, "", true},
	} {
		var p InstancesPost
		if err := json.Unmarshal([]byte(c.body), &p); err != nil || p.Source != c.want || p.NoStart != c.noStart || p.Name != "c1" {
			t.Fatalf("%s: %+v %v", c.body, p, err)
		}
	}
	var cp InstancesPost
	if err := json.Unmarshal([]byte(`{"name":"c1","source":{"type":"copy","source":"c0"},"devices":{"d":{"type":"disk"}}}`), &cp); err != nil || cp.CopyFrom != "c0" || cp.Devices["d"]["type"] != "disk" {
		t.Fatalf("a copy with devices: %+v %v", cp, err)
	}
	for body, want := range map[string]string{
		`{"name":"c1","source":{"type":"migration"}}`:                                  "only \"image\" and \"copy\"",
		`{"name":"c1","source":{"type":"copy"}}`:                                       "no instance to copy",
		`{"name":"c1","source":{"type":"copy","source":"c0","refresh":true}}`:          "refresh",
		`{"name":"c1","source":{"type":"image","alias":"x","server":"https://img"}}`:   "image servers",
		`{"name":"c1","source":"busybox","bogus":1}`:                                   "unknown field",
		`{"name":"c1","source":{"type":"image","alias":"x"},"type":"virtual-machine"}`: "only containers",
	} {
		var p InstancesPost
		if err := json.Unmarshal([]byte(body), &p); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %v, want an error with %q", body, err, want)
		}
	}
}
