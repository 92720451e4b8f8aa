package verbs

import (
	"os"
	"testing"

	"github.com/creack/pty"

	"orch/nodeagent/api"
)

// TestIsTerminal: a pseudo terminal is one; /dev/null, a character device, is not (exec
// </dev/null -t tried to put it in raw mode: "inappropriate ioctl for device").
func TestIsTerminal(t *testing.T) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	defer tty.Close()
	if isTerminal(null) || !isTerminal(tty) || isTerminal(nil) {
		t.Errorf("isTerminal: /dev/null %v, a pty %v", isTerminal(null), isTerminal(tty))
	}
	local, err := openTerminal(null, tty)
	if err != nil {
		t.Fatalf("exec -t with stdin /dev/null and a terminal for stdout: %v", err)
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Cols: 123, Rows: 45}); err != nil {
		t.Fatal(err)
	}
	if w := local.size(); w != (api.Window{Width: 123, Height: 45}) {
		t.Errorf("window of the stdout terminal: %+v", w)
	}
	local.restore()
}
