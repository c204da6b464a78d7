#!/usr/bin/env bash
# The end-to-end suite (test/e2e) on a kind cluster: the same files as on the
# hack/ control plane's real node, with the dev Kafka, Redis and mailpit of
# examples/dev/ in place of the host's servers (test/e2e/services.ts).
#
#   bash hack/e2e-kind.sh [--keep]        # --keep: leave the cluster for inspection
#
# Needs a Docker engine and a registry that serves kindest/node (Docker Hub) and
# the public images of the Dockerfile and examples/dev/ (node:20-bookworm-slim,
# apache/kafka, redis, axllent/mailpit). On the machines of this project no
# registry is reachable, so `kind create cluster` fails to pull kindest/node:
# there the suite runs on the hack/ control plane and its real node
# (`npm run test:e2e`), which is what CI runs.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KEEP=false
[[ ${1:-} == --keep ]] && KEEP=true
CLUSTER=${KIND_CLUSTER:-sluice-e2e}
IMAGE=${SLUICE_E2E_IMAGE:-sluice:e2e}
KIND=${KIND:-$(command -v kind || echo "$SLUICE_CACHE/bin/kind")}
[[ -x $KIND ]] || die "no kind binary: install kind or run 'bash hack/infra.sh up kube' (it builds one into $SLUICE_CACHE/bin)"
command -v docker >/dev/null || die "no docker CLI"
docker version >/dev/null 2>&1 || die "no Docker engine at ${DOCKER_HOST:-the default socket}"
export PATH=$SLUICE_CACHE/bin:$PATH   # kubectl and helm built by hack/, if not installed

if ! "$KIND" get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  log "creating kind cluster $CLUSTER"
  "$KIND" create cluster --name "$CLUSTER" --wait 180s \
    || die "kind create cluster failed (kind pulls kindest/node from Docker Hub: is a registry reachable?)"
fi
cleanup() { $KEEP || "$KIND" delete cluster --name "$CLUSTER"; }
trap cleanup EXIT

BASE_IMAGE=${BASE_IMAGE:-node:20-bookworm-slim} bash "$REPO_ROOT/hack/build-image.sh" "$IMAGE"
log "loading $IMAGE into kind"
"$KIND" load docker-image "$IMAGE" --name "$CLUSTER"

KUBECONFIG_FILE=$INFRA_DIR/kind-$CLUSTER.kubeconfig
"$KIND" get kubeconfig --name "$CLUSTER" > "$KUBECONFIG_FILE"
log "running test/e2e against kind cluster $CLUSTER"
cd "$REPO_ROOT"
[[ -d dist ]] || npm run build
KUBECONFIG=$KUBECONFIG_FILE SLUICE_E2E_IMAGE=$IMAGE SLUICE_E2E_SKIP_BUILD=1 \
  npx vitest run --project e2e
