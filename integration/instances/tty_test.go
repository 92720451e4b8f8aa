package instances

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/syncbuf"
	"orch/internal/wait"

	"github.com/creack/pty"
)

// checkExecTerminal: exec gives the command a terminal as `lxc exec` does: -t forces one
// (tty prints a /dev/pts path, stty its 80x24 default, the exit code survives), -T and a
// non-terminal caller get none, and a caller on a terminal gets its size, then each new
// size when its window changes (SIGWINCH). via runs the CLI; the instance runs elsewhere.
func checkExecTerminal(t *testing.T, via *agenttest.Agent, name string) {
	r := via.Run("exec", name, "-t", "--", "tty")
	if r.Code != 0 || !regexp.MustCompile(`^/dev/pts/\d+\r?\n$`).MatchString(r.Stdout) {
		t.Fatalf("exec -t tty: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	if r := via.Run("exec", name, "-t", "--", "stty", "size"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "24 80" {
		t.Errorf("exec -t stty size: exit %d, %q %q", r.Code, r.Stdout, r.Stderr)
	}
	if r := via.Run("exec", name, "-t", "--", "sh", "-c", "exit 3"); r.Code != 3 {
		t.Errorf("exec -t sh -c 'exit 3': exit %d, %q", r.Code, r.Stderr)
	}
	for _, args := range [][]string{{"exec", name, "--", "tty"}, {"exec", name, "-T", "--", "tty"}} {
		if r := via.Run(args...); r.Code != 1 || !strings.Contains(r.Stdout, "not a tty") {
			t.Errorf("%v: exit %d, %q %q", args, r.Code, r.Stdout, r.Stderr)
		}
	}
	checkWindowFollowed(t, via, name)
}

// checkWindowFollowed runs exec on a terminal of 30x100, resizes it to 40x120 and waits
// for the command to see the new size; ^D ends it with exit code 0.
func checkWindowFollowed(t *testing.T, via *agenttest.Agent, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, agenttest.Bin(), "--dir", via.Dir, "exec", name, "--",
		"sh", "-c", "while stty size; do read x || break; done")
	cmd.Env = agenttest.Env()
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	out := &syncbuf.Buffer{}
	go func() { _, _ = io.Copy(out, ptmx) }()
	waitOutput(t, out, "30 100", nil)
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	// Each line typed makes the loop print the size again, until it shows the new one.
	waitOutput(t, out, "40 120", func() { _, _ = ptmx.Write([]byte("\r")) })
	if _, err := ptmx.Write([]byte{4}); err != nil { // ^D: read fails, the loop ends
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exec on a terminal ended with %d:\n%s", code, out.String())
	}
}

// waitOutput waits up to 20s for want in out, calling poke (when set) between looks.
func waitOutput(t *testing.T, out *syncbuf.Buffer, want string, poke func()) {
	t.Helper()
	wait.ForEvery(t, 20*time.Second, 100*time.Millisecond, fmt.Sprintf("the terminal to show %q", want), func() error {
		if got := out.String(); !strings.Contains(got, want) {
			if poke != nil {
				poke()
			}
			return fmt.Errorf("the terminal shows %q", got)
		}
		return nil
	})
}
