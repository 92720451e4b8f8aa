package agentctl

import (
	"fmt"
	"strings"
)

// unitTemplate is the systemd template unit; instances are named by the escaped
// agent directory, so several agents can share a machine.
const unitTemplate = "nodeagent@.service"

// unitText is the template unit: %f is the unescaped instance with its leading "/": the agent directory.
const unitText = `[Unit]
Description=orch node agent in %f
After=network-online.target
Wants=network-online.target

[Service]
ExecStart="%f/bin/nodeagent" daemon --dir "%f"
StandardOutput=journal
StandardError=journal
SyslogIdentifier=nodeagent
Restart=on-failure
RestartSec=2s
KillMode=mixed
TimeoutStopSec=60s

[Install]
WantedBy=multi-user.target
`

// UnitName is the systemd unit of the agent in agentDir: nodeagent@<escaped>.service,
// where <escaped> is what `systemd-escape --path agentDir` prints.
func UnitName(agentDir string) string {
	return "nodeagent@" + escapePath(agentDir) + ".service"
}

// escapePath implements systemd-escape --path.
func escapePath(p string) string {
	var parts []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	joined := strings.Join(parts, "/")
	var b strings.Builder
	for i := 0; i < len(joined); i++ {
		c := joined[i]
		switch {
		case c == '/':
			b.WriteByte('-')
		case c == '.' && i == 0:
			b.WriteString(`\x2e`)
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == ':', c == '_', c == '.':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String()
}
