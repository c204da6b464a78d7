#!/usr/bin/env bash
# The test SMTP server (hack/smtp-server.mjs) on 127.0.0.1:32525; every mail it
# receives lands as a .eml file in $INFRA_DIR/smtp/maildir.
#
#   hack/smtp.sh up|status|down
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NAME=smtp
PORT=32525
MAILDIR=$INFRA_DIR/smtp/maildir

# The server answers with its 220 greeting: listening is not enough.
healthy() {
  local greeting
  exec 3<>"/dev/tcp/127.0.0.1/$PORT" || return 1
  IFS= read -r -t 5 greeting <&3 || { exec 3<&-; return 1; }
  printf 'QUIT\r\n' >&3 || true
  exec 3<&-
  [[ $greeting == 220* ]]
}

fragment() {
  write_fragment "$NAME" "{\"smtp\":{\"host\":\"127.0.0.1\",\"port\":$PORT,\"maildir\":\"$MAILDIR\"}}"
}

status() {
  if pid_alive "$NAME" && healthy 2>/dev/null; then
    echo "smtp: up 127.0.0.1:$PORT pid $(cat "$INFRA_DIR/$NAME.pid") maildir $MAILDIR"
  else
    echo "smtp: down"
    return 1
  fi
}

up() {
  # Two engineers (or two test runs) may run `up` at once: one starts, the other waits and reports.
  take_lock "$NAME" 60
  if pid_alive "$NAME" && healthy 2>/dev/null; then
    fragment
    status
    return 0
  fi
  stop_pid "$NAME"
  if port_open "$PORT"; then
    die "port $PORT is taken by a process this tree did not start; stop it or free the port"
  fi
  [[ -d $REPO_ROOT/node_modules/smtp-server ]] || die "smtp-server is not installed: run 'npm install' in $REPO_ROOT"
  mkdir -p "$MAILDIR"
  start_bg "$NAME" node "$REPO_ROOT/hack/smtp-server.mjs" --host 127.0.0.1 --port "$PORT" --maildir "$MAILDIR"
  if ! wait_for "smtp on 127.0.0.1:$PORT" 30 healthy; then
    tail -n 20 "$LOG_DIR/$NAME.log" >&2 || true
    stop_pid "$NAME"
    die "the SMTP server did not greet on 127.0.0.1:$PORT within 30s (log: $LOG_DIR/$NAME.log)"
  fi
  fragment
  status
}

down() {
  stop_pid "$NAME"
  drop_fragment "$NAME"
  echo "smtp: down"
}

forget_stale_pid "$NAME" "hack/smtp-server.mjs --host 127.0.0.1 --port $PORT --maildir $MAILDIR"

case ${1:-} in
  up) up ;;
  status) status ;;
  down) down ;;
  *) die "usage: hack/smtp.sh up|status|down" ;;
esac
