// Package bench is `make bench`: orch measured side by side with the tools users would
// otherwise pick — parallel OpenSSH scp (the floor for pushing the agent), Ansible
// (ansible-core, for forming and for playbook overhead) and LXD's own clustering — in one
// run on one machine. Every figure is the median of several runs with min and max; peers
// are measured in the same run and ratios printed; each target from the issues is shown as
// PASS or MISS. The runner is BenchmarkSideBySide; it prints a Markdown table and writes
// results.json next to this file.
//
// Environment knobs for development (defaults are what `make bench` runs):
//
//	ORCH_BENCH_RUNS   runs per figure (default 3; Ansible on 30 hosts runs once)
//	ORCH_BENCH_HOSTS  hosts of the large forming run (default 30)
//	ORCH_BENCH_ONLY   comma-separated sections: forming,cluster,upgrade,writes,api,playbook,facts,resources,realhosts,slowlink
//	ORCH_BENCH_IDLE   CPU measurement window (default 25s)
package bench
