package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// termPrompter asks vars_prompt questions on the terminal orch runs on: the question on
// out, a private answer read without echo (as Ansible's getpass), a public one as a line.
type termPrompter struct {
	in  *os.File
	r   *bufio.Reader
	out io.Writer
}

// newTermPrompter returns a prompter on stdin when it is a terminal, else nil (playbooks
// then take each prompted variable's default, as ansible-playbook does without a terminal).
func newTermPrompter(stdin io.Reader, out io.Writer) *termPrompter {
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return &termPrompter{in: f, r: bufio.NewReader(f), out: out}
}

// Prompt writes msg and reads one answer.
func (p *termPrompter) Prompt(msg string, private bool) (string, error) {
	fmt.Fprint(p.out, msg)
	if private {
		b, err := term.ReadPassword(int(p.in.Fd()))
		fmt.Fprintln(p.out)
		return string(b), err
	}
	line, err := p.r.ReadString('\n')
	if err == io.EOF && line != "" {
		err = nil
	}
	return strings.TrimRight(line, "\r\n"), err
}
