#!/usr/bin/env bash
# A real node beside the KWOK nodes: a kubelet (v1.36, built from the Go module
# proxy with hack/tools/kube's go.mod) on Debian's containerd + runc + CNI
# plugins, registered to the control plane of hack/kube.sh. Its pods really run,
# on the bridge of hack/podnet.sh, from images loaded into its containerd (no
# registry is reachable: nothing is ever pulled).
#
#   hack/node.sh up|status|down
#   hack/node.sh load IMAGE...     a Docker image into the node's containerd (as `kind load docker-image`)
#
# The node is tainted and labelled: only pods that ask for it land there (every
# other test keeps the KWOK nodes):
#   nodeSelector: {sluice.dev/node: real}
#   tolerations: [{key: sluice.dev/node, operator: Equal, value: real, effect: NoSchedule}]
#
# Host changes, all undone by `down` (and `hack/infra.sh reset`): the kubelet's
# sysctls (saved at the first `up`, restored), its iptables chains, the cgroup
# tree /sluice-node in every hierarchy, mounts under .infra/node (kubelet root,
# network namespaces, pod volumes), /var/log/containers and /var/lib/cni when
# they were not there before. containerd runs on a socket of its own (never the
# default one, which Docker's containerd looks for); its images live in the
# cache and survive resets, like Docker's.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

K8S_VERSION=v1.36.3           # hack/tools/kube/go.mod pins the same
BIN=$SLUICE_CACHE/bin
NODE_NAME=sluice-node
NODE_LABEL=sluice.dev/node=real
NODE_TAINT=sluice.dev/node=real:NoSchedule
DIR=$INFRA_DIR/node
SOCK=$DIR/containerd.sock
CROOT=$SLUICE_CACHE/node/containerd      # images: survive resets
CSTATE=$DIR/containerd-state
KUBELET_ROOT=$DIR/kubelet
CGROUP_ROOT=sluice-node
KUBELET_PORT=30250 KUBELET_HEALTHZ_PORT=30248
PAUSE_IMAGE=docker.io/local/pause:catatonit
KUBECONFIG_FILE=$INFRA_DIR/kube/admin.kubeconfig
PKI=$INFRA_DIR/kube/pki
SAVED=$DIR/host.saved                    # what the host looked like before the first up
# The sysctls the kubelet sets (pkg/kubelet/cm/container_manager_linux.go, setupKernelTunables).
SYSCTLS=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes)
# The chains the kubelet makes (pkg/kubelet/kubelet_network_linux.go), table:chain.
KUBELET_CHAINS=(mangle:KUBE-IPTABLES-HINT filter:KUBE-FIREWALL mangle:KUBE-KUBELET-CANARY nat:KUBE-KUBELET-CANARY filter:KUBE-KUBELET-CANARY)
# /var/lib/kubelet: the device manager keeps its socket there whatever --root-dir says.
HOST_DIRS=(/var/log/containers /var/lib/cni /run/containerd /var/lib/kubelet)
LOG=$LOG_DIR/node.log

ctr_() { ctr --address "$SOCK" --namespace k8s.io "$@"; }
kc() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }
need_root() { (( EUID == 0 )) || die "the real node runs containers: run as root"; }

install() {
  apt_install containerd runc containernetworking-plugins catatonit iptables nftables
  local want="kubelet=$K8S_VERSION go.sum=$(sha256sum "$REPO_ROOT/hack/tools/kube/go.sum" | cut -c1-16)"
  [[ -x $BIN/kubelet && -f $BIN/.kubelet && $(cat "$BIN/.kubelet") == "$want" ]] && return 0
  command -v go >/dev/null || die "Go is needed to build the kubelet (go 1.26+)"
  mkdir -p "$BIN"
  log "building kubelet $K8S_VERSION from the Go module proxy (first time: several minutes on 2 cores)"
  # Without the version stamps the node would report v0.0.0-master.
  local v=k8s.io/component-base/version minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  (cd "$REPO_ROOT/hack/tools/kube" && go build -o "$BIN/kubelet.tmp" -ldflags "-X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION" \
    k8s.io/kubernetes/cmd/kubelet) >>"$LOG" 2>&1 || die "kubelet build failed: see $LOG"
  mv "$BIN/kubelet.tmp" "$BIN/kubelet"
  echo "$want" > "$BIN/.kubelet"
}

# save_host: once per up/down cycle, before anything changes: the sysctls, which
# of the kubelet's chains and host directories already exist.
save_host() {
  [[ -f $SAVED ]] && return 0
  mkdir -p "$DIR"
  {
    local s t c d
    for s in "${SYSCTLS[@]}"; do echo "sysctl $s $(cat "/proc/sys/$s")"; done
    for t in iptables ip6tables; do
      command -v $t >/dev/null || continue
      for c in "${KUBELET_CHAINS[@]}"; do $t -t "${c%%:*}" -n -L "${c#*:}" >/dev/null 2>&1 && echo "chain $t $c"; done
    done
    for d in "${HOST_DIRS[@]}"; do [[ -e $d ]] && echo "dir $d"; done
    # With iptables-nft, the kubelet's chains bring tables into being (ip mangle, ip6 filter...).
    command -v nft >/dev/null && nft list tables 2>/dev/null || true
  } > "$SAVED.tmp"
  mv "$SAVED.tmp" "$SAVED"
}

cgroups_up() {
  local h
  for h in /sys/fs/cgroup/*/; do
    [[ -f $h/cgroup.procs ]] || continue
    mkdir -p "$h$CGROUP_ROOT"
    # A new cpuset has no CPUs or memory nodes until it is given some.
    if [[ -f $h/cpuset.cpus ]]; then
      [[ -n $(cat "$h$CGROUP_ROOT/cpuset.cpus") ]] || cat "$h/cpuset.cpus" > "$h$CGROUP_ROOT/cpuset.cpus"
      [[ -n $(cat "$h$CGROUP_ROOT/cpuset.mems") ]] || cat "$h/cpuset.mems" > "$h$CGROUP_ROOT/cpuset.mems"
    fi
  done
}

write_configs() {
  mkdir -p "$DIR/cni" "$CSTATE" "$CROOT" "$KUBELET_ROOT" "$DIR/pod-logs" "$DIR/kubelet-pki" "$DIR/volume-plugins"
  cat > "$DIR/containerd.toml" <<TOML
# Written by hack/node.sh.
version = 2
root = "$CROOT"
state = "$CSTATE"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$SOCK"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Root here lacks CAP_SYS_RESOURCE: without this every sandbox fails ("can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$CSTATE/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/cni"
    max_conf_num = 1
TOML
  # The bridge already carries the gateway address (hack/podnet.sh): the plugin
  # only attaches pods to it. No masquerading, no forwarding: pods talk to the host.
  cat > "$DIR/cni/10-sluice.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "sluice-pods",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$POD_BRIDGE",
      "isGateway": false,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "dataDir": "$DIR/cni-ipam",
        "ranges": [[{ "subnet": "$POD_SUBNET", "gateway": "$POD_GATEWAY" }]],
        "routes": [{ "dst": "0.0.0.0/0", "gw": "$POD_GATEWAY" }]
      }
    }
  ]
}
JSON
  cat > "$DIR/kubelet.yaml" <<YAML
# Written by hack/node.sh.
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $POD_GATEWAY
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: $PKI/ca.crt }
authorization: { mode: Webhook }
containerRuntimeEndpoint: unix://$SOCK
# cgroup v1 and no systemd here; containerd 1.6 cannot report its cgroup driver.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
podLogsDir: $DIR/pod-logs
volumePluginDir: $DIR/volume-plugins
resolvConf: /etc/resolv.conf
maxPods: 40
registerWithTaints: [{ key: ${NODE_TAINT%%=*}, value: "$(t=${NODE_TAINT#*=}; echo "${t%%:*}")", effect: ${NODE_TAINT##*:} }]
# A shared test machine: never evict the tests' pods, never delete the loaded images.
evictionHard: { memory.available: 50Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1% }
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
YAML
}

pause_image() {
  ctr_ images ls -q "name==$PAUSE_IMAGE" 2>/dev/null | grep -q . && return 0
  # A one-file image: Debian's static catatonit in pause mode, as an OCI layout tar.
  local tmp; tmp=$(mktemp -d)
  (
    cd "$tmp"
    mkdir -p root blobs/sha256
    cp "$(command -v catatonit)" root/catatonit
    tar --owner=0 --group=0 --numeric-owner --mtime=@0 -C root -cf layer.tar catatonit
    blob() { local d; d=$(sha256sum "$1" | cut -d' ' -f1); mv "$1" "blobs/sha256/$d"; echo "$d"; }
    local layer config manifest
    layer=$(blob layer.tar)
    printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/catatonit","-P"],"User":"65535:65535"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$layer" > config.json
    config=$(blob config.json)
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%d}]}' \
      "$config" "$(stat -c %s "blobs/sha256/$config")" "$layer" "$(stat -c %s "blobs/sha256/$layer")" > manifest.json
    local msize; msize=$(stat -c %s manifest.json)
    manifest=$(blob manifest.json)
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"catatonit"}}]}' \
      "$manifest" "$msize" "$PAUSE_IMAGE" > index.json
    echo '{"imageLayoutVersion":"1.0.0"}' > oci-layout
    tar -cf pause.tar oci-layout index.json blobs
  )
  ctr_ images import "$tmp/pause.tar" >>"$LOG" 2>&1 || { rm -rf "$tmp"; die "importing the pause image failed: see $LOG"; }
  rm -rf "$tmp"
  ctr_ images ls -q "name==$PAUSE_IMAGE" | grep -q . || die "the pause image $PAUSE_IMAGE is missing after its import: see $LOG"
  log "pause image $PAUSE_IMAGE (catatonit $(dpkg-query -W -f '${Version}' catatonit)) imported"
}

containerd_ready() { ctr --address "$SOCK" version >/dev/null 2>&1; }
node_ready() {
  [[ $(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}
kubelet_healthy() { curl -sf "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz" >/dev/null 2>&1; }
healthy() { pid_alive containerd && pid_alive kubelet && containerd_ready && kubelet_healthy && node_ready; }

start_containerd() {
  if pid_alive containerd && containerd_ready; then return 0; fi
  stop_pid containerd
  rm -f "$SOCK"
  start_bg containerd containerd --config "$DIR/containerd.toml"
  wait_for containerd 60 containerd_ready || die "containerd did not start: $(tail -5 "$LOG_DIR/containerd.log")"
}

start_kubelet() {
  if pid_alive kubelet && kubelet_healthy; then return 0; fi
  stop_pid kubelet
  # One kubelet per host: another tree's (or anyone's) would answer our health port.
  port_open "$KUBELET_HEALTHZ_PORT" && die "port $KUBELET_HEALTHZ_PORT is taken by a kubelet this tree did not start: one real node per host"
  # kubelet's cAdvisor finds containers through --containerd (the CRI endpoint is in the config).
  start_bg kubelet "$BIN/kubelet" --config "$DIR/kubelet.yaml" --kubeconfig "$KUBECONFIG_FILE" \
    --root-dir "$KUBELET_ROOT" --cert-dir "$DIR/kubelet-pki" --hostname-override "$NODE_NAME" --node-ip "$POD_GATEWAY" \
    --node-labels "$NODE_LABEL" --containerd "$SOCK" --v 1
  wait_for "kubelet" 60 kubelet_healthy || die "the kubelet did not start: $(tail -5 "$LOG_DIR/kubelet.log")"
}

fragment() {
  write_fragment node "{\"node\":{\"name\":\"$NODE_NAME\",\"nodeSelector\":{\"${NODE_LABEL%%=*}\":\"${NODE_LABEL#*=}\"},\"tolerations\":[{\"key\":\"${NODE_TAINT%%=*}\",\"operator\":\"Equal\",\"value\":\"real\",\"effect\":\"NoSchedule\"}],\"containerd\":\"$SOCK\",\"podSubnet\":\"$POD_SUBNET\"}}"
}

up() {
  need_root
  take_lock node 1200
  install
  bash "$REPO_ROOT/hack/podnet.sh" status >/dev/null || die "the pod network is down: run 'hack/infra.sh up podnet' first"
  kc get --raw /readyz >/dev/null 2>&1 || die "the control plane is down: run 'hack/infra.sh up kube' first"
  [[ -f $PKI/apiserver-kubelet-client.crt ]] || die "the API server has no kubelet client certificate: run 'hack/infra.sh up kube' (it adds one)"
  if healthy; then fragment; status; return 0; fi
  save_host
  cgroups_up
  write_configs
  start_containerd
  pause_image
  start_kubelet
  wait_for "node $NODE_NAME" 120 node_ready || die "node $NODE_NAME did not become Ready: $(tail -5 "$LOG_DIR/kubelet.log")"
  # A node drained by an earlier down is schedulable again.
  kc uncordon "$NODE_NAME" >/dev/null
  fragment
  status
}

status() {
  if healthy; then
    local rss=0 p
    for p in containerd kubelet; do rss=$((rss + $(awk '/VmRSS/ {print $2}' "/proc/$(cat "$INFRA_DIR/$p.pid")/status"))); done
    echo "node: up $NODE_NAME $POD_GATEWAY kubelet $("$BIN/kubelet" --version | awk '{print $2}'), containerd $(containerd --version | awk '{print $3}'), $(kc get pods -A --field-selector "spec.nodeName=$NODE_NAME" --no-headers 2>/dev/null | wc -l) pods, kubelet+containerd $((rss / 1024)) MB"
  else
    local c; for c in containerd kubelet; do pid_alive $c || echo "node: $c is not running (log: $LOG_DIR/$c.log)"; done
    echo "node: down"; return 1
  fi
}

# load IMAGE...: from the Docker engine of hack/docker.sh into the node's
# containerd, skipped when the same image (by Docker's image id) is there already.
load() {
  need_root
  (( $# )) || die "usage: hack/node.sh load IMAGE..."
  containerd_ready || die "the node's containerd is not running: run 'hack/infra.sh up node'"
  [[ -z ${DOCKER_HOST:-} && -S $INFRA_DIR/docker/docker.sock ]] && export DOCKER_HOST=unix://$INFRA_DIR/docker/docker.sock
  mkdir -p "$DIR/images"
  local image id ref mark
  for image in "$@"; do
    id=$(docker image inspect --format '{{.Id}}' "$image") || die "no image $image in the Docker engine at ${DOCKER_HOST:-the default socket}"
    ref=$image; [[ $ref == */* ]] || ref=library/$ref; [[ ${ref%%/*} == *.* || ${ref%%/*} == *:* || ${ref%%/*} == localhost ]] || ref=docker.io/$ref
    [[ ${ref##*/} == *:* ]] || ref=$ref:latest
    mark=$DIR/images/$(echo "$ref" | tr '/:' '__')
    if [[ -f $mark && $(cat "$mark") == "$id" ]] && ctr_ images ls -q "name==$ref" | grep -q .; then
      log "$image already on the node ($id)"
      continue
    fi
    local start=$SECONDS
    docker save "$image" | ctr_ images import --no-unpack=false - >>"$LOG" 2>&1 || die "importing $image failed: see $LOG"
    echo "$id" > "$mark"
    log "loaded $image into the node ($((SECONDS - start))s)"
  done
}

# umount_under DIR...: every mount at or below the directories, deepest first.
umount_under() {
  local d m
  for d in "$@"; do
    [[ -e $d ]] || continue
    d=$(cd -P "$d" && pwd)
    while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done < <(awk -v d="$d" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r)
  done
}

down() {
  # 1. The pods, through the API while the kubelet still runs: their containers
  #    stop, their sandboxes (network namespaces, veths) go.
  if pid_alive kubelet && kc get --raw /readyz >/dev/null 2>&1; then
    kc cordon "$NODE_NAME" >/dev/null 2>&1 || true
    kc delete pods -A --field-selector "spec.nodeName=$NODE_NAME" --grace-period 10 --wait=false >/dev/null 2>&1 || true
    wait_for "pods off $NODE_NAME" 60 bash -c "[[ -z \$('$BIN/kubectl' --kubeconfig '$KUBECONFIG_FILE' get pods -A --field-selector spec.nodeName=$NODE_NAME -o name 2>/dev/null) ]]" \
      || kc delete pods -A --field-selector "spec.nodeName=$NODE_NAME" --force --grace-period 0 >/dev/null 2>&1 || true
  fi
  # 2. The kubelet (and its Node object: the next up registers it again).
  stop_pid kubelet
  kc delete node "$NODE_NAME" --wait=false >/dev/null 2>&1 || true
  # 3. Whatever containers are left, then containerd and the shims of its containers.
  if pid_alive containerd && containerd_ready; then
    local id
    for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
    for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$id" >/dev/null 2>&1 || true; done
    for id in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers delete "$id" >/dev/null 2>&1 || true; done
  fi
  stop_pid containerd
  local pid
  for pid in $(pgrep -f -- "containerd-shim-runc-v2 -namespace k8s.io -id [0-9a-f]* -address $SOCK" 2>/dev/null); do
    kill -9 "$pid" 2>/dev/null || true
  done
  # 4. Mounts (network namespaces, pod volumes, the kubelet's bind mount of its root), cgroups.
  umount_under "$CSTATE" "$KUBELET_ROOT" "$CROOT"
  local h c
  for h in /sys/fs/cgroup/*/; do
    [[ -d $h$CGROUP_ROOT ]] || continue
    while read -r c; do rmdir "$c" 2>/dev/null || true; done < <(find "$h$CGROUP_ROOT" -depth -type d)
  done
  # 5. What the host looked like before: sysctls, the kubelet's chains, host directories.
  if [[ -f $SAVED ]]; then
    local kind a b t
    while read -r kind a b; do
      [[ $kind == sysctl ]] && echo "$b" > "/proc/sys/$a" 2>/dev/null || true
    done < "$SAVED"
    for t in iptables ip6tables; do
      command -v $t >/dev/null || continue
      for c in "${KUBELET_CHAINS[@]}"; do
        grep -qx "chain $t $c" "$SAVED" && continue
        while $t -t "${c%%:*}" -D INPUT -j "${c#*:}" 2>/dev/null; do :; done
        while $t -t "${c%%:*}" -D OUTPUT -j "${c#*:}" 2>/dev/null; do :; done
        $t -t "${c%%:*}" -F "${c#*:}" 2>/dev/null || true
        $t -t "${c%%:*}" -X "${c#*:}" 2>/dev/null || true
      done
    done
    # Tables that only the kubelet's chains made, and that hold no rule now.
    if command -v nft >/dev/null; then
      local family name
      while read -r _ family name; do
        grep -qx "table $family $name" "$SAVED" && continue
        nft -j list table "$family" "$name" 2>/dev/null | grep -q '"rule"' && continue
        nft delete table "$family" "$name" 2>/dev/null || true
      done < <(nft list tables 2>/dev/null)
    fi
    local d
    for d in "${HOST_DIRS[@]}"; do
      grep -qx "dir $d" "$SAVED" && continue
      [[ $d == /run/containerd ]] && { rmdir "$d/s" "$d" 2>/dev/null || true; continue; }
      rm -rf "$d"
    done
    rm -f "$SAVED"
  fi
  drop_fragment node
  echo "node: down"
}

forget_stale_pid containerd "$DIR/containerd.toml"
forget_stale_pid kubelet "$BIN/kubelet"

case ${1:-status} in
  up) up ;;
  status) status ;;
  down) down ;;
  load) shift; load "$@" ;;
  *) die "usage: hack/node.sh up|status|down|load IMAGE..." ;;
esac
