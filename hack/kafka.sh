#!/usr/bin/env bash
# Apache Kafka 4 (KRaft, one node that is broker and controller) from Maven
# Central jars, run with the machine's Java, on 127.0.0.1:39092 (controller 39093).
#
#   hack/kafka.sh up|status|down
#
# Jars: $SLUICE_CACHE/kafka/libs (copied once by Maven from hack/kafka/pom.xml;
# a changed pom copies again). Data, config: $INFRA_DIR/kafka. Log: $LOG_DIR/kafka.log.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NAME=kafka
PORT=39092
CONTROLLER_PORT=39093
# The listener for the real node's pods, on the pod bridge (hack/podnet.sh) when it exists.
PODS_PORT=39094
HERE=$REPO_ROOT/hack/kafka
LIBS=$SLUICE_CACHE/kafka/libs
STATE=$INFRA_DIR/kafka
DATA_DIR=$STATE/data
CONFIG=$STATE/server.properties
START_TIMEOUT=${SLUICE_KAFKA_START_TIMEOUT:-180}
# log4j's own shutdown hook would stop logging before the broker's shutdown is logged.
JAVA_OPTS=(-Xms256m -Xmx768m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
  "-Dlog4j2.configurationFile=$HERE/log4j2.properties" -Dlog4j2.shutdownHookEnabled=false)

# The broker's listeners are fixed at start: clients in pods are told about the
# pod listener only when the running broker has it.
fragment() {
  local pods=
  grep -q "PODS://$POD_GATEWAY:$PODS_PORT" "$CONFIG" 2>/dev/null && pods=",\"podBrokers\":[\"$POD_GATEWAY:$PODS_PORT\"]"
  write_fragment "$NAME" "{\"kafka\":{\"brokers\":[\"127.0.0.1:$PORT\"]$pods}}"
}

ready() { port_open "$PORT" && node "$HERE/ready.mjs" "127.0.0.1:$PORT"; }

status() {
  if pid_alive "$NAME" && ready >/dev/null 2>&1; then
    local pods=
    grep -q "PODS://$POD_GATEWAY:$PODS_PORT" "$CONFIG" 2>/dev/null && pods=", pods: $POD_GATEWAY:$PODS_PORT"
    echo "kafka: up 127.0.0.1:$PORT$pods pid $(cat "$INFRA_DIR/$NAME.pid")"
  else
    echo "kafka: down"
    return 1
  fi
}

# install: the broker's classpath, copied once per pom (the pom's hash marks it done).
install() {
  local want have=
  want=$(sha256sum "$HERE/pom.xml" | cut -d' ' -f1)
  [[ -f $LIBS/.pom-sha256 ]] && have=$(cat "$LIBS/.pom-sha256")
  [[ $want == "$have" ]] && return 0
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  command -v mvn >/dev/null || apt_install maven
  log "copying the Kafka broker jars from Maven Central into $LIBS (first use)"
  local tmp=$SLUICE_CACHE/kafka/libs.tmp.$$
  rm -rf "$tmp"
  if ! mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
      "-DoutputDirectory=$tmp" >>"$LOG_DIR/$NAME.log" 2>&1; then
    tail -n 30 "$LOG_DIR/$NAME.log" >&2
    rm -rf "$tmp"
    die "Maven could not fetch the Kafka jars (log: $LOG_DIR/$NAME.log)"
  fi
  echo "$want" > "$tmp/.pom-sha256"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
}

# render: server.properties as it should be now (with the pod listener when the pod bridge is up).
render() {
  local pods=
  pod_bridge_up && pods=",PODS://$POD_GATEWAY:$PODS_PORT"
  sed -e "s|@DATA_DIR@|$DATA_DIR|g" -e "s|@PODS@|$pods|g" "$HERE/server.properties"
}

# configure: server.properties from the template; the storage is formatted once
# (meta.properties marks a formatted log dir), with a fresh cluster id.
configure() {
  mkdir -p "$DATA_DIR"
  render > "$CONFIG"
  [[ -f $DATA_DIR/meta.properties ]] && return 0
  local cluster_id
  # A Kafka Uuid: 16 random bytes, base64url without padding; never starting
  # with '-' (the tools would read it as an option).
  cluster_id=$(node -e '
    const { randomBytes } = require("crypto");
    let id; do { id = randomBytes(16).toString("base64url"); } while (id.startsWith("-"));
    process.stdout.write(id);')
  log "formatting Kafka storage in $DATA_DIR (cluster $cluster_id)"
  if ! java "${JAVA_OPTS[@]}" -cp "$LIBS/*" kafka.tools.StorageTool format \
      -t "$cluster_id" -c "$CONFIG" >>"$LOG_DIR/$NAME.log" 2>&1; then
    tail -n 30 "$LOG_DIR/$NAME.log" >&2
    die "formatting the Kafka storage in $DATA_DIR failed (log: $LOG_DIR/$NAME.log)"
  fi
}

up() {
  # Two engineers (or two test runs) may run `up` at once: one starts, the other waits and reports.
  take_lock "$NAME" 600
  if pid_alive "$NAME" && ready >/dev/null 2>&1; then
    # The pod bridge came after the broker started: restart it with the pod listener.
    # (Nothing else restarts a running broker: other checkouts share it.)
    if ! pod_bridge_up || grep -q "PODS://$POD_GATEWAY:$PODS_PORT" "$CONFIG"; then
      fragment
      status
      return 0
    fi
    log "restarting the Kafka broker to add the pod listener $POD_GATEWAY:$PODS_PORT"
    stop_pid "$NAME"
  fi
  if pid_alive "$NAME"; then
    # Ours and still starting (another `up` ran it): wait for it rather than restart.
    log "kafka pid $(cat "$INFRA_DIR/$NAME.pid") is running but not ready yet; waiting"
  else
    stop_pid "$NAME"
    for p in "$PORT" "$CONTROLLER_PORT"; do
      port_open "$p" && die "port $p is taken by a process this tree did not start; stop it or free the port"
    done
    install
    configure
    echo "=== $(date -u +%FT%TZ) hack/kafka.sh up: starting the broker" >>"$LOG_DIR/$NAME.log"
  start_bg "$NAME" java "${JAVA_OPTS[@]}" -cp "$LIBS/*" kafka.Kafka "$CONFIG"
  fi
  local deadline=$((SECONDS + START_TIMEOUT))
  until ready >/dev/null 2>&1; do
    if ! pid_alive "$NAME"; then
      tail -n 30 "$LOG_DIR/$NAME.log" >&2
      rm -f "$INFRA_DIR/$NAME.pid"
      die "the Kafka broker exited while starting (log: $LOG_DIR/$NAME.log)"
    fi
    if (( SECONDS >= deadline )); then
      tail -n 30 "$LOG_DIR/$NAME.log" >&2
      stop_pid "$NAME"
      die "the Kafka broker did not answer a metadata request on 127.0.0.1:$PORT within ${START_TIMEOUT}s (log: $LOG_DIR/$NAME.log)"
    fi
    sleep 1
  done
  log "kafka on 127.0.0.1:$PORT ready"
  fragment
  status
}

down() {
  # SIGTERM lets the broker shut down cleanly (stop_pid gives it 10 s before -9).
  stop_pid "$NAME"
  drop_fragment "$NAME"
  echo "kafka: down"
}

forget_stale_pid "$NAME" "$CONFIG"

case ${1:-} in
  up) up ;;
  status) status ;;
  down) down ;;
  *) die "usage: hack/kafka.sh up|status|down" ;;
esac
