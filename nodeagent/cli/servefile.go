package cli

import (
	"bufio"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// ServeFileCmd lends a file that this host already holds to other hosts: orch runs it on a
// host it has pushed the agent to, so that the next hosts fetch the agent over the cluster
// network instead of across the control node's link (a fan-out tree). The access token is
// the first line of stdin, never on the command line; the command serves until stdin ends,
// which is when orch closes the SSH session that runs it. The protocol is the token and a
// newline, answered by the file's bytes; the fetching host checks the file's SHA-256 against
// the digest orch sent it, so a lender cannot slip in other content.
type ServeFileCmd struct {
	File   string `required:"" type:"existingfile" help:"File to lend."`
	Listen string `default:":0" help:"Address to listen on (port 0: any free port, printed on stdout)."`
}

// tokenWait bounds how long a connection may take to send its token line.
const tokenWait = 10 * time.Second

// Run serves until stdin is closed.
func (c *ServeFileCmd) Run(g *Globals) error {
	in := bufio.NewReader(g.Stdin)
	token, err := in.ReadString('\n')
	token = strings.TrimSpace(token)
	if err != nil || token == "" {
		return errors.New("serve-file: no token on the first line of stdin")
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("serve-file: %w", err)
	}
	defer ln.Close()
	fmt.Fprintf(g.Stdout, "orch-relay listening %d\n", ln.Addr().(*net.TCPAddr).Port)
	go func() {
		io.Copy(io.Discard, in) // until orch closes the session
		ln.Close()
	}()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return nil // closed: stdin ended
		}
		go lend(conn, c.File, token)
	}
}

// lend answers one connection: the file's bytes after a matching token, else nothing.
func lend(conn net.Conn, file, token string) {
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(tokenWait))
	line, err := bufio.NewReaderSize(conn, 128).ReadString('\n')
	if err != nil || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(line)), []byte(token)) != 1 {
		return
	}
	conn.SetReadDeadline(time.Time{})
	f, err := os.Open(file)
	if err != nil {
		return
	}
	defer f.Close()
	io.Copy(conn, f)
}
