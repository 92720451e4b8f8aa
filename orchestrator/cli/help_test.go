package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
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
// command's help and exit 0 promptly, touching no host, asking nothing and creating nothing
// in orch's state directory or $HOME: before, `orch up --help` ran a converge and `orch
// recover --help` asked whether to remove the lost members.
func TestHelpHasNoSideEffects(t *testing.T) {
	verbstest.Help(t, "orch", &CLI{}, runMain, func(t *testing.T) ([]string, func() error) {
		home := t.TempDir()
		t.Setenv("HOME", home)
		inv := filepath.Join(t.TempDir(), "inventory.ini")
		if err := os.WriteFile(inv, []byte("host1 ansible_host=127.0.0.1 node_name=n1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return []string{"-i", inv, "--state-dir", filepath.Join(home, "state")}, func() error {
			if ents, _ := os.ReadDir(home); len(ents) != 0 {
				return fmt.Errorf("created %v in $HOME", ents)
			}
			return nil
		}
	})
}

// TestBareCommandPrintsUsage: plain `orch` and a bare group print their usage and exit 0.
func TestBareCommandPrintsUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"cluster"}, {"storage", "volume"}} {
		r := verbstest.Run(t, 10*time.Second, runMain, args)
		if r.Code != 0 || !strings.HasPrefix(r.Stdout, "Usage: orch") || r.Stderr != "" {
			t.Errorf("orch %v: exit %d, %.60q, %q", args, r.Code, r.Stdout, r.Stderr)
		}
	}
}

// TestCompletion: `orch completion SHELL` prints the script, and the completion request
// the scripts make ($COMP_LINE) is answered with the subcommands that fit.
func TestCompletion(t *testing.T) {
	verbstest.Completion(t, "orch", runMain, map[string][]string{
		"orch u":                 {"up", "upgrade"},
		"orch storage volume ":   {"create", "delete", "list", "show"},
		"orch inventory ":        {"graph", "host", "list"},
		"orch cluster list --fo": {"--format"},
	})
}
