package cli

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"

	"orch/nodeagent/api/verbs"
)

// TestAgentCommandsAnswerAsTheWholeTree: the commands Main parses with the small tree
// (AgentCommands) print the same help and the same command-line errors as through the
// whole tree, and only they (after --dir) take it.
func TestAgentCommandsAnswerAsTheWholeTree(t *testing.T) {
	var names []string
	for n := range agentCommandNames() {
		names = append(names, n)
	}
	slices.Sort(names)
	if want := []string{"daemon", "info", "init", "query", "serve-file", "version", "waitready"}; !slices.Equal(names, want) {
		t.Fatalf("agent commands %v, want %v", names, want)
	}
	dir := t.TempDir()
	for _, n := range names {
		for _, args := range [][]string{{n, "--help"}, {"--dir", dir, n, "-h"}, {"--dir=" + dir, n, "--bogus"}, {n, "extra", "words"}} {
			if !agentCommand(args) {
				t.Errorf("%v: not taken as an agent command", args)
			}
			full, small := runTree(&CLI{}, args), runTree(&agentCLI{}, args)
			if full != small {
				t.Errorf("%v: whole tree answered %+v, the agent commands' tree %+v", args, full, small)
			}
		}
	}
	for _, args := range [][]string{{}, {"cluster", "list"}, {"--dir", "daemon"}, {"-h", "daemon"}, {"config", "show"}} {
		if agentCommand(args) {
			t.Errorf("%v: taken as an agent command", args)
		}
	}
}

// answer is what one parse printed and returned.
type answer struct {
	code        int
	out, errOut string
}

func runTree(root any, args []string) answer {
	var out, errb bytes.Buffer
	g := Globals{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}
	var code int
	switch r := root.(type) {
	case *CLI:
		r.Globals = g
		code = run(r, &r.Globals, args)
	case *agentCLI:
		r.Globals = g
		code = run(r, &r.Globals, args)
	}
	return answer{code, out.String(), errb.String()}
}

// BenchmarkParser is building the parser of the whole tree and of the agent commands'
// (what every nodeagent process pays before it runs its command).
func BenchmarkParser(b *testing.B) {
	for _, c := range []struct {
		name string
		root func() any
	}{{"whole", func() any { return &CLI{} }}, {"agent", func() any { return &agentCLI{} }}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := kong.New(c.root(), verbs.Options(io.Discard, io.Discard)...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
