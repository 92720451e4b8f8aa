package transport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/pkg/sftp"

	"orch/internal/shell"
)

// sftpMaxPacket is the largest write OpenSSH's sftp-server accepts (256 KiB messages
// minus headers); bigger writes mean fewer round trips (see BenchmarkPush).
const sftpMaxPacket = 255 * 1024

// sftpOptions are the client options for every SFTP session.
var sftpOptions = []sftp.ClientOption{
	sftp.UseConcurrentWrites(true),
	sftp.MaxPacketUnchecked(sftpMaxPacket),
	sftp.MaxConcurrentRequestsPerFile(64),
}

// sftp uploads through an SFTP session: write tmp, verify, chmod, posix-rename.
func (p *pusher) sftp(ctx context.Context) (err error) {
	cl, closeFn, err := p.openSFTP(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	stop := context.AfterFunc(ctx, closeFn)
	defer stop()
	tmp := tempName(p.remote)
	defer func() {
		if err != nil {
			cl.Remove(tmp)
		}
	}()
	if err := p.sftpWrite(cl, tmp); err != nil {
		return sftpCtxErr(ctx, err)
	}
	if err := p.verify(ctx, cl, tmp); err != nil {
		return err
	}
	if err := cl.Chmod(tmp, p.mode); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, sftpCtxErr(ctx, err))
	}
	if err := cl.PosixRename(tmp, p.remote); err != nil {
		// Servers without posix-rename@openssh.com: mv is rename(2) in one directory.
		closeFn()
		return p.sh(ctx, "mv -f -- "+shell.Quote(tmp)+" "+shell.Quote(p.remote), nil)
	}
	return nil
}

// sftpWrite creates dir and tmp and copies the local file into it.
func (p *pusher) sftpWrite(cl *sftp.Client, tmp string) error {
	if err := cl.MkdirAll(path.Dir(p.remote)); err != nil {
		return fmt.Errorf("mkdir %s: %w", path.Dir(p.remote), err)
	}
	lf, err := os.Open(p.local)
	if err != nil {
		return err
	}
	defer lf.Close()
	rf, err := cl.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	if _, err := rf.ReadFrom(lf); err != nil {
		rf.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	return rf.Close()
}

// verify checks tmp's digest remotely, by sha256sum or by reading it back.
func (p *pusher) verify(ctx context.Context, cl *sftp.Client, tmp string) error {
	var got string
	var err error
	if p.tools.sha256 != "" && p.c.cfg.MaxSessions > 1 { // the SFTP session holds one
		var rf remoteFile
		rf, err = p.state(ctx, tmp)
		got = rf.sum
	} else {
		got, err = hashRemote(cl, tmp)
	}
	if err != nil {
		return err
	}
	if got != p.sum {
		return fmt.Errorf("sha256 of uploaded %s is %s, want %s", tmp, got, p.sum)
	}
	return nil
}

// sftpSum hashes a remote file by reading it over SFTP (hosts without sha256sum).
func (p *pusher) sftpSum(ctx context.Context, file string) (string, error) {
	cl, closeFn, err := p.openSFTP(ctx)
	if err != nil {
		return "", err
	}
	defer closeFn()
	return hashRemote(cl, file)
}

// hashRemote returns the hex SHA-256 of a remote file read over SFTP.
func hashRemote(cl *sftp.Client, file string) (string, error) {
	f, err := cl.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := f.WriteTo(h); err != nil {
		return "", fmt.Errorf("reading %s: %w", file, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// openSFTP starts an SFTP client: the sftp subsystem, or with become the sftp-server
// binary under `sudo -n`. closeFn is idempotent.
func (p *pusher) openSFTP(ctx context.Context) (*sftp.Client, func(), error) {
	if p.become && p.tools.sftpServer == "" {
		return nil, nil, fmt.Errorf("no sftp-server found in %s", strings.Join(sftpServerPaths, ", "))
	}
	s, release, err := p.c.newSession(ctx)
	if err != nil {
		return nil, nil, err
	}
	var stderr bytes.Buffer
	s.Stderr = &stderr
	w, err1 := s.StdinPipe()
	r, err2 := s.StdoutPipe()
	if err := errors.Join(err1, err2); err != nil {
		release()
		return nil, nil, p.c.wrapErr(err)
	}
	if p.become {
		err = s.Start("sudo -n -- " + shell.Quote(p.tools.sftpServer))
	} else {
		err = s.RequestSubsystem("sftp")
	}
	if err != nil {
		release()
		return nil, nil, p.c.wrapErr(fmt.Errorf("starting sftp: %w", err))
	}
	cl, err := sftp.NewClientPipe(r, w, p.c.sftpOpts...)
	if err != nil {
		release()
		return nil, nil, p.sftpStartError(err, stderr.String())
	}
	return cl, sync.OnceFunc(func() { cl.Close(); release() }), nil
}

// sftpStartError explains a failed SFTP start, recognising sudo's complaints.
func (p *pusher) sftpStartError(err error, stderr string) error {
	if p.become {
		if berr := p.c.becomeError(Result{ExitCode: 1, Stderr: []byte(stderr)}); berr != nil {
			return berr
		}
	}
	if stderr != "" {
		return fmt.Errorf("starting sftp: %w: %s", err, firstLine(stderr))
	}
	return p.c.wrapErr(fmt.Errorf("starting sftp: %w", err))
}

// sftpCtxErr prefers ctx's error when the client was closed because ctx ended.
func sftpCtxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("sftp connection lost: %w", err)
	}
	return err
}
