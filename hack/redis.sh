#!/usr/bin/env bash
# Redis from Debian's package, on 127.0.0.1:36379, no persistence (tests own
# their key prefixes; a restart starting empty is what we want).
#
#   hack/redis.sh up|status|down
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NAME=redis
PORT=36379
DATA_DIR=$INFRA_DIR/redis

healthy() { redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -qx PONG; }

status() {
  if pid_alive "$NAME" && healthy; then
    echo "redis: up 127.0.0.1:$PORT pid $(cat "$INFRA_DIR/$NAME.pid")"
  else
    echo "redis: down"
    return 1
  fi
}

up() {
  # Two engineers (or two test runs) may run `up` at once: one starts, the other waits and reports.
  take_lock "$NAME" 60
  if pid_alive "$NAME" && healthy; then
    # A server started before pods could reach it (see below).
    [[ $(redis-cli -h 127.0.0.1 -p "$PORT" CONFIG GET protected-mode | tail -1) == no ]] \
      || redis-cli -h 127.0.0.1 -p "$PORT" CONFIG SET protected-mode no >/dev/null
    write_fragment "$NAME" "{\"redis\":{\"host\":\"127.0.0.1\",\"port\":$PORT}}"
    status
    return 0
  fi
  stop_pid "$NAME"  # a recorded process that no longer answers
  # Another Redis (not ours) on our port would make the tests talk to a stranger.
  if port_open "$PORT"; then
    die "port $PORT is taken by a process this tree did not start; stop it or free the port"
  fi
  apt_install redis-server
  mkdir -p "$DATA_DIR"
  # Daemonize no: start_bg must hold the real server pid so down can stop it.
  # Protected mode off: it stays bound to loopback, and the real node's pods reach
  # it through DNAT (hack/podnet.sh) from their own addresses, which protected
  # mode would refuse.
  start_bg "$NAME" redis-server --port "$PORT" --bind 127.0.0.1 --dir "$DATA_DIR" \
    --save "" --appendonly no --daemonize no --protected-mode no
  if ! wait_for "redis on 127.0.0.1:$PORT" 30 healthy; then
    tail -n 20 "$LOG_DIR/$NAME.log" >&2 || true
    stop_pid "$NAME"
    die "redis did not answer PING on 127.0.0.1:$PORT within 30s (log: $LOG_DIR/$NAME.log)"
  fi
  write_fragment "$NAME" "{\"redis\":{\"host\":\"127.0.0.1\",\"port\":$PORT}}"
  status
}

down() {
  stop_pid "$NAME"
  drop_fragment "$NAME"
  echo "redis: down"
}

forget_stale_pid "$NAME" "redis-server"

case ${1:-} in
  up) up ;;
  status) status ;;
  down) down ;;
  *) die "usage: hack/redis.sh up|status|down" ;;
esac
