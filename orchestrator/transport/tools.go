package transport

import (
	"context"
	"fmt"
	"strings"
)

// sftpServerPaths are where distributions install OpenSSH's sftp-server.
var sftpServerPaths = []string{
	"/usr/lib/openssh/sftp-server",
	"/usr/libexec/openssh/sftp-server",
	"/usr/lib/ssh/sftp-server",
	"/usr/libexec/sftp-server",
}

// remoteTools are the helper programs found on the host; empty when absent.
type remoteTools struct {
	sftpServer string // absolute path of sftp-server
	zstd       string // "zstd" when the host has it
	gzip       string // command that accepts -dc: "gzip" or "busybox gzip"
	sha256     string // command printing "HEX …" for stdin: openssl (SHA-NI), sha256sum or busybox
}

// probeScript prints key=value lines for the tools it finds. It starts no program where
// the host has gzip and openssl or sha256sum (`command -v` and `[` are the shell's
// builtins), so the command runner's start-up runs it for free (toolsFromRunner); busybox's
// applets are tried, with a process each, only on hosts without them.
var probeScript = `for p in ` + strings.Join(sftpServerPaths, " ") + `; do
  if [ -x "$p" ]; then echo "sftp=$p"; break; fi
done
if command -v zstd >/dev/null 2>&1; then echo zstd=zstd; fi
if command -v gzip >/dev/null 2>&1; then echo gzip=gzip
elif echo | busybox gzip -c 2>/dev/null | busybox gzip -dc >/dev/null 2>&1; then echo "gzip=busybox gzip"; fi
if command -v openssl >/dev/null 2>&1; then echo "sha256=openssl dgst -sha256 -r"
elif command -v sha256sum >/dev/null 2>&1; then echo sha256=sha256sum
elif echo | busybox sha256sum >/dev/null 2>&1; then echo "sha256=busybox sha256sum"; fi
`

// remoteTools returns the host's tools: those the command runner found when it started,
// else probed once per connection with probeScript.
func (c *Conn) remoteTools(ctx context.Context) (*remoteTools, error) {
	if t := c.knownTools(); t != nil {
		return t, nil
	}
	// Not under toolsMu: the runner this may start records what its prelude found.
	res, err := c.Run(ctx, probeScript, RunOptions{})
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("%s: probing remote tools: exit %d: %s", c.cfg.Name, res.ExitCode, firstLine(string(res.Stderr)))
	}
	return c.recordTools(string(res.Stdout)), nil
}

// knownTools returns the tools found so far, or nil.
func (c *Conn) knownTools() *remoteTools {
	c.toolsMu.Lock()
	defer c.toolsMu.Unlock()
	return c.tools
}

// recordTools records the tools a probe printed, unless known, and returns the known ones.
func (c *Conn) recordTools(out string) *remoteTools {
	c.toolsMu.Lock()
	defer c.toolsMu.Unlock()
	if c.tools == nil {
		t := parseTools(out)
		c.log.Debug("remote tools", "sftp_server", t.sftpServer, "zstd", t.zstd, "gzip", t.gzip, "sha256", t.sha256)
		c.tools = t
	}
	return c.tools
}

// parseTools reads probeScript's output.
func parseTools(out string) *remoteTools {
	t := &remoteTools{}
	for _, line := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "sftp":
			t.sftpServer = v
		case "zstd":
			t.zstd = v
		case "gzip":
			t.gzip = v
		case "sha256":
			t.sha256 = v
		}
	}
	return t
}
