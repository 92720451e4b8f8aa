// Command orch drives orch clusters from an inventory over SSH.
package main

import (
	"os"

	"orch/orchestrator/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
