#!/usr/bin/env bash
# Builds the Sluice image (default tag sluice:dev) with the Docker engine from
# `hack/infra.sh up docker`.
#
#   bash hack/build-image.sh [TAG]
#
# No registry is reachable here, so node:20-bookworm-slim cannot be pulled. The
# Dockerfile's BASE_IMAGE is then a local Node base, made once: the debootstrapped
# local/debian:bookworm (from hack/docker.sh) plus this machine's own `node`
# binary and npm. That node is the official dynamically linked Linux build
# (it needs only glibc, libstdc++ and libgcc, all in bookworm minbase), so it
# behaves exactly as it does on the host. The build stage alone gets a second
# local base that also trusts this machine's CA bundle (the registry is reached
# through a TLS-intercepting proxy whose CA is in it); the runtime image does
# not carry it. Set BASE_IMAGE (and BUILD_IMAGE) to use any other base, for
# example node:20-bookworm-slim where a registry is reachable.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TAG=${1:-sluice:dev}
# The engine of `hack/infra.sh up docker` when it runs, else whatever DOCKER_HOST (or Docker's default) names.
if [[ -z ${DOCKER_HOST:-} && -S $INFRA_DIR/docker/docker.sock ]]; then export DOCKER_HOST=unix://$INFRA_DIR/docker/docker.sock; fi
# The Docker CLI here has no buildx plugin; the classic builder handles multi-stage builds.
if ! docker buildx version >/dev/null 2>&1; then export DOCKER_BUILDKIT=0; fi

docker version --format '{{.Server.Version}}' >/dev/null 2>&1 \
  || die "no Docker engine at ${DOCKER_HOST:-the default socket}: run 'bash hack/infra.sh up docker' first"

# build_quiet TAG CONTEXT: docker build, its output kept in the log unless it fails.
build_quiet() {
  docker build -t "$1" "$2" >>"$LOG_DIR/build-image.log" 2>&1 \
    || die "building $1 failed: $(tail -10 "$LOG_DIR/build-image.log")"
}

# local_node_base: local/node:<version>-bookworm, the runtime base. Debian bookworm
# minbase without apt's caches and docs, plus this machine's node binary, squashed
# into one layer (FROM scratch) so that what is deleted is really gone. No npm:
# the runtime does not need it.
local_node_base() {
  local node_bin version tag ctx
  node_bin=$(readlink -f "$(command -v node)")
  version=$("$node_bin" -p process.versions.node)
  tag=local/node:$version-bookworm
  if ! docker image inspect "$tag" >/dev/null 2>&1; then
    docker image inspect local/debian:bookworm >/dev/null 2>&1 \
      || die "base image local/debian:bookworm missing: run 'bash hack/infra.sh up docker'"
    ctx=$(mktemp -d)
    cp "$node_bin" "$ctx/node"
    cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM local/debian:bookworm AS trimmed
RUN rm -rf /var/cache/apt/* /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/* \
      /usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/locale/*
FROM scratch
COPY --from=trimmed / /
COPY node /usr/local/bin/node
RUN node --version
CMD ["node"]
DOCKERFILE
    log "making local Node base $tag (node $version from $node_bin)"
    build_quiet "$tag" "$ctx"
    rm -rf "$ctx"
  fi
  echo "$tag"
}

# local_build_base BASE: BASE plus npm and the CA bundle this machine trusts, for
# `npm ci` in the build stage.
local_build_base() {
  local base=$1 tag="$1-build" ctx npm_dir bundle=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
  if ! docker image inspect "$tag" >/dev/null 2>&1; then
    npm_dir=$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)
    ctx=$(mktemp -d)
    cp -r "$npm_dir" "$ctx/npm"
    cp "$bundle" "$ctx/ca-certificates.crt"
    cat > "$ctx/Dockerfile" <<DOCKERFILE
FROM $base
COPY npm /usr/local/lib/node_modules/npm
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx && npm --version
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt npm_config_cafile=/etc/ssl/certs/ca-certificates.crt
DOCKERFILE
    log "making local build base $tag (npm from $npm_dir, CA bundle from $bundle)"
    build_quiet "$tag" "$ctx"
    rm -rf "$ctx"
  fi
  echo "$tag"
}

: > "$LOG_DIR/build-image.log"
if [[ -z ${BASE_IMAGE:-} ]]; then
  BASE_IMAGE=$(local_node_base)
  BUILD_IMAGE=${BUILD_IMAGE:-$(local_build_base "$BASE_IMAGE")}
fi
BUILD_IMAGE=${BUILD_IMAGE:-$BASE_IMAGE}
log "building $TAG on $BASE_IMAGE (build stage on $BUILD_IMAGE)"
start=$SECONDS
# --network host: the build stage's `npm ci` reaches the npm registry the way this machine does.
docker build --network host --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "BUILD_IMAGE=$BUILD_IMAGE" \
  -t "$TAG" "$REPO_ROOT" >>"$LOG_DIR/build-image.log" 2>&1 \
  || die "docker build failed: $(tail -15 "$LOG_DIR/build-image.log")"
log "built $TAG in $((SECONDS - start))s ($(docker image inspect "$TAG" --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}'))"
