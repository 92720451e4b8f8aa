// Command nodeagent is the per-node agent of an orch cluster: the daemon and its local CLI.
package main

func main() {}
