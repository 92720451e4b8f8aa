// Command nodeagent is the per-node agent of an orch cluster: the daemon and its local CLI.
package main

import (
	"os"

	"orch/nodeagent/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
