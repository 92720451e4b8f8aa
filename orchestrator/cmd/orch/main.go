// Command orch drives orch clusters from an inventory over SSH.
package main

func main() {}
