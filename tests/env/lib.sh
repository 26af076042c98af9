# Shared helpers for the test-bed scripts. Sourced, not run.
set -euo pipefail

ENV_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.sh
. "$ENV_DIR/versions.sh"

# Built binaries live outside the work tree so every checkout and CI run reuses them.
CACHE_DIR=${USERSYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/usersync}

# The node's network (node.sh): a veth pair between this host and a network namespace the test bed
# creates. The host end carries the node cluster's apiserver and the directories' second address.
NODE_NETNS=usersync-node
NODE_HOST_LINK=usync-host
NODE_LINK=usync-node
NODE_HOST_ADDRESS=172.31.250.1
NODE_ADDRESS=172.31.250.2

# Whether the node's network is up: servers then listen on its host end too, for pods to reach.
node_network_up() {
  ip -4 -o addr show dev "$NODE_HOST_LINK" 2>/dev/null | grep -q " $NODE_HOST_ADDRESS/"
}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

need() {
  for cmd in "$@"; do
    command -v "$cmd" >/dev/null 2>&1 || die "'$cmd' is missing; run tests/env/install-deps.sh (or .ci/run) first"
  done
}

# A free TCP port on 127.0.0.1, picked by the kernel.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds.
wait_for() {
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      die "$what was not ready after ${secs}s"
    fi
    sleep 0.2
  done
}

# wait_for_daemon PIDFILE LOGFILE SECONDS DESCRIPTION COMMAND...: like wait_for, but gives up at once,
# showing the end of LOGFILE, when the daemon has exited.
wait_for_daemon() {
  local pidfile=$1 logfile=$2 secs=$3 what=$4; shift 4
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      tail -n 20 "$logfile" >&2
      die "$what exited during start-up (log: $logfile)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 20 "$logfile" >&2
      die "$what was not ready after ${secs}s (log: $logfile)"
    fi
    sleep 0.2
  done
}

# start_daemon NAME LOGFILE PIDFILE COMMAND...: run COMMAND in the background in its own session.
start_daemon() {
  local name=$1 logfile=$2 pidfile=$3; shift 3
  setsid "$@" >"$logfile" 2>&1 </dev/null &
  echo $! >"$pidfile"
  log "started $name (pid $(cat "$pidfile"), log $logfile)"
}

# stop_daemon PIDFILE: TERM the process group, then KILL what is left.
stop_daemon() {
  local pidfile=$1 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$pidfile"
}
