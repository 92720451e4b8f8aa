package agentctl

import (
	"fmt"
	"strings"
)

// unitTemplate is the systemd template unit; instances are named by the escaped
// agent directory, so several agents can share a machine.
const unitTemplate = "nodeagent@.service"

// unitText is the template unit: %f is the unescaped instance with its leading "/": the
// agent directory. An installed unit is rewritten when this text changes.
func unitText() string {
	return `[Unit]
Description=orch node agent in %f
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=` + systemdWords(daemonArgv("%f")) + `
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
}

// systemdWords joins a command line for ExecStart, double-quoting the words that are not
// plain (paths with specifiers such as %f).
func systemdWords(argv []string) string {
	q := make([]string, len(argv))
	for i, w := range argv {
		q[i] = w
		if strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != "" {
			q[i] = `"` + w + `"`
		}
	}
	return strings.Join(q, " ")
}

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
