package modules

import "testing"

// TestDowngradeSummary: the refusal names every host, grouped by the version it runs, the
// offered agent and both ways on; it is empty without refusals.
func TestDowngradeSummary(t *testing.T) {
	if s := DowngradeSummary(nil, "up"); s != "" {
		t.Errorf("no refusal: %q", s)
	}
	ds := []Downgrade{
		{Host: "host1", Member: "host1", Running: "0.9.0 (schema 1, api 2)", Offered: "0.1.0 (schema 1, api 1)", Src: "./nodeagent"},
		{Host: "host2", Member: "node2", Running: "0.9.0 (schema 1, api 2)", Offered: "0.1.0 (schema 1, api 1)", Src: "./nodeagent"},
		{Host: "host3", Member: "host3", Running: "0.8.0 (schema 1, api 2)", Offered: "0.1.0 (schema 1, api 1)", Src: "./nodeagent"},
	}
	want := "Refused to downgrade, nothing was changed: host1, host2 (member node2) run agent 0.9.0 (schema 1, api 2); " +
		"host3 runs agent 0.8.0 (schema 1, api 2), newer than the offered ./nodeagent 0.1.0 (schema 1, api 1). " +
		"To keep the cluster's version, run `orch up --agent PATH` with the agent the cluster runs (the one `orch upgrade` installed); " +
		"to downgrade on purpose (only if the schemas match), run `orch upgrade --agent ./nodeagent --force`."
	if got := DowngradeSummary(ds, "up"); got != want {
		t.Errorf("DowngradeSummary:\n got %s\nwant %s", got, want)
	}
}

// TestPlanSummary: members in upgrade order with their versions; those done are listed apart.
func TestPlanSummary(t *testing.T) {
	plan := []UpgradeStep{
		{Host: "host1", Member: "host1", From: "0.9.0", To: "0.9.0", Done: true},
		{Host: "host2", Member: "node2", From: "0.1.0", To: "0.9.0"},
		{Member: "stray", From: "0.1.0", To: "0.9.0"},
	}
	want := "in this order: 1. host2 (member node2): 0.1.0 -> 0.9.0; 2. member stray: 0.1.0 -> 0.9.0; already on the new version: host1"
	if got := PlanSummary(plan); got != want {
		t.Errorf("PlanSummary:\n got %s\nwant %s", got, want)
	}
}
