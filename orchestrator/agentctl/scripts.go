package agentctl

import (
	"strings"

	"orch/internal/shell"
)

// Exit codes of the lifecycle scripts.
const (
	exitNotInstalled = 66
	exitStart        = 67
	exitNotReady     = 68
)

// prelude defines the variables and functions every lifecycle script uses (with the shell's
// builtins where it can: a script runs on every host, and each program it starts costs a
// fork and an exec):
//
//	alive PID   the process runs (not a zombie) and is our binary: /proc/PID/exe is the
//	            binary (possibly "(deleted)" after a replace) or an argv word is (scripts)
//	agentpid    prints the daemon's PID, or fails
//	systemd     PID 1 is systemd
func prelude(agentDir string) string {
	return `D=` + shell.Quote(agentDir) + `
BIN=` + shell.Quote(Binary(agentDir)) + `; PIDF=` + shell.Quote(PIDFile(agentDir)) + `; LOG=` + shell.Quote(LogFile(agentDir)) + `
UNIT=` + shell.Quote(UnitName(agentDir)) + `; UNITFILE=/etc/systemd/system/` + unitTemplate + `
systemd() { c1=; { read -r c1 </proc/1/comm; } 2>/dev/null; [ "$c1" = systemd ] && command -v systemctl >/dev/null 2>&1; }
alive() {
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  case $st in Z*|X*|"") return 1 ;; esac
  case $(readlink "/proc/$1/exe" 2>/dev/null) in "$BIN"|"$BIN (deleted)") return 0 ;; esac
  tr '\0' '\n' < "/proc/$1/cmdline" 2>/dev/null | grep -qxF -- "$BIN"
}
agentpid() {
  if systemd; then
    p=$(systemctl show -p MainPID --value "$UNIT" 2>/dev/null)
  else
    p=; { read -r p <"$PIDF" || [ -n "$p" ]; } 2>/dev/null || return 1
  fi
  case $p in ''|0|*[!0-9]*) return 1 ;; esac
  alive "$p" && echo "$p"
}
`
}

// statusScript prints "orch-agent running PID" or "orch-agent stopped".
const statusScript = `if p=$(agentpid); then echo "orch-agent running $p"; else echo "orch-agent stopped"; fi
`

// startScript starts the daemon in agentDir if needed and prints "orch-agent changed" when
// it did. Without systemd the daemon's launcher writes the pidfile, then its PID to a pipe
// the script reads (fd 3, closed before the daemon runs): the script returns as soon as the
// pidfile is there, where it polled for it every 50 ms (most starts waited one round).
func startScript(agentDir string) string {
	return `if p=$(agentpid); then echo "orch-agent running $p"; exit 0; fi
[ -x "$BIN" ] || { echo "$BIN is missing or not executable" >&2; exit 66; }
[ -d "${LOG%/*}" ] || mkdir -p "${LOG%/*}"
if systemd; then
  u=$(cat <<'ORCH_UNIT_EOF'
` + strings.TrimSuffix(unitText(), "\n") + `
ORCH_UNIT_EOF
)
  if [ "$(cat "$UNITFILE" 2>/dev/null)" != "$u" ]; then
    printf '%s\n' "$u" > "$UNITFILE.tmp" && mv -f "$UNITFILE.tmp" "$UNITFILE" && systemctl daemon-reload || exit 67
  fi
  systemctl enable --now --quiet "$UNIT" || { systemctl status --no-pager "$UNIT" >&2; exit 67; }
  echo "orch-agent changed"; exit 0
fi
[ ! -e "$PIDF" ] || rm -f "$PIDF"
p=$(setsid sh -c 'echo $$ > "$1.tmp" && mv -f "$1.tmp" "$1" && echo $$ >&3 && exec 3>&- && shift && exec "$@"' sh "$PIDF" ` + shell.Join(daemonArgv(agentDir)...) + ` 3>&1 >>"$LOG" 2>&1 </dev/null &)
[ -n "$p" ] || { echo "no pidfile $PIDF: the daemon did not start; log:" >&2; tail -n 20 "$LOG" >&2; exit 67; }
echo "orch-agent changed $p"
`
}

// stopScript stops the daemon: SIGTERM, up to GRACE_TICKS × 50ms, then SIGKILL.
// It prints "orch-agent changed" when a daemon was running.
const stopScript = `if systemd; then
  systemctl is-active --quiet "$UNIT" || { echo "orch-agent stopped"; exit 0; }
  systemctl stop "$UNIT" || exit 1
  echo "orch-agent changed"; exit 0
fi
p=$(agentpid) || { rm -f "$PIDF"; echo "orch-agent stopped"; exit 0; }
kill -TERM "$p" 2>/dev/null
i=0
while alive "$p"; do
  i=$((i+1))
  if [ $i -gt GRACE_TICKS ]; then
    kill -KILL "$p" 2>/dev/null; echo "orch-agent killed $p after grace period" >&2
    j=0; while alive "$p" && [ $j -lt 200 ]; do j=$((j+1)); sleep 0.05; done
    break
  fi
  sleep 0.05
done
if alive "$p"; then echo "process $p survived SIGKILL for 10s" >&2; exit 1; fi
rm -f "$PIDF"
echo "orch-agent changed"
`
