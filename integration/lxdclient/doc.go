// Package lxdclient drives an orch cluster with LXD's own clients, unchanged: the `lxc`
// command-line client (Debian's lxd-client package, 5.0) and pylxd (python3-pylxd). The LXD
// daemon is never needed, only its clients.
//
// What it offers the tests (and other packages' tests that want a real LXD client):
//
//   - StartCluster: a 3-member cluster of real nodeagent daemons formed with agenttest
//     (bootstrap with the trust password agenttest.TrustPassword, joins with tokens).
//   - NewLXC: an `lxc` client of its own per test (LXD_CONF and HOME in a temporary
//     directory), so tests never share remotes, certificates or defaults.
//   - LXC.Run / MustRun / RunInput: run `lxc` with a deadline and get stdout, stderr and
//     the exit code; MustRun fails the test with the command and stderr.
//   - LXC.AddRemoteTrusted: trust the client's certificate by hand (the agent's `trust add`
//     over its socket) and `lxc remote add NAME https://ADDR --accept-certificate`;
//     LXC.AddRemotePassword: `lxc remote add … --password` (POST /1.0/certificates).
//   - Python: run a pylxd script (system python3, where python3-pylxd is installed) with the
//     client's certificate and the remote's address in its environment.
//
// Tests skip with a message saying what to install when `lxc` or pylxd is missing
// (scripts/install-deps.sh installs both).
package lxdclient
