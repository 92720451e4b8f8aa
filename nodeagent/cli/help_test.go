package cli

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"orch/nodeagent/api/verbs/verbstest"
)

// runMain is Main for verbstest.
func runMain(args []string, stdin *strings.Reader, stdout, stderr *bytes.Buffer) int {
	return Main(args, stdin, stdout, stderr)
}

// TestHelpHasNoSideEffects: `--help` and `-h` on every command (and on none) print that
// command's help and exit 0 promptly, creating nothing in the agent directory and reading
// nothing: before, `daemon --help` started a daemon there, `init --help` asked the
// questions and `waitready --help` never returned.
func TestHelpHasNoSideEffects(t *testing.T) {
	verbstest.Help(t, "nodeagent", &CLI{}, runMain, func(t *testing.T) ([]string, func() error) {
		dir := t.TempDir()
		return []string{"--dir", dir}, func() error {
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				return fmt.Errorf("created %v in the agent directory", ents)
			}
			return nil
		}
	})
}

// TestBareCommandPrintsUsage: plain `nodeagent` and a bare group print their usage on
// stdout and exit 0, as plain `lxc` and `lxc cluster` do; a wrong word exits 2.
func TestBareCommandPrintsUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"cluster"}, {"storage", "volume"}} {
		r := verbstest.Run(t, 10*time.Second, runMain, append([]string{"--dir", t.TempDir()}, args...))
		if r.Code != 0 || !strings.HasPrefix(r.Stdout, "Usage: nodeagent") || r.Stderr != "" {
			t.Errorf("nodeagent %v: exit %d, %.60q, %q", args, r.Code, r.Stdout, r.Stderr)
		}
	}
	r := verbstest.Run(t, 10*time.Second, runMain, []string{"--dir", t.TempDir(), "bogus"})
	if r.Code != 2 || !strings.Contains(r.Stderr, "bogus") {
		t.Errorf("nodeagent bogus: exit %d, %q", r.Code, r.Stderr)
	}
}

// TestCompletion: `completion SHELL` prints a script that hooks this binary into bash, zsh
// or fish, and the completion request those scripts make ($COMP_LINE) is answered with the
// subcommands and flags that fit, nothing being run.
func TestCompletion(t *testing.T) {
	dir := t.TempDir()
	verbstest.Completion(t, "nodeagent", runMain, map[string][]string{
		"nodeagent clu":                      {"cluster"},
		"nodeagent cluster list-":            {"list-tokens", "list-database"},
		"nodeagent storage volume ":          {"create", "delete", "list", "show"},
		"nodeagent config set --":            {"--dir", "--help"},
		"nodeagent --dir " + dir + " daemon": {"daemon"},
	})
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("completing `daemon` created %v", ents)
	}
}
