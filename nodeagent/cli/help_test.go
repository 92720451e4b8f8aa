package cli

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"orch/nodeagent/api/verbs"
)

// TestHelpHasNoSideEffects: `--help` and `-h` on every command (and on none) print that
// command's help and exit 0 promptly, creating nothing in the agent directory and reading
// nothing: before, `daemon --help` started a daemon there, `init --help` asked the
// questions and `waitready --help` never returned.
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
			dir := t.TempDir()
			args := append(append([]string{"--dir", dir}, path...), flag)
			code, out, errb := runWithin(t, 10*time.Second, args)
			want := strings.TrimSpace("Usage: nodeagent " + strings.Join(path, " "))
			if code != 0 || !strings.HasPrefix(out, want) || errb != "" {
				t.Errorf("nodeagent %s: exit %d, stdout %.80q, stderr %q; want 0 and %q", strings.Join(args[2:], " "), code, out, errb, want)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("nodeagent %s created %v in the agent directory", strings.Join(args[2:], " "), ents)
			}
		}
	}
}

// TestBareCommandPrintsUsage: plain `nodeagent` and a bare group print their usage on
// stdout and exit 0, as plain `lxc` and `lxc cluster` do; a wrong word exits 2.
func TestBareCommandPrintsUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"cluster"}, {"storage", "volume"}} {
		code, out, errb := runWithin(t, 10*time.Second, append([]string{"--dir", t.TempDir()}, args...))
		if code != 0 || !strings.HasPrefix(out, "Usage: nodeagent") || errb != "" {
			t.Errorf("nodeagent %v: exit %d, %.60q, %q", args, code, out, errb)
		}
	}
	code, _, errb := runWithin(t, 10*time.Second, []string{"--dir", t.TempDir(), "bogus"})
	if code != 2 || !strings.Contains(errb, "bogus") {
		t.Errorf("nodeagent bogus: exit %d, %q", code, errb)
	}
}

// runWithin runs the CLI with empty stdin and fails the test if it does not return within d.
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
		t.Fatalf("nodeagent %v did not return within %s", args, d)
		return 0, "", ""
	}
}

// TestCompletion: `completion SHELL` prints a script that hooks this binary into bash, zsh
// or fish, and the completion request those scripts make ($COMP_LINE) is answered with the
// subcommands and flags that fit, nothing being run.
func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{"bash": "complete -C ", "zsh": "bashcompinit", "fish": "complete -f -c nodeagent"} {
		code, out, errb := runWithin(t, 10*time.Second, []string{"completion", shell})
		if code != 0 || !strings.Contains(out, want) || !strings.Contains(out, "nodeagent") {
			t.Errorf("completion %s: exit %d, %q, %q", shell, code, out, errb)
		}
	}
	dir := t.TempDir()
	for line, want := range map[string][]string{
		"nodeagent clu":                      {"cluster"},
		"nodeagent cluster list-":            {"list-tokens", "list-database"},
		"nodeagent storage volume ":          {"create", "delete", "list", "show"},
		"nodeagent config set --":            {"--dir", "--help"},
		"nodeagent --dir " + dir + " daemon": {"daemon"},
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
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("completing `daemon` created %v", ents)
	}
}
