package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"orch/nodeagent/api/verbs"
)

// TestHelpHasNoSideEffects: `--help` and `-h` on every command (and on none) print that
// command's help and exit 0 promptly, touching no host, asking nothing and creating nothing
// in orch's state directory or $HOME: before, `orch up --help` ran a converge and `orch
// recover --help` asked whether to remove the lost members.
func TestHelpHasNoSideEffects(t *testing.T) {
	parser, err := kong.New(&CLI{})
	if err != nil {
		t.Fatal(err)
	}
	if err := verbs.CheckNoDigitShortFlags(parser.Model); err != nil {
		t.Fatal(err)
	}
	paths := append([][]string{nil}, verbs.CommandPaths(parser.Model)...)
	if len(paths) < 40 {
		t.Fatalf("only %d commands found in the tree", len(paths))
	}
	for _, path := range paths {
		for _, flag := range []string{"--help", "-h"} {
			home := t.TempDir()
			t.Setenv("HOME", home)
			inv := filepath.Join(t.TempDir(), "inventory.ini")
			if err := os.WriteFile(inv, []byte("host1 ansible_host=127.0.0.1 node_name=n1\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			args := append(append([]string{"-i", inv, "--state-dir", filepath.Join(home, "state")}, path...), flag)
			code, out, errb := runWithin(t, 10*time.Second, args)
			want := strings.TrimSpace("Usage: orch " + strings.Join(path, " "))
			if code != 0 || !strings.HasPrefix(out, want) || errb != "" {
				t.Errorf("orch %s: exit %d, stdout %.80q, stderr %q; want 0 and %q", strings.Join(args[4:], " "), code, out, errb, want)
			}
			if ents, _ := os.ReadDir(home); len(ents) != 0 {
				t.Errorf("orch %s created %v in $HOME", strings.Join(args[4:], " "), ents)
			}
		}
	}
}

// TestBareCommandPrintsUsage: plain `orch` and a bare group print their usage and exit 0.
func TestBareCommandPrintsUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"cluster"}, {"storage", "volume"}} {
		code, out, errb := runWithin(t, 10*time.Second, args)
		if code != 0 || !strings.HasPrefix(out, "Usage: orch") || errb != "" {
			t.Errorf("orch %v: exit %d, %.60q, %q", args, code, out, errb)
		}
	}
}

// runWithin runs orch with empty stdin and fails the test if it does not return within d.
func runWithin(t *testing.T, d time.Duration, args []string) (int, string, string) {
	t.Helper()
	type result struct {
		code     int
		out, err string
	}
	done := make(chan result, 1)
	go func() {
		var out, errb bytes.Buffer
		code := Main(args, strings.NewReader(""), &out, &errb)
		done <- result{code, out.String(), errb.String()}
	}()
	select {
	case r := <-done:
		return r.code, r.out, r.err
	case <-time.After(d):
		t.Fatalf("orch %v did not return within %s", args, d)
		return 0, "", ""
	}
}

// TestCompletion: `orch completion SHELL` prints the script, and the completion request
// the scripts make ($COMP_LINE) is answered with the subcommands that fit.
func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{"bash": "complete -C ", "zsh": "bashcompinit", "fish": "complete -f -c orch"} {
		code, out, errb := runWithin(t, 10*time.Second, []string{"completion", shell})
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("completion %s: exit %d, %q, %q", shell, code, out, errb)
		}
	}
	for line, want := range map[string][]string{
		"orch u":                 {"up", "upgrade"},
		"orch storage volume ":   {"create", "delete", "list", "show"},
		"orch inventory ":        {"graph", "host", "list"},
		"orch cluster list --fo": {"--format"},
	} {
		t.Setenv("COMP_LINE", line)
		code, out, errb := runWithin(t, 10*time.Second, nil)
		got := strings.Fields(out)
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("COMP_LINE=%q: exit %d, candidates %q (stderr %q), want %q among them", line, code, got, errb, w)
			}
		}
	}
}
