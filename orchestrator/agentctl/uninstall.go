package agentctl

import (
	"context"
	"strings"
)

// uninstallScript stops the agent and takes it off the host: its systemd unit disabled
// (the template removed with the last agent of the host), or the detached daemon stopped.
// With PURGE=1 it also stops the agent's containers, unmounts and detaches what lives under
// the agent directory (pools on loop files), stops its dnsmasq, deletes its bridges and
// their nftables tables, and removes the directory. It prints "orch-agent changed" when it
// changed anything.
const uninstallScript = `changed=
if systemd; then
  if systemctl is-enabled --quiet "$UNIT" 2>/dev/null || systemctl is-active --quiet "$UNIT" 2>/dev/null; then
    systemctl disable --now --quiet "$UNIT" || exit 1; changed=1
  fi
  if [ -f "$UNITFILE" ] && ! ls /etc/systemd/system/*.wants/nodeagent@*.service >/dev/null 2>&1; then
    rm -f "$UNITFILE" && systemctl daemon-reload; changed=1
  fi
elif p=$(agentpid); then
  kill -TERM "$p"; i=0
  while alive "$p" && [ $i -lt 300 ]; do i=$((i+1)); sleep 0.05; done
  alive "$p" && kill -KILL "$p"; rm -f "$PIDF"; changed=1
fi
if [ "$PURGE" = 1 ] && [ -d "$D" ]; then
  for c in "$D"/containers/*/; do
    [ -d "$c" ] && lxc-stop -P "$D/containers" -n "$(basename "$c")" -k >/dev/null 2>&1
  done
  for n in "$D"/networks/*/; do
    [ -d "$n" ] || continue
    name=$(basename "$n")
    [ -s "$n/dnsmasq.pid" ] && kill "$(cat "$n/dnsmasq.pid")" 2>/dev/null
    ip link show "$name" >/dev/null 2>&1 && ip link delete "$name"
    command -v nft >/dev/null 2>&1 && nft delete table ip "orch_$(printf %s "$name" | tr - _)" 2>/dev/null
  done
  awk -v d="$D/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
  losetup -a 2>/dev/null | awk -F'[()]' -v d="$D/" 'index($2, d) == 1 { sub(":.*", "", $1); print $1 }' | while read -r l; do losetup -d "$l"; done
  rm -rf "$D"; changed=1
fi
[ -n "$changed" ] && echo "orch-agent changed" || echo "orch-agent absent"
`

// Uninstall stops the agent in agentDir and removes its systemd unit (or stops the detached
// daemon); with purge it also removes everything the agent made on the host and the
// directory itself. It reports whether anything changed; a host without the agent is no
// error.
func Uninstall(ctx context.Context, conn Remote, agentDir string, purge bool) (changed bool, err error) {
	if err := checkDir(conn, agentDir); err != nil {
		return false, err
	}
	flag := "PURGE=0\n"
	if purge {
		flag = "PURGE=1\n"
	}
	out, err := script(ctx, conn, agentDir, flag+uninstallScript)
	if err != nil {
		return false, err
	}
	return strings.Contains(out, "orch-agent changed"), nil
}
