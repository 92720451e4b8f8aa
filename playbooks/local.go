package playbooks

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"

	"orch/internal/atomicfile"
)

// LocalConn runs commands on the machine the engine runs on (Ansible's
// local connection: ansible_connection=local, the implicit localhost,
// connection: local). Become goes through `sudo -n` unless already root.
type LocalConn struct{}

// Run runs cmd with sh -c.
func (LocalConn) Run(ctx context.Context, cmd string, stdin io.Reader, become bool) ([]byte, []byte, int, error) {
	args := []string{"sh", "-c", cmd}
	if become && os.Geteuid() != 0 {
		args = append([]string{"sudo", "-n", "--"}, args...)
	}
	return runLocal(ctx, args, stdin)
}

// runLocal runs args on this machine: its output, and its exit code as a result, not an
// error, as a Conn reports it.
func runLocal(ctx context.Context, args []string, stdin io.Reader) ([]byte, []byte, int, error) {
	var out, errOut bytes.Buffer
	x := exec.CommandContext(ctx, args[0], args[1:]...)
	x.Stdin, x.Stdout, x.Stderr = stdin, &out, &errOut
	err := x.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return out.Bytes(), errOut.Bytes(), exit.ExitCode(), nil
	}
	return out.Bytes(), errOut.Bytes(), 0, err
}

// Push copies a file atomically and durably (internal/atomicfile), reporting
// whether the content changed.
func (LocalConn) Push(_ context.Context, local, remote string, mode fs.FileMode) (bool, error) {
	data, err := os.ReadFile(local)
	if err != nil {
		return false, err
	}
	if old, err := os.ReadFile(remote); err == nil && bytes.Equal(old, data) {
		return false, os.Chmod(remote, mode)
	}
	return true, atomicfile.Write(remote, data, mode)
}
