package modules

import (
	"strings"
	"testing"

	"orch/nodeagent/api"
)

// TestInstanceSteps checks the instance module is idempotent: it acts only on a difference.
func TestInstanceSteps(t *testing.T) {
	run := &api.Instance{Status: api.InstanceRunning}
	stop := &api.Instance{Status: api.InstanceStopped}
	spec := func(state string) instanceSpec { return instanceSpec{name: "c1", image: "busybox", state: state} }
	cases := []struct {
		spec   instanceSpec
		exists bool
		cur    *api.Instance
		want   string
	}{
		{spec("running"), false, nil, "launch c1 from busybox"},
		{spec("running"), true, run, ""},
		{spec("running"), true, stop, "start c1"},
		{spec("stopped"), true, run, "stop c1"},
		{spec("stopped"), true, stop, ""},
		{spec("present"), true, stop, ""},
		{spec("absent"), true, run, "delete c1"},
		{spec("absent"), false, nil, ""},
	}
	for _, c := range cases {
		var got []string
		for _, s := range instanceSteps(c.spec, c.exists, c.cur) {
			got = append(got, s.what)
		}
		if strings.Join(got, ";") != c.want {
			t.Errorf("%s exists=%v %+v: steps %v, want %q", c.spec.state, c.exists, c.cur, got, c.want)
		}
	}
}
