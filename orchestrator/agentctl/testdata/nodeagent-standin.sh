#!/bin/sh
# Stand-in for nodeagent in agentctl tests. "daemon" stays in the foreground until
# SIGTERM, marking readiness by creating DIR/unix.socket (a plain file); it ignores
# SIGTERM when DIR/ignore-term exists. "waitready" waits for that file. Any other
# command prints its arguments. As with the real agent, --dir may come before the command.
cmd=; dir=; timeout=10; args=
while [ $# -gt 0 ]; do
  case $1 in
    --dir) dir=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    *) if [ -z "$cmd" ]; then cmd=$1; else args="$args[$1]"; fi; shift ;;
  esac
done
case $cmd in
daemon)
  if [ -e "$dir/ignore-term" ]; then trap '' TERM; else
    trap 'rm -f "$dir/unix.socket"; echo "stand-in $$ stopping"; exit 0' TERM INT
  fi
  echo "stand-in $$ starting in $dir (version VERSION)"
  : > "$dir/unix.socket"
  while :; do sleep 1 & wait $!; done ;;
waitready)
  i=0
  while [ ! -e "$dir/unix.socket" ]; do
    i=$((i+1)); [ $i -le $((timeout*20)) ] || { echo "agent in $dir not ready after ${timeout}s" >&2; exit 1; }
    sleep 0.05
  done ;;
*) echo "cmd=$cmd dir=$dir args=$args" ;;
esac
