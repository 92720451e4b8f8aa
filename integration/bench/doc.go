// Package bench is `make bench`: orch measured side by side with the tools users would
// otherwise pick — parallel OpenSSH scp (the floor for pushing the agent), Ansible
// (ansible-core, for forming and for playbook overhead) and LXD's own clustering — in one
// run on one machine. Every figure is the median of several runs with min and max; peers
// are measured in the same run and ratios printed; each target from the issues is shown as
// PASS or MISS. The runner is BenchmarkSideBySide; it prints a Markdown table and writes
// results.json next to this file. BenchmarkScale is `make bench-scale`: the 200-member
// cluster and raft over a 100 ms RTT link, too long for `make bench`; results-scale.json.
//
// Environment knobs for development (defaults are what `make bench` runs):
//
//	ORCH_BENCH_RUNS   runs per figure (default 3; Ansible on 30 hosts runs once; the members
//	                  section kills the leader's host this many times)
//	ORCH_BENCH_HOSTS  hosts of the large forming run (default 30)
//	ORCH_BENCH_ONLY   comma-separated sections: forming,cluster,upgrade,writes,api,playbook,facts,resources,realhosts,slowlink
//	                  (make bench-scale: members,wan)
//	ORCH_BENCH_MEMBERS members of make bench-scale's large cluster (default 200)
//	ORCH_BENCH_PROFILE a directory: pprof CPU and allocation profiles of the leader and a spare
//	                  of the large cluster over its idle window (core.debug_address), a 3 s CPU
//	                  profile of every database member over each failover, and each failover's
//	                  attempts with their times (failover[-N]-tries.txt); in the api section,
//	                  CPU profiles of the three daemons under each row's load
//	                  (api-<row>-<member>.pprof, taken after the row's measured runs)
//	ORCH_BENCH_API_WRITES_ONLY set: the api section runs its PATCH rows only (a few seconds:
//	                  alternating two agents' builds while exploring)
//	ORCH_BENCH_IDLE   CPU measurement window (default 45s)
//	ORCH_BENCH_WAN_IDLE idle window of the WAN rows (default 10m)
//	ORCH_BENCH_HOLD   a file: the large cluster is kept, once formed, while it exists (development)
package bench
