package agentctl

import (
	"path"

	"orch/internal/shell"
)

// LendCommand is the command that lends the agent binary at remote to other hosts (the
// agent's own `serve-file`), for transport.RelayOptions.Lend: a host that has received the
// agent passes it on over the hosts' network. Other files are not lent.
func LendCommand(remote string) (string, bool) {
	if path.Base(remote) != "nodeagent" || path.Base(path.Dir(remote)) != "bin" {
		return "", false
	}
	return shell.Join(remote, "serve-file", "--file", remote), true
}
