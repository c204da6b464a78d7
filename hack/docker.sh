#!/usr/bin/env bash
# A Docker engine of our own (Debian's docker.io) on a private socket, and a
# local base image: no registry is reachable here, so the base is debootstrapped
# from the Debian mirror apt already uses and imported as local/debian:bookworm.
#
#   hack/docker.sh up|status|down
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DIR=$INFRA_DIR/docker
SOCK=$DIR/docker.sock
DATA_ROOT=$SLUICE_CACHE/docker          # images survive a reset of .infra
BASE_IMAGE=local/debian:bookworm
BASE_TAR=$SLUICE_CACHE/images/debian-bookworm-minbase.tar
export DOCKER_HOST=unix://$SOCK

engine_ready() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

debian_mirror() {
  # The mirror apt is configured with (deb822 or one-line sources).
  local m
  m=$(grep -hoE '^URIs: *http[^ ]+/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | sed 's/^URIs: *//')
  [[ -n $m ]] || m=$(grep -hoE '^deb +http[^ ]+/debian/? ' /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $2}')
  echo "${m:-http://deb.debian.org/debian}"
}

base_image() {
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return 0
  if [[ ! -f $BASE_TAR ]]; then
    local root; root=$(mktemp -d "$SLUICE_CACHE/debootstrap.XXXX")
    log "debootstrapping Debian bookworm (minbase) from $(debian_mirror)"
    debootstrap --variant=minbase bookworm "$root" "$(debian_mirror)" >>"$LOG_DIR/docker.log" 2>&1 \
      || { rm -rf "$root"; die "debootstrap failed: $(tail -3 "$LOG_DIR/docker.log")"; }
    mkdir -p "$(dirname "$BASE_TAR")"
    tar -C "$root" -cf "$BASE_TAR.tmp" . && mv "$BASE_TAR.tmp" "$BASE_TAR"
    rm -rf "$root"
  fi
  docker import "$BASE_TAR" "$BASE_IMAGE" >/dev/null || die "docker import of $BASE_TAR failed"
  log "base image $BASE_IMAGE ready"
}

up() {
  take_lock docker 600
  apt_install docker.io debootstrap
  mkdir -p "$DIR" "$DATA_ROOT"
  if ! { pid_alive dockerd && engine_ready; }; then
    stop_pid dockerd
    start_bg dockerd dockerd --host "$DOCKER_HOST" --data-root "$DATA_ROOT" --exec-root "$DIR/exec" \
      --pidfile "$DIR/dockerd.pid" --storage-driver overlay2
    wait_for dockerd 60 engine_ready || die "dockerd did not start: $(tail -5 "$LOG_DIR/dockerd.log")"
  fi
  base_image
  write_fragment docker "{\"docker\":{\"host\":\"$DOCKER_HOST\",\"baseImage\":\"$BASE_IMAGE\"}}"
  status
}

status() {
  if pid_alive dockerd && engine_ready; then
    echo "docker: up $DOCKER_HOST (engine $(docker version --format '{{.Server.Version}}'), base image $BASE_IMAGE $(docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && echo present || echo missing))"
  else
    echo "docker: down"; return 1
  fi
}

down() {
  stop_pid dockerd
  # dockerd leaves its default network namespace mounted under the exec root;
  # without this, `infra.sh reset` could not delete .infra.
  umount "$DIR/exec/netns/default" 2>/dev/null || true
  drop_fragment docker
  echo "docker: down"
}

forget_stale_pid dockerd "$DIR/dockerd.pid"

case ${1:-status} in
  up) up ;;
  status) status ;;
  down) down ;;
  *) die "usage: hack/docker.sh up|status|down" ;;
esac
