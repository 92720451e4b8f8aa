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
	gzip       string // command that accepts -dc: "gzip" or "busybox gzip"
	sha256     string // command printing "HEX …" for stdin: openssl (SHA-NI), sha256sum or busybox
}

// probeScript prints key=value lines for the tools it finds.
var probeScript = `for p in ` + strings.Join(sftpServerPaths, " ") + `; do
  if [ -x "$p" ]; then echo "sftp=$p"; break; fi
done
if command -v gzip >/dev/null 2>&1; then echo gzip=gzip
elif echo | busybox gzip -c 2>/dev/null | busybox gzip -dc >/dev/null 2>&1; then echo "gzip=busybox gzip"; fi
if echo | openssl dgst -sha256 -r >/dev/null 2>&1; then echo "sha256=openssl dgst -sha256 -r"
elif command -v sha256sum >/dev/null 2>&1; then echo sha256=sha256sum
elif echo | busybox sha256sum >/dev/null 2>&1; then echo "sha256=busybox sha256sum"; fi
`

// remoteTools probes the host once per connection.
func (c *Conn) remoteTools(ctx context.Context) (*remoteTools, error) {
	c.toolsMu.Lock()
	defer c.toolsMu.Unlock()
	if c.tools != nil {
		return c.tools, nil
	}
	res, err := c.Run(ctx, probeScript, RunOptions{})
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("%s: probing remote tools: exit %d: %s", c.cfg.Name, res.ExitCode, firstLine(string(res.Stderr)))
	}
	t := &remoteTools{}
	for _, line := range strings.Split(string(res.Stdout), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "sftp":
			t.sftpServer = v
		case "gzip":
			t.gzip = v
		case "sha256":
			t.sha256 = v
		}
	}
	c.log.Debug("remote tools", "sftp_server", t.sftpServer, "gzip", t.gzip, "sha256", t.sha256)
	c.tools = t
	return t, nil
}
