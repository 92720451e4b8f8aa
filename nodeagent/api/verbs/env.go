package verbs

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"orch/nodeagent/api"
)

// Reacher is how a binary reaches a cluster member, the one thing the two binaries do
// differently: the agent CLI through its daemon's unix socket, orch over mutual TLS to a
// member it finds in the inventory. Requests about another member's objects are forwarded
// inside the cluster, so any member will do unless a command needs one itself.
type Reacher interface {
	// Reach returns a client of a member, the name errors give it ("" when it goes
	// without saying, as for the agent's own socket), and a function that releases the
	// client. A non-empty target asks for that member itself (image import streams the
	// tarball to it).
	Reach(ctx context.Context, target string) (cl *api.Client, who string, release func(), err error)
}

// Env is what every cluster verb runs with: the process's streams and a Reacher.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Reacher reaches a member.
	Reacher Reacher
}

// with runs fn with a client of a member (target's, when set); an error of fn starts with
// the member that answered when the Reacher names it ("member host1: ...").
func (e *Env) with(target string, fn func(ctx context.Context, cl *api.Client) error) error {
	ctx := context.Background()
	cl, who, done, err := e.Reacher.Reach(ctx, target)
	if err != nil {
		return err
	}
	defer done()
	err = fn(ctx, cl)
	if err != nil && who != "" {
		err = fmt.Errorf("member %s: %w", who, err)
	}
	return err
}

// confirm asks a yes/no question on the streams; only "y" or "yes" is yes.
func (e *Env) confirm(question string) bool { return Confirm(e.Stdin, e.Stdout, question) }

// Confirm writes question to out and reads one answer line from in: only "y" or "yes" is
// yes; no input (nil, end of file) is no. Both binaries ask their questions with it.
func Confirm(in io.Reader, out io.Writer, question string) bool {
	fmt.Fprint(out, question)
	if in == nil {
		return false
	}
	line, _ := bufio.NewReader(in).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}

// Verbs are the cluster verbs both binaries mount, with `embed:""`, next to their own
// commands; `cluster` is mounted separately because the agent adds subcommands to it.
type Verbs struct {
	Config  ConfigCmd  `cmd:"" help:"Get and set the cluster's configuration keys."`
	Trust   TrustCmd   `cmd:"" help:"Manage trusted client certificates."`
	Launch  LaunchCmd  `cmd:"" help:"Launch an instance from an image (--target picks the member)."`
	List    ListCmd    `cmd:"" help:"List the cluster's instances with their NODE."`
	Start   StartCmd   `cmd:"" help:"Start instances."`
	Stop    StopCmd    `cmd:"" help:"Stop instances."`
	Restart RestartCmd `cmd:"" help:"Restart instances."`
	Delete  DeleteCmd  `cmd:"" help:"Delete instances."`
	Exec    ExecCmd    `cmd:"" help:"Run a command in an instance: exec NAME [--] CMD..."`
	File    FileCmd    `cmd:"" help:"Copy files into and out of instances."`
	Image   ImageCmd   `cmd:"" help:"Manage the cluster's images (import streams a tarball)."`
	Profile ProfileCmd `cmd:"" help:"Manage the cluster's profiles."`
	Remote  RemoteCmd  `cmd:"" help:"Manage the cluster's image servers (simplestreams)."`
	Storage StorageCmd `cmd:"" help:"Manage storage pools and volumes."`
	Network NetworkCmd `cmd:"" help:"Manage bridge networks."`
	// Operation lists, shows and cancels background operations (LXD's).
	Operation OperationCmd `cmd:"" help:"List, show and cancel the cluster's background operations."`
}
