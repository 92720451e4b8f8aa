package playbooks

import (
	"testing"

	"orch/playbooks/builtin"
)

func TestBuiltinPlaybooksParse(t *testing.T) {
	names := builtin.Names()
	if len(names) == 0 {
		t.Fatal("no built-in playbooks embedded")
	}
	for _, name := range names {
		data, err := builtin.Read(name)
		if err != nil {
			t.Fatal(err)
		}
		// Modules of orch (agent_install, …) are registered by orch; only the syntax is checked here.
		if _, err := Parse("builtin/"+name+".yml", data); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestBuiltinPingRuns(t *testing.T) {
	data, err := builtin.Read("ping")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, "h1", "h2")
	recap := h.run(string(data), func(o *Options) { o.ExtraVars = map[string]any{"target": "h2"} })
	h.stats(recap, "h2", Stats{Ok: 3})
	if recap.Hosts["h1"] != nil {
		t.Error("target=h2 also ran on h1")
	}
}
