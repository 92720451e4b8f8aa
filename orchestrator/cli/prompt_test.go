package cli

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

// TestPlayPromptsOnTerminal runs `orch play` with a terminal as stdin and stdout: vars_prompt
// asks there, as ansible-playbook does ("Who? [world]: ", a private answer not echoed),
// and the answers reach the tasks; an extra var is not asked.
func TestPlayPromptsOnTerminal(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory")
	pb := filepath.Join(dir, "site.yml")
	out := filepath.Join(dir, "out")
	writeTestFile(t, inv, "here ansible_connection=local\n")
	writeTestFile(t, pb, `- hosts: here
  gather_facts: false
  vars_prompt:
    - { name: who, prompt: "Who?", default: world, private: false }
    - { name: pw, prompt: "Password" }
    - { name: given, prompt: "Given?" }
  tasks:
    - copy: {content: "{{ who }} {{ pw }} {{ given }}", dest: "`+out+`"}
`)
	master, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer master.Close()
	defer tty.Close()
	done := make(chan int, 1)
	go func() {
		done <- Main([]string{"-i", inv, "--state-dir", filepath.Join(dir, "state"), "play", pb, "-e", "given=yes"}, tty, tty, tty)
	}()
	screen := bufio.NewReader(master)
	answer := func(prompt, text string) {
		t.Helper()
		if err := readUntil(screen, prompt, 30*time.Second, master); err != nil {
			t.Fatalf("waiting for %q: %v", prompt, err)
		}
		if _, err := master.WriteString(text + "\n"); err != nil {
			t.Fatal(err)
		}
	}
	answer("Who? [world]: ", "bob")
	answer("Password: ", "s3cret")
	go func() { // drain the rest of the output so the run never blocks on the terminal
		for {
			if _, err := screen.ReadByte(); err != nil {
				return
			}
		}
	}()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("orch play exited %d", code)
		}
	case <-time.After(time.Minute):
		t.Fatal("orch play did not finish")
	}
	if b, _ := os.ReadFile(out); string(b) != "bob s3cret yes" {
		t.Errorf("the tasks saw %q", b)
	}
}

// readUntil reads the terminal until want appeared, or fails after d.
func readUntil(r *bufio.Reader, want string, d time.Duration, f *os.File) error {
	f.SetReadDeadline(time.Now().Add(d))
	defer f.SetReadDeadline(time.Time{})
	var seen strings.Builder
	for !strings.Contains(seen.String(), want) {
		b, err := r.ReadByte()
		if err != nil {
			return err
		}
		seen.WriteByte(b)
	}
	return nil
}

func writeTestFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
