# Shared helpers for the hack/ component scripts. Source it; do not run it.
#
# Layout (one place per kind of thing, so a reset is one rm):
#   $SLUICE_CACHE  built binaries, jars, images: per machine, survives resets
#   $INFRA_DIR     state of the running components: data, logs, pids, env.json
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SLUICE_CACHE=${SLUICE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}
INFRA_DIR=${SLUICE_INFRA_DIR:-$REPO_ROOT/.infra}
LOG_DIR=$INFRA_DIR/logs
mkdir -p "$SLUICE_CACHE" "$INFRA_DIR" "$LOG_DIR"
# A worktree's .infra is a symlink to the one shared state directory: use its
# real path, so that the command lines of servers started from another checkout
# (which name their files under it) are recognised as ours.
INFRA_DIR=$(cd -P "$INFRA_DIR" && pwd)
LOG_DIR=$INFRA_DIR/logs

# The pod network of the real node (hack/podnet.sh): a bridge whose address host
# servers can listen on (Kafka) or be reached at through DNAT (Redis, SMTP, the
# API server), for the pods of hack/node.sh.
POD_BRIDGE=sluice0
POD_GATEWAY=10.250.0.1
POD_SUBNET=10.250.0.0/24
POD_PREFIX_LEN=24
# pod_bridge_up: the bridge exists and carries its address (servers may bind to it).
pod_bridge_up() { ip -4 -o addr show dev "$POD_BRIDGE" 2>/dev/null | grep -q " $POD_GATEWAY/"; }

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# pid_alive NAME: the component's recorded process is still running.
pid_alive() {
  local f=$INFRA_DIR/$1.pid
  [[ -f $f ]] && kill -0 "$(cat "$f")" 2>/dev/null
}

# stop_pid NAME: stop the process this tree started (by its recorded id, never by name).
stop_pid() {
  local f=$INFRA_DIR/$1.pid pid
  [[ -f $f ]] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# start_bg NAME CMD...: start a long-running server detached from this shell,
# with its output in $LOG_DIR/NAME.log and its pid in $INFRA_DIR/NAME.pid.
# It inherits no descriptor but stdin/out/err: not the `up` lock (fd 9), nor the
# lock of a caller such as `flock /tmp/sluice-infra-tests.lock hack/infra.sh up`
# (flock(1) hands its descriptor to the command), or the server would hold that
# lock for as long as it runs.
start_bg() {
  local name=$1; shift
  (
    local fd
    for fd in $(ls "/proc/$BASHPID/fd"); do (( fd > 2 )) && eval "exec $fd>&-"; done
    exec setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 < /dev/null
  ) &
  echo $! > "$INFRA_DIR/$name.pid"
}

# forget_stale_pid NAME PATTERN: pids are reused (a reboot, a long-gone server);
# a recorded pid whose command line does not contain PATTERN is forgotten, never
# signalled.
forget_stale_pid() {
  local f=$INFRA_DIR/$1.pid cmd
  [[ -f $f ]] || return 0
  cmd=$(tr '\0' ' ' < "/proc/$(cat "$f")/cmdline" 2>/dev/null) || cmd=
  [[ $cmd == *"$2"* ]] || rm -f "$f"
}

# take_lock NAME SECONDS: two `up`s at once (two engineers, two test runs): the
# second waits for the first and then finds the component running.
take_lock() {
  exec 9>"$INFRA_DIR/$1.lock"
  flock -w "$2" 9 || die "another 'hack/$1.sh up' held $INFRA_DIR/$1.lock for $2s"
}

# wait_for DESCRIPTION SECONDS CMD...: poll CMD until it succeeds.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    (( SECONDS < deadline )) || return 1
    sleep 0.5
  done
  log "$what ready"
}

# port_open PORT: something listens on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# write_fragment NAME JSON: what clients need to reach the component; hack/infra.sh
# merges the fragments into $INFRA_DIR/env.json.
write_fragment() { printf '%s\n' "$2" > "$INFRA_DIR/$1.json"; }
drop_fragment() { rm -f "$INFRA_DIR/$1.json"; }

# apt_install PKG...: Debian packages, installed once.
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  (( ${#missing[@]} == 0 )) && return 0
  log "installing ${missing[*]} from Debian"
  local sudo=; (( EUID == 0 )) || sudo=sudo
  if [[ ! -f $SLUICE_CACHE/.apt-updated ]] || [[ -n $(find "$SLUICE_CACHE/.apt-updated" -mmin +1440 2>/dev/null) ]]; then
    $sudo apt-get update -qq && touch "$SLUICE_CACHE/.apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
