package transport

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"

	"orch/internal/shell"
)

// Actions the client answers the stream script with.
const (
	actSkip  = "skip"  // content and mode already right
	actChmod = "chmod" // content right, mode not
	actRaw   = "raw"   // upload the file as is
	actGzip  = "gzip"  // upload the gzip-compressed file
	actZstd  = "zstd"  // upload the zstd-compressed file
)

// streamResult tells what a stream push did.
type streamResult struct {
	noTools bool   // the host lacks sha256sum (or gzip for actGzip): use SFTP
	action  string // what was done
}

// stream pushes in one session: the remote script reports the current digest and mode
// of the file and the decompressors the host has, the client answers with an action and,
// for an upload, the content (compressed with the first of encs the host can expand, else
// as is), which the script writes to a temporary file, verifies, chmods and renames.
func (p *pusher) stream(ctx context.Context, encs []Encoding) (streamResult, error) {
	f, err := os.Open(p.local)
	if err != nil {
		return streamResult{}, err
	}
	defer f.Close()
	var bodyErr error
	cv := newConversation(func(rf remoteFile) (string, io.Reader) {
		action, body, err := p.decide(rf, encs, f)
		bodyErr = err
		return action, body
	})
	defer cv.abort()
	res, err := p.c.Run(ctx, p.streamScript(tempName(p.remote)), RunOptions{Become: p.become, Stdin: cv, Stdout: cv})
	if err != nil {
		return streamResult{}, err
	}
	out := string(res.Stdout)
	switch {
	case bodyErr != nil:
		return streamResult{}, bodyErr
	case strings.Contains(out, "orch-push notools"):
		return streamResult{noTools: true}, nil
	case res.ExitCode != 0:
		return streamResult{}, fmt.Errorf("remote exit %d: %s", res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	case cv.action == "":
		return streamResult{}, fmt.Errorf("remote script ended without reporting the file's state: %s", firstLine(string(res.Stderr)))
	case cv.action != actSkip && !strings.Contains(out, "orch-push done"):
		return streamResult{}, fmt.Errorf("remote script did not confirm the %s: %s", cv.action, firstLine(string(res.Stderr)))
	}
	return streamResult{action: cv.action}, nil
}

// decide picks the action for the remote file's state, and the bytes to send after it: the
// file compressed with the first of encs the host can expand, else the file as is. An
// error (the file cannot be compressed) sends nothing: the script ends without a change.
func (p *pusher) decide(rf remoteFile, encs []Encoding, f *os.File) (string, io.Reader, error) {
	switch {
	case rf.exists && rf.sum == p.sum && rf.mode == p.mode:
		return actSkip, nil, nil
	case rf.exists && rf.sum == p.sum:
		return actChmod, nil, nil
	}
	for _, enc := range encs {
		if !rf.expands(enc) {
			continue
		}
		body, err := p.c.cfg.Files.Compressed(p.local, enc)
		if err != nil {
			return "", nil, err
		}
		return string(enc), bytes.NewReader(body), nil
	}
	return actRaw, f, nil
}

// streamScript is the remote half of stream. Exit 65 means the digest did not match.
func (p *pusher) streamScript(tmp string) string {
	return `f=` + shell.Quote(p.remote) + `; t=` + shell.Quote(tmp) + `; d=` + shell.Quote(path.Dir(p.remote)) + `
want=` + p.sum + `; mode=` + modeArg(p.mode) + `
` + p.shaFunction() + `
dec=
if command -v zstd >/dev/null 2>&1; then dec=zstd; fi
if command -v gzip >/dev/null 2>&1; then gz() { gzip -dc; }; dec=$dec,gzip
elif echo | busybox gzip -c 2>/dev/null | busybox gzip -dc >/dev/null 2>&1; then gz() { busybox gzip -dc; }; dec=$dec,gzip
else gz() { echo "orch-push notools"; return 69; }; fi
if [ -d "$f" ]; then echo "$f is a directory" >&2; exit 66; fi
cur=; cmode=
if [ -f "$f" ]; then
  cur=$(sha < "$f") || exit 1; cur=${cur%% *}
  cmode=$(stat -c %a -- "$f" 2>/dev/null) || cmode=
fi
` + widenStdinPipe + `
echo "orch-push state sum=$cur mode=$cmode exists=$([ -f "$f" ] && echo 1) dec=$dec"
read -r action || exit 0
case $action in
chmod) chmod "$mode" -- "$f" && echo "orch-push done"; exit ;;
raw|gzip|zstd) ;;
*) exit 0 ;;
esac
set -e
mkdir -p -- "$d"
trap 'rm -f -- "$t"' EXIT
case $action in gzip) gz > "$t" ;; zstd) zstd -dcq > "$t" ;; *) cat > "$t" ;; esac
s=$(sha < "$t"); s=${s%% *}
if [ "$s" != "$want" ]; then echo "sha256 of uploaded $t is $s, want $want" >&2; exit 65; fi
chmod "$mode" -- "$t"
mv -f -- "$t" "$f"
trap - EXIT
echo "orch-push done"
`
}

// shaFunction is the stream script's definition of sha (SHA-256 of stdin, "HEX …"): the
// tool the command runner's probe found, or, when no probe ran, the first that works
// (each test starts the tool: openssl's start was ~3 ms of every push).
func (p *pusher) shaFunction() string {
	if p.tools != nil && p.tools.sha256 != "" {
		return "sha() { " + p.tools.sha256 + "; }"
	}
	return `if echo | openssl dgst -sha256 -r >/dev/null 2>&1; then sha() { openssl dgst -sha256 -r; }
elif command -v sha256sum >/dev/null 2>&1; then sha() { sha256sum; }
elif echo | busybox sha256sum >/dev/null 2>&1; then sha() { busybox sha256sum; }
else echo "orch-push notools"; exit 0; fi`
}

// widenStdinPipe makes the script's stdin pipe 1 MiB (Linux's default pipe-max-size) before
// the client sends the content, where perl can (Debian's perl-base is essential; without it
// nothing changes). OpenSSH's sshd writes a channel's data into the command's stdin pipe at
// most a pipe's capacity (64 KiB) per turn of its loop and reads up to 256 KiB from the
// connection per turn, so it buffers up to the channel window (2 MiB) and grows that buffer
// 32 KiB per packet, each growth a fresh copy (recallocarray) of a buffer above glibc's mmap
// threshold, which glibc only raises after the first such buffer is freed: the first
// upload on each SSH connection ran three to four times slower than the next (8.3 MB `cat`
// 100-140 ms against 35 ms on the lab; `orch up`'s agent push 210-260 ms, most of the
// 3-host install). With a 1 MiB pipe sshd writes what it holds at once and its buffer
// stays small. The pipe's size is the pipe's, so it outlives perl; perl reads no input.
const widenStdinPipe = `if command -v perl >/dev/null 2>&1; then perl -e '-p STDIN and $^O eq "linux" and fcntl(STDIN, 1031, 1048576)' 2>/dev/null; fi`

// conversation is a session's stdout and stdin at once: when the script's state line
// arrives on stdout, decide picks the action, which Read then serves, followed by the
// content. Until then Read blocks; abort releases it with EOF.
type conversation struct {
	decide func(remoteFile) (string, io.Reader)

	mu      sync.Mutex
	partial []byte
	action  string
	input   io.Reader
	ready   chan struct{}
	once    sync.Once
}

// newConversation returns a conversation driven by decide.
func newConversation(decide func(remoteFile) (string, io.Reader)) *conversation {
	return &conversation{decide: decide, ready: make(chan struct{})}
}

// Write receives the script's stdout.
func (cv *conversation) Write(b []byte) (int, error) {
	cv.mu.Lock()
	defer cv.mu.Unlock()
	cv.partial = append(cv.partial, b...)
	for {
		i := bytes.IndexByte(cv.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		line := string(cv.partial[:i])
		cv.partial = cv.partial[i+1:]
		if state, ok := strings.CutPrefix(line, "orch-push state "); ok && cv.action == "" {
			cv.start(parseStateLine(state))
		}
	}
}

// start records the decision and releases Read.
func (cv *conversation) start(rf remoteFile) {
	action, content := cv.decide(rf)
	cv.action = action
	readers := []io.Reader{strings.NewReader(action + "\n")}
	if content != nil {
		readers = append(readers, content)
	}
	cv.input = io.MultiReader(readers...)
	cv.once.Do(func() { close(cv.ready) })
}

// Read feeds the script's stdin.
func (cv *conversation) Read(b []byte) (int, error) {
	<-cv.ready
	cv.mu.Lock()
	in := cv.input
	cv.mu.Unlock()
	if in == nil {
		return 0, io.EOF
	}
	return in.Read(b)
}

// abort makes a pending Read return EOF.
func (cv *conversation) abort() { cv.once.Do(func() { close(cv.ready) }) }

// parseStateLine parses "sum=HEX mode=OCTAL exists=1".
func parseStateLine(s string) remoteFile {
	return parseState(strings.ReplaceAll(s, " ", "\n") + "\n")
}
