// Package verbstest holds the checks that both binaries' command lines must pass (every
// command's --help, completion), for their tests.
package verbstest

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"orch/nodeagent/api/verbs"
)

// Main is a binary's Main: arguments, stdin, stdout, stderr; it returns the exit code.
type Main func(args []string, stdin *strings.Reader, stdout, stderr *bytes.Buffer) int

// Result is what one run printed and returned.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Run runs main with args and an empty stdin, and fails the test unless it returns within d.
func Run(t *testing.T, d time.Duration, main Main, args []string) Result {
	t.Helper()
	done := make(chan Result, 1)
	go func() {
		var out, errb bytes.Buffer
		code := main(args, strings.NewReader(""), &out, &errb)
		done <- Result{code, out.String(), errb.String()}
	}()
	select {
	case r := <-done:
		return r
	case <-time.After(d):
		t.Fatalf("%v did not return within %s", args, d)
		return Result{}
	}
}

// Help checks that `--help` and `-h` on every command of cli (and on none) print that
// command's usage and exit 0 within 10s, with nothing on stderr and no digit short flag in
// the tree. setup returns the global arguments of one run (pointing the binary at fresh
// directories) and a check that nothing was created there.
func Help(t *testing.T, name string, cli any, main Main, setup func(t *testing.T) (global []string, untouched func() error)) {
	parser, err := kong.New(cli)
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
			global, untouched := setup(t)
			words := append(append([]string{}, path...), flag)
			r := Run(t, 10*time.Second, main, append(global, words...))
			want := strings.TrimSpace("Usage: " + name + " " + strings.Join(path, " "))
			if r.Code != 0 || !strings.HasPrefix(r.Stdout, want) || r.Stderr != "" {
				t.Errorf("%s %s: exit %d, stdout %.80q, stderr %q; want 0 and %q", name, strings.Join(words, " "), r.Code, r.Stdout, r.Stderr, want)
			}
			if err := untouched(); err != nil {
				t.Errorf("%s %s: %v", name, strings.Join(words, " "), err)
			}
		}
	}
}

// Completion checks `completion SHELL` for bash, zsh and fish, then that each line of
// lines (as $COMP_LINE) is answered with at least its candidates.
func Completion(t *testing.T, name string, main Main, lines map[string][]string) {
	for shell, want := range map[string]string{"bash": "complete -C ", "zsh": "bashcompinit", "fish": "complete -f -c " + name} {
		r := Run(t, 10*time.Second, main, []string{"completion", shell})
		if r.Code != 0 || !strings.Contains(r.Stdout, want) || !strings.Contains(r.Stdout, name) {
			t.Errorf("%s completion %s: exit %d, %q, %q", name, shell, r.Code, r.Stdout, r.Stderr)
		}
	}
	for line, want := range lines {
		t.Setenv("COMP_LINE", line)
		r := Run(t, 10*time.Second, main, nil)
		got := strings.Fields(r.Stdout)
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("COMP_LINE=%q: exit %d, candidates %q (stderr %q), want %q among them", line, r.Code, got, r.Stderr, w)
			}
		}
	}
}
