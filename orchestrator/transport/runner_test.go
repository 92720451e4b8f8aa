package transport

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"orch/orchestrator/transport/sshdtest"
)

// The runner is reused: two commands have the same parent shell, and the sshd log shows one
// session for many commands.
func TestRunnerReusesOneShell(t *testing.T) {
	h := startHost(t, sshdtest.Options{})
	c := dial(t, h.cfg)
	ppid := func() string { return string(run(t, c, "echo $PPID", RunOptions{}).Stdout) }
	first := ppid()
	for range 20 {
		if got := ppid(); got != first {
			t.Fatalf("parent shell changed from %q to %q: commands do not share the runner", first, got)
		}
	}
	if n := strings.Count(h.srv.Log(), "Starting session"); n > 2 {
		t.Fatalf("21 commands opened %d sessions, want the runner's one", n)
	}
}

// Output framing survives what a command may print: the record separator, no trailing
// newline, binary bytes and a megabyte of output.
func TestRunnerFraming(t *testing.T) {
	h := startHost(t, sshdtest.Options{})
	c := dial(t, h.cfg)
	res := run(t, c, `printf 'a\036b\036'; printf '\036e' >&2; exit 5`, RunOptions{})
	if string(res.Stdout) != "a\x1eb\x1e" || string(res.Stderr) != "\x1ee" || res.ExitCode != 5 {
		t.Fatalf("got stdout %q stderr %q exit %d", res.Stdout, res.Stderr, res.ExitCode)
	}
	res = run(t, c, "head -c 1048576 /dev/zero | tr '\\0' x", RunOptions{})
	if len(res.Stdout) != 1<<20 || bytes.Count(res.Stdout, []byte("x")) != 1<<20 {
		t.Fatalf("1 MiB of output came back as %d bytes", len(res.Stdout))
	}
	if res := run(t, c, "echo ok", RunOptions{}); string(res.Stdout) != "ok\n" {
		t.Fatalf("after a large output: %q", res.Stdout)
	}
}

// A command's syntax error, cd, variables and leftover background writers stay inside that
// command.
func TestRunnerIsolatesCommands(t *testing.T) {
	h := startHost(t, sshdtest.Options{})
	c := dial(t, h.cfg)
	if res := run(t, c, `echo "unbalanced`, RunOptions{}); res.ExitCode != 2 {
		t.Fatalf("syntax error: exit %d stderr %q, want 2", res.ExitCode, res.Stderr)
	}
	home := string(run(t, c, "pwd", RunOptions{}).Stdout)
	run(t, c, "cd /tmp; X=1; export Y=2", RunOptions{})
	if res := run(t, c, `pwd; echo "${X:-unset} ${Y:-unset}"`, RunOptions{}); string(res.Stdout) != home+"unset unset\n" {
		t.Fatalf("state leaked between commands: %q (home %q)", res.Stdout, home)
	}
	run(t, c, "(sleep 0.3; echo late) &", RunOptions{})
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if res := run(t, c, "echo now", RunOptions{}); string(res.Stdout) != "now\n" {
			t.Fatalf("a background writer of an earlier command got into this one: %q", res.Stdout)
		}
	}
}

// A cancelled command breaks its runner; the next command gets a fresh one.
func TestRunnerAfterCancel(t *testing.T) {
	h := startHost(t, sshdtest.Options{})
	c := dial(t, h.cfg)
	before := string(run(t, c, "echo $PPID", RunOptions{}).Stdout)
	ctx, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
	defer cancel()
	if _, err := c.Run(ctx, "sleep 30", RunOptions{}); err == nil {
		t.Fatal("cancelled command returned no error")
	}
	after := run(t, c, "echo $PPID; echo fine", RunOptions{})
	if !strings.HasSuffix(string(after.Stdout), "fine\n") || strings.HasPrefix(string(after.Stdout), before) {
		t.Fatalf("after a cancel: %q (runner before: %q)", after.Stdout, before)
	}
}

// BenchmarkRun is one short command on a warm connection: through the runner, and through a
// session of its own as before.
func BenchmarkRun(b *testing.B) {
	h := startHost(b, sshdtest.Options{})
	c := dial(b, h.cfg)
	ctx := testCtx(b)
	for _, mode := range []string{"runner", "session"} {
		b.Run(mode, func(b *testing.B) {
			for b.Loop() {
				var err error
				if mode == "runner" {
					_, err = c.Run(ctx, "true", RunOptions{})
				} else {
					_, err = c.runSession(ctx, "true", RunOptions{})
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFirstCommand is a fresh connection's dial and first command, what every host of
// `orch up` starts with: the first session's channel confirmation waited ~40 ms for a
// delayed ACK (see withQuickAck) before the connection acked at once.
func BenchmarkFirstCommand(b *testing.B) {
	h := startHost(b, sshdtest.Options{})
	ctx := testCtx(b)
	for b.Loop() {
		c, err := Dial(ctx, h.cfg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Run(ctx, "true", RunOptions{}); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// A small stdin held in memory goes through the runner (the same parent shell, no session
// of its own: `nodeagent init --preseed` of every join used to cost an sshd session and a
// login shell), byte for byte, and never appears on a process's command line while the
// command runs; a large or streamed stdin still takes a session.
func TestRunnerTakesSmallStdin(t *testing.T) {
	h := startHost(t, sshdtest.Options{})
	c := dial(t, h.cfg)
	runner := string(run(t, c, "echo $PPID", RunOptions{}).Stdout)
	secret := "token-SECRETTOKEN-\x00\x1e'\"$(x)\n\xff"
	cmd := `echo $PPID; cat; for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' <"$f"; echo; done | grep -c 'SECRE[T]TOKEN'`
	res := run(t, c, cmd, RunOptions{Stdin: strings.NewReader(secret)})
	want := runner + secret + "0\n"
	if string(res.Stdout) != want {
		t.Fatalf("through the runner, stdout %q, want %q (parent shell, the stdin, no command line holding it); stderr %q",
			res.Stdout, want, res.Stderr)
	}
	sessions := strings.Count(h.srv.Log(), "Starting session")
	big := bytes.Repeat([]byte("x"), runnerStdin+1)
	if res := run(t, c, "wc -c", RunOptions{Stdin: bytes.NewReader(big)}); strings.TrimSpace(string(res.Stdout)) != strconv.Itoa(len(big)) {
		t.Fatalf("large stdin: %q", res.Stdout)
	}
	pr, pw := io.Pipe()
	go func() { _, _ = pw.Write([]byte("streamed")); pw.Close() }()
	if res := run(t, c, "cat", RunOptions{Stdin: pr}); string(res.Stdout) != "streamed" {
		t.Fatalf("streamed stdin: %q", res.Stdout)
	}
	if n := strings.Count(h.srv.Log(), "Starting session") - sessions; n != 2 {
		t.Fatalf("a large and a streamed stdin opened %d sessions, want one each", n)
	}
	if res := run(t, c, "echo $PPID; cat", RunOptions{Stdin: bytes.NewReader(nil)}); string(res.Stdout) != runner {
		t.Fatalf("empty stdin: %q, want the runner's %q", res.Stdout, runner)
	}
}
