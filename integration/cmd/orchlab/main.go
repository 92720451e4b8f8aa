// Command orchlab brings test hosts up and down outside of `go test`: `make demo` uses it
// for a lab that outlives the command, `make lab-down` removes it (and any lab a crashed
// test run left behind). Every command is a thin layer over package orch/integration/lab.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "orchlab:", err)
		os.Exit(1)
	}
}
