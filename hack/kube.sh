#!/usr/bin/env bash
# A real Kubernetes control plane without Docker, for the operator and e2e tests:
# etcd, kube-apiserver (RBAC), kube-controller-manager (ReplicaSets, Pods, GC),
# kube-scheduler, a host-path volume provisioner (hack/kube/provisioner.mjs) and
# KWOK, which keeps fake Nodes Ready and moves their Pods to Running/Ready (no
# container really runs). hack/node.sh adds a real node.
# Binaries (plus kubectl, helm and kind) are built once from the Go module proxy
# and cached in $SLUICE_CACHE/bin.
#
#   hack/kube.sh install|up|status|down
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

K8S_VERSION=v1.36.3          # hack/tools/kube/go.mod pins the same
HELM_VERSION=v3.22.0
KWOK_VERSION=v0.8.0
KIND_VERSION=v0.33.0
BIN=$SLUICE_CACHE/bin
STAMP=$BIN/.versions
WANT="k8s=$K8S_VERSION helm=$HELM_VERSION kwok=$KWOK_VERSION kind=$KIND_VERSION"
DIR=$INFRA_DIR/kube
PKI=$DIR/pki
KUBECONFIG_FILE=$DIR/admin.kubeconfig
ETCD_PORT=32379 ETCD_PEER_PORT=32380 APISERVER_PORT=36443 KCM_PORT=30257 SCHED_PORT=30259
NODES=${SLUICE_KWOK_NODES:-2}
LOG=$LOG_DIR/kube.log

install() {
  if [[ -f $STAMP && $(cat "$STAMP") == "$WANT" ]]; then return 0; fi
  command -v go >/dev/null || die "Go is needed to build the control plane (go 1.26+)"
  mkdir -p "$BIN"
  log "building etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl $K8S_VERSION (first time: many minutes on 2 cores)"
  (cd "$REPO_ROOT/hack/tools/kube" && go build -o "$BIN/" go.etcd.io/etcd/server/v3 \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl) >>"$LOG" 2>&1 \
    || die "control-plane build failed: see $LOG"
  mv "$BIN/v3" "$BIN/etcd" 2>/dev/null || mv "$BIN/server" "$BIN/etcd"
  log "building helm $HELM_VERSION, kwok $KWOK_VERSION, kind $KIND_VERSION"
  for pkg in "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kind@$KIND_VERSION"; do
    GOBIN=$BIN go install "$pkg" >>"$LOG" 2>&1 || die "build of $pkg failed: see $LOG"
  done
  echo "$WANT" > "$STAMP"
}

pki() {
  kubelet_client_cert
  [[ -f $PKI/admin.token ]] && return 0
  mkdir -p "$PKI"
  (
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=sluice-test-ca" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.96.0.1\n' > san.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 3650 -extfile san.ext 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    token=$(openssl rand -hex 24)
    # One cluster-admin identity for tests and the control-plane components.
    echo "$token,sluice-admin,sluice-admin,system:masters" > tokens.csv
    echo "$token" > admin.token
  )
  kubelet_client_cert
}

# The API server's identity towards kubelets (kubectl logs/exec/port-forward on
# the real node of hack/node.sh), in the group that may do anything.
kubelet_client_cert() {
  [[ -f $PKI/ca.key && ! -f $PKI/apiserver-kubelet-client.crt ]] || return 0
  (
    cd "$PKI"
    openssl req -newkey rsa:2048 -nodes -keyout apiserver-kubelet-client.key -out apiserver-kubelet-client.csr \
      -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" 2>/dev/null
    openssl x509 -req -in apiserver-kubelet-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out apiserver-kubelet-client.crt -days 3650 2>/dev/null
  )
}

kubeconfig() {
  cat > "$KUBECONFIG_FILE" <<KC
apiVersion: v1
kind: Config
clusters:
- name: sluice-test
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: sluice-admin
  user:
    token: $(cat "$PKI/admin.token")
contexts:
- name: sluice-test
  context: {cluster: sluice-test, user: sluice-admin}
current-context: sluice-test
KC
}

kc() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }
apiserver_ready() { kc get --raw /readyz >/dev/null 2>&1; }
# An API server started before it knew how to reach a kubelet (an older hack/kube.sh).
apiserver_current() { tr '\0' ' ' < "/proc/$(cat "$INFRA_DIR/kube-apiserver.pid")/cmdline" 2>/dev/null | grep -q -- '--kubelet-client-certificate'; }
SERVERS=(etcd kube-apiserver kube-controller-manager kube-scheduler pv-provisioner kwok)
healthy() { local c; for c in "${SERVERS[@]}"; do pid_alive "$c" || return 1; done; apiserver_ready; }

start_etcd() {
  pid_alive etcd && return 0
  start_bg etcd "$BIN/etcd" --name sluice --data-dir "$DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "sluice=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --log-level warn
  wait_for etcd 60 curl -sf "http://127.0.0.1:$ETCD_PORT/health" || die "etcd did not start: $(tail -5 "$LOG_DIR/etcd.log")"
}

start_apiserver() {
  if pid_alive kube-apiserver; then
    apiserver_current && return 0
    log "restarting kube-apiserver with the kubelet client flags (for the real node)"
    stop_pid kube-apiserver
  fi
  start_bg kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" --client-ca-file "$PKI/ca.crt" \
    --token-auth-file "$PKI/tokens.csv" --authorization-mode RBAC \
    --service-cluster-ip-range 10.96.0.0/16 --allow-privileged=true \
    --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$PKI/sa.pub" \
    --service-account-signing-key-file "$PKI/sa.key" --cert-dir "$PKI" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP
  wait_for kube-apiserver 120 apiserver_ready || die "kube-apiserver did not become ready: $(tail -5 "$LOG_DIR/kube-apiserver.log")"
}

start_controllers() {
  pid_alive kube-controller-manager || start_bg kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig "$KUBECONFIG_FILE" --authentication-kubeconfig "$KUBECONFIG_FILE" --authorization-kubeconfig "$KUBECONFIG_FILE" \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --leader-elect=false \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --enable-hostpath-provisioner --controllers '*'
  pid_alive kube-scheduler || start_bg kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig "$KUBECONFIG_FILE" --authentication-kubeconfig "$KUBECONFIG_FILE" --authorization-kubeconfig "$KUBECONFIG_FILE" \
    --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" --leader-elect=false
  # Directories under .infra/kube/volumes that any pod's user may write (see the script).
  pid_alive pv-provisioner || start_bg pv-provisioner node "$REPO_ROOT/hack/kube/provisioner.mjs" --kubeconfig "$KUBECONFIG_FILE" --dir "$DIR/volumes"
  # Pods annotated kwok.x-k8s.io/status=custom keep the status a test writes
  # (that is how tests play a kubelet reporting CrashLoopBackOff and the like).
  pid_alive kwok || start_bg kwok "$BIN/kwok" --kubeconfig "$KUBECONFIG_FILE" --config "$REPO_ROOT/hack/kube/kwok-stages.yaml" \
    --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --disregard-status-with-annotation-selector kwok.x-k8s.io/status=custom \
    --cidr 10.244.0.0/16 --node-ip 127.0.0.1 --server-address 127.0.0.1:30247
}

seed_cluster() {
  # Fake nodes KWOK keeps Ready, and a default StorageClass whose PVCs
  # hack/kube/provisioner.mjs binds (it serves any access mode).
  local i
  for ((i = 0; i < NODES; i++)); do
    kc apply --server-side --field-manager sluice-hack -f - >/dev/null <<NODE
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {kubernetes.io/hostname: kwok-node-$i, kubernetes.io/os: linux, kubernetes.io/arch: amd64, type: kwok}
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "250"}
  capacity: {cpu: "32", memory: 256Gi, pods: "250"}
NODE
  done
  # A class's provisioner cannot change: one of an older hack/kube.sh is replaced (its volumes stay bound).
  local was; was=$(kc get storageclass standard -o jsonpath='{.provisioner}' 2>/dev/null) || true
  [[ -z $was || $was == sluice.dev/host-path ]] || kc delete storageclass standard >/dev/null
  kc apply --server-side --field-manager sluice-hack -f - >/dev/null <<'SC'
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: sluice.dev/host-path
reclaimPolicy: Delete
volumeBindingMode: Immediate
SC
  wait_for "kwok nodes" 60 bash -c "[[ \$('$BIN/kubectl' --kubeconfig '$KUBECONFIG_FILE' get nodes -o jsonpath='{.items[*].status.conditions[?(@.type==\"Ready\")].status}' | grep -o True | wc -l) -ge $NODES ]]" \
    || die "KWOK nodes did not become Ready: $(tail -5 "$LOG_DIR/kwok.log")"
  wait_for "default service account" 60 kc -n default get serviceaccount default || die "controller-manager is not creating service accounts: $(tail -5 "$LOG_DIR/kube-controller-manager.log")"
}

up() {
  take_lock kube 1800
  install
  if healthy && apiserver_current; then status; return 0; fi
  mkdir -p "$DIR"
  pki
  kubeconfig
  start_etcd
  start_apiserver
  start_controllers
  seed_cluster
  write_fragment kube "{\"kube\":{\"kubeconfig\":\"$KUBECONFIG_FILE\",\"server\":\"https://127.0.0.1:$APISERVER_PORT\",\"kubectl\":\"$BIN/kubectl\",\"helm\":\"$BIN/helm\",\"kind\":\"$BIN/kind\",\"binDir\":\"$BIN\"}}"
  status
}

status() {
  if healthy; then
    echo "kube: up https://127.0.0.1:$APISERVER_PORT (KUBECONFIG=$KUBECONFIG_FILE; $(kc get nodes -l type=kwok --no-headers 2>/dev/null | wc -l) kwok nodes)"
  else
    local c; for c in "${SERVERS[@]}"; do pid_alive $c || echo "kube: $c is not running (log: $LOG_DIR/$c.log)"; done
    echo "kube: down"; return 1
  fi
}

down() {
  local c
  for c in kwok pv-provisioner kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_pid "$c"; done
  drop_fragment kube
  echo "kube: down"
}

for c in etcd kube-apiserver kube-controller-manager kube-scheduler kwok; do forget_stale_pid "$c" "$BIN/$c"; done
forget_stale_pid pv-provisioner "hack/kube/provisioner.mjs --kubeconfig $KUBECONFIG_FILE"

case ${1:-status} in
  install) install ;;
  up) up ;;
  status) status ;;
  down) down ;;
  *) die "usage: hack/kube.sh install|up|status|down" ;;
esac
