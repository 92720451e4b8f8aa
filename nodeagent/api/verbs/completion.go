package verbs

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/alecthomas/kong"
	"github.com/willabides/kongplete"
)

// Shell completion (kongplete over posener/complete): the shell runs the binary itself
// with COMP_LINE set, and Main answers with the words that fit instead of running a
// command. `completion SHELL` prints the line that hooks the binary into that shell.

// CompletionCmd is `completion bash|zsh|fish`: print the shell's completion script.
type CompletionCmd struct {
	Shell string `arg:"" enum:"bash,zsh,fish" help:"bash, zsh or fish. Use: source <(NAME completion bash); for fish: NAME completion fish | source."`
}

// completionScripts are the scripts per shell; ${cmd} is the command's name, ${bin} the
// absolute path of its binary.
var completionScripts = map[string]string{
	"bash": "complete -C ${bin} ${cmd}\n",
	"zsh":  "autoload -U +X bashcompinit && bashcompinit\ncomplete -C ${bin} ${cmd}\n",
	"fish": `function __complete_${cmd}
    set -lx COMP_LINE (commandline -cp)
    test -z (commandline -ct)
    and set COMP_LINE "$COMP_LINE "
    ${bin}
end
complete -f -c ${cmd} -a "(__complete_${cmd})"
`,
}

// Run prints the script for the running binary.
func (c *CompletionCmd) Run(kctx *kong.Context, e *Env) error {
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this binary for the completion script: %w", err)
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return err
	}
	return writeCompletion(e.Stdout, c.Shell, kctx.Model.Name, bin)
}

// writeCompletion writes shell's script for command cmd run as bin.
func writeCompletion(w io.Writer, shell, cmd, bin string) error {
	script, ok := completionScripts[shell]
	if !ok {
		return fmt.Errorf("shell %q: completion exists for bash, zsh and fish", shell)
	}
	vars := map[string]string{"cmd": cmd, "bin": bin}
	_, err := io.WriteString(w, os.Expand(script, func(s string) string {
		if v, ok := vars[s]; ok {
			return v
		}
		return "$" + s
	}))
	return err
}

// complete answers a shell's completion request, if this is one ($COMP_LINE holds the line
// typed so far): the candidates go to k's stdout, one a line. It reports whether it was.
func complete(k *kong.Kong) (answered bool, err error) {
	if os.Getenv("COMP_LINE") == "" {
		return false, nil
	}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(exitRequest); !ok {
				panic(r)
			}
		}
	}()
	kongplete.Complete(k, kongplete.WithExitFunc(func(int) { answered = true; panic(exitRequest(0)) }),
		kongplete.WithErrorHandler(func(e error) { err = e }))
	return answered, err
}
