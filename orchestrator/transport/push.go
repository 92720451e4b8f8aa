package transport

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"orch/internal/shell"
)

// PushMethod selects how Push moves file contents.
type PushMethod int

const (
	// PushAuto is PushStream. Measured on loopback with AES-NI, the plain stream costs
	// the least CPU on both ends (see README.md in this package).
	PushAuto PushMethod = iota
	// PushStream compares and uploads in one session: a remote script reports the
	// current digest, then reads the file on stdin (`cat`) when it must change.
	PushStream
	// PushGzip is PushStream with the file gzip-compressed once per run and decompressed
	// remotely (gzip or busybox gzip): fewer bytes on the wire for slow links, more CPU.
	PushGzip
	// PushZstd is PushStream with the file zstd-compressed (gzip when the host has no
	// zstd, as is when it has neither), the compression a relay's pushes use.
	PushZstd
	// PushSFTP writes over SFTP with large concurrent writes (also the fallback for
	// hosts without sha256sum).
	PushSFTP
)

// String names the method.
func (m PushMethod) String() string {
	switch m {
	case PushAuto:
		return "auto"
	case PushStream:
		return "stream"
	case PushGzip:
		return "gzip"
	case PushZstd:
		return "zstd"
	case PushSFTP:
		return "sftp"
	}
	return "PushMethod(" + strconv.Itoa(int(m)) + ")"
}

// remoteFile is what the host has under a path.
type remoteFile struct {
	exists bool
	sum    string      // hex SHA-256; "" when exists but no hashing tool was found
	mode   os.FileMode // permission bits; 0 when unknown
	dec    []Encoding  // what the host can decompress (the stream script says)
}

// expands reports whether the host can decompress enc.
func (rf remoteFile) expands(enc Encoding) bool { return slices.Contains(rf.dec, enc) }

// Push makes remote a copy of the local file with permission bits mode. It reports
// changed=false, touching nothing, when the remote file already has the same SHA-256
// and mode. Otherwise the content is written to remote.tmp-XXXXXXXX in the same
// directory (created if needed), its SHA-256 verified, chmod'ed and renamed over remote,
// so remote never shows a partial file. With Config.Become (and a non-root user) it
// writes as root. Config.PushMethod chooses the wire format.
func (c *Conn) Push(ctx context.Context, local, remote string, mode os.FileMode) (changed bool, err error) {
	if !path.IsAbs(remote) {
		return false, fmt.Errorf("%s: push %s: remote path %q is not absolute", c.cfg.Name, local, remote)
	}
	sum, err := c.cfg.Files.Sum(local)
	if err != nil {
		return false, fmt.Errorf("%s: push: %w", c.cfg.Name, err)
	}
	p := &pusher{c: c, become: c.becomes(false), local: local, remote: remote, sum: sum, mode: mode.Perm()}
	if lend, ok := c.lendCommand(remote); ok {
		changed, err = p.pushRelayed(ctx, c.cfg.Relay, lend)
	} else {
		changed, err = p.run(ctx)
	}
	if err != nil {
		return false, fmt.Errorf("%s: push %s to %s: %w", c.cfg.Name, local, remote, stripHost(err, c.cfg.Name))
	}
	return changed, nil
}

// Comparison is what Compare found at a remote path.
type Comparison struct {
	// Exists: a regular file is there.
	Exists bool
	// Same: it has the local file's content and the mode asked for.
	Same bool
}

// Compare tells whether remote already holds local's content with permission bits mode, in
// one command through the connection's runner. When it does not, the next Push of local to
// remote trusts this answer and skips its own comparison (a fresh host's agent install
// asked twice). Hosts without a hashing tool report Same=false.
func (c *Conn) Compare(ctx context.Context, local, remote string, mode os.FileMode) (Comparison, error) {
	sum, err := c.cfg.Files.Sum(local)
	if err != nil {
		return Comparison{}, fmt.Errorf("%s: compare: %w", c.cfg.Name, err)
	}
	tools, err := c.remoteTools(ctx)
	if err != nil {
		return Comparison{}, err
	}
	p := &pusher{c: c, tools: tools, become: c.becomes(false), local: local, remote: remote, sum: sum, mode: mode.Perm()}
	rf, err := p.state(ctx, remote)
	if err != nil {
		return Comparison{}, fmt.Errorf("%s: compare %s: %w", c.cfg.Name, remote, stripHost(err, c.cfg.Name))
	}
	cmp := Comparison{Exists: rf.exists, Same: rf.exists && rf.sum != "" && rf.sum == sum && rf.mode == p.mode}
	if !cmp.Same {
		c.staleMu.Lock()
		if c.stale == nil {
			c.stale = map[string]string{}
		}
		c.stale[remote] = sum
		c.staleMu.Unlock()
	}
	return cmp, nil
}

// knownStale reports (once) whether Compare just found that remote does not hold sum.
func (c *Conn) knownStale(remote, sum string) bool {
	c.staleMu.Lock()
	defer c.staleMu.Unlock()
	if c.stale[remote] != sum {
		return false
	}
	delete(c.stale, remote)
	return true
}

// lendCommand is the command that lends remote to other hosts, when the connection has a
// relay and the relay lends such files.
func (c *Conn) lendCommand(remote string) (string, bool) {
	if c.cfg.Relay == nil || c.cfg.Relay.opts.Lend == nil {
		return "", false
	}
	return c.cfg.Relay.opts.Lend(remote)
}

// pusher carries one Push.
type pusher struct {
	c      *Conn
	tools  *remoteTools // probed for the SFTP path only
	become bool
	local  string
	remote string
	sum    string
	mode   os.FileMode
}

// run compares, then uploads or chmods as needed.
func (p *pusher) run(ctx context.Context) (bool, error) {
	if m := p.c.cfg.PushMethod; m != PushSFTP {
		if done, changed, err := p.upToDate(ctx); done || err != nil {
			return changed, err
		}
		var encs []Encoding
		switch m {
		case PushGzip:
			encs = []Encoding{EncGzip}
		case PushZstd:
			encs = relayEncodings
		}
		return p.streamOrSFTP(ctx, encs)
	}
	return p.viaSFTP(ctx)
}

// streamOrSFTP is one stream push (compressed with the first of encs the host expands),
// or SFTP when the host lacks the tools.
func (p *pusher) streamOrSFTP(ctx context.Context, encs []Encoding) (bool, error) {
	r, err := p.stream(ctx, encs)
	if err != nil || !r.noTools {
		return r.action != actSkip, err
	}
	p.c.log.Debug("no sha256sum or gzip on host: pushing over SFTP", "file", p.remote)
	return p.viaSFTP(ctx)
}

// upToDate settles a push whose remote file already has the right content (chmod'ing it
// if only the mode differs) with commands through the connection's runner, so that an
// unchanged file costs no session of its own; done=false means it must be uploaded.
func (p *pusher) upToDate(ctx context.Context) (done, changed bool, err error) {
	tools, err := p.c.remoteTools(ctx)
	if err != nil || tools.sha256 == "" {
		return false, false, nil // the stream script finds its own tools or says there are none
	}
	p.tools = tools
	if p.c.knownStale(p.remote, p.sum) {
		return false, false, nil
	}
	rf, err := p.state(ctx, p.remote)
	if err != nil || !rf.exists || rf.sum != p.sum {
		return false, false, nil
	}
	if rf.mode == p.mode {
		return true, false, nil
	}
	return true, true, p.sh(ctx, "chmod "+modeArg(p.mode)+" -- "+shell.Quote(p.remote), nil)
}

// viaSFTP compares with a state script (or by reading back) and uploads over SFTP.
func (p *pusher) viaSFTP(ctx context.Context) (bool, error) {
	tools, err := p.c.remoteTools(ctx)
	if err != nil {
		return false, err
	}
	p.tools = tools
	rf, err := p.state(ctx, p.remote)
	if err != nil {
		return false, err
	}
	if rf.exists && rf.sum == "" {
		if rf.sum, err = p.sftpSum(ctx, p.remote); err != nil {
			return false, err
		}
	}
	if rf.exists && rf.sum == p.sum {
		if rf.mode == p.mode {
			return false, nil
		}
		return true, p.sh(ctx, "chmod "+modeArg(p.mode)+" -- "+shell.Quote(p.remote), nil)
	}
	return true, p.sftp(ctx)
}

// state reports the remote file's existence, digest and mode in one round trip.
func (p *pusher) state(ctx context.Context, file string) (remoteFile, error) {
	script := "f=" + shell.Quote(file) + `
[ -f "$f" ] || { echo absent; exit 0; }
echo "mode=$(stat -c %a -- "$f" 2>/dev/null)"`
	if p.tools.sha256 != "" {
		script += "\ns=$(" + p.tools.sha256 + ` < "$f") || exit 1; echo "sum=${s%% *}"`
	}
	res, err := p.c.Run(ctx, script, RunOptions{Become: p.become})
	if err != nil {
		return remoteFile{}, err
	}
	if res.ExitCode != 0 {
		return remoteFile{}, fmt.Errorf("reading remote %s: exit %d: %s", file, res.ExitCode, firstLine(string(res.Stderr)))
	}
	return parseState(string(res.Stdout)), nil
}

// parseState parses the output of the state script.
func parseState(out string) remoteFile {
	rf := remoteFile{exists: !strings.HasPrefix(out, "absent") && !strings.Contains(out, "exists=\n")}
	for _, line := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "sum":
			rf.sum = v
		case "mode":
			if m, err := strconv.ParseUint(v, 8, 32); err == nil {
				rf.mode = os.FileMode(m).Perm()
			}
		case "dec":
			for _, d := range strings.Split(v, ",") {
				if d != "" {
					rf.dec = append(rf.dec, Encoding(d))
				}
			}
		}
	}
	return rf
}

// sh runs a script (as root when becoming), feeding stdin, and fails on non-zero exit.
func (p *pusher) sh(ctx context.Context, script string, opts *RunOptions) error {
	o := RunOptions{Become: p.become}
	if opts != nil {
		o.Stdin = opts.Stdin
	}
	res, err := p.c.Run(ctx, script, o)
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("remote exit %d: %s", res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	return nil
}

// tempName is remote's sibling temporary name.
func tempName(remote string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return remote + ".tmp-" + hex.EncodeToString(b)
}

// modeArg formats permission bits for chmod.
func modeArg(m os.FileMode) string { return fmt.Sprintf("%04o", uint32(m.Perm())) }

// stripHost removes a leading "host: " so wrapped errors name the host once.
func stripHost(err error, host string) error {
	msg := err.Error()
	if !strings.HasPrefix(msg, host+": ") {
		return err
	}
	return &trimmedError{msg: strings.TrimPrefix(msg, host+": "), err: err}
}

// trimmedError shows a shorter message but unwraps to the original error.
type trimmedError struct {
	msg string
	err error
}

func (e *trimmedError) Error() string { return e.msg }
func (e *trimmedError) Unwrap() error { return e.err }
