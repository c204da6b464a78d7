#!/usr/bin/env bash
# The network of the real node's pods (hack/node.sh): a Linux bridge with an
# address of its own, so that pods reach the host's servers, which all listen on
# loopback:
#   - Kafka listens on the bridge address too (hack/kafka.sh adds the listener when
#     this bridge exists, and advertises it to the clients that come through it);
#   - Redis, SMTP and the API server (the `kubernetes` Service's ClusterIP) are
#     reached through DNAT to 127.0.0.1 in an iptables chain of our own, with
#     route_localnet on the bridge (the kernel otherwise drops packets to 127/8
#     that arrive on a real interface).
# It comes up before the servers (Kafka binds to the address) and goes down after
# them. Everything it changes on the host is undone by `down`: the bridge (with its
# per-interface sysctls) and the chains.
#
#   hack/podnet.sh up|status|down
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CHAIN=SLUICE-PODS
# Host ports of the servers that pods reach through DNAT (hack/redis.sh, hack/smtp.sh, hack/kube.sh).
REDIS_PORT=36379 SMTP_PORT=32525 APISERVER_PORT=36443
# The `kubernetes` Service: the first address of the API server's --service-cluster-ip-range.
KUBERNETES_SERVICE=10.96.0.1

need_root() { (( EUID == 0 )) || die "the pod network changes the host's network: run as root"; }

chains_present() {
  iptables -t nat -C PREROUTING -i "$POD_BRIDGE" -j "$CHAIN" 2>/dev/null &&
    iptables -t filter -C FORWARD -i "$POD_BRIDGE" -o "$POD_BRIDGE" -j "$CHAIN" 2>/dev/null
}

healthy() {
  pod_bridge_up && [[ $(cat "/proc/sys/net/ipv4/conf/$POD_BRIDGE/route_localnet" 2>/dev/null) == 1 ]] && chains_present
}

fragment() {
  write_fragment podnet "{\"podnet\":{\"bridge\":\"$POD_BRIDGE\",\"subnet\":\"$POD_SUBNET\",\"gateway\":\"$POD_GATEWAY\",\"redis\":{\"host\":\"$POD_GATEWAY\",\"port\":$REDIS_PORT},\"smtp\":{\"host\":\"$POD_GATEWAY\",\"port\":$SMTP_PORT},\"apiServer\":\"https://$KUBERNETES_SERVICE:443\"}}"
}

bridge_up() {
  if ! ip link show dev "$POD_BRIDGE" >/dev/null 2>&1; then
    local clash
    clash=$(ip -4 route show to match "$POD_GATEWAY" | grep -v '^default' | head -1) || true
    [[ -z $clash ]] || die "$POD_SUBNET overlaps a network of this host ($clash)"
    ip link add "$POD_BRIDGE" type bridge
  fi
  pod_bridge_up || ip addr add "$POD_GATEWAY/$POD_PREFIX_LEN" dev "$POD_BRIDGE"
  ip link set "$POD_BRIDGE" up
  # Per interface: it goes away with the bridge.
  echo 1 > "/proc/sys/net/ipv4/conf/$POD_BRIDGE/route_localnet"
}

chains_up() {
  # Rebuilt from scratch on every up, so a changed rule set never leaves an old rule behind.
  chains_down
  iptables -t nat -N "$CHAIN"
  iptables -t nat -A "$CHAIN" -d "$POD_GATEWAY" -p tcp --dport "$REDIS_PORT" -j DNAT --to-destination "127.0.0.1:$REDIS_PORT"
  iptables -t nat -A "$CHAIN" -d "$POD_GATEWAY" -p tcp --dport "$SMTP_PORT" -j DNAT --to-destination "127.0.0.1:$SMTP_PORT"
  iptables -t nat -A "$CHAIN" -d "$KUBERNETES_SERVICE" -p tcp --dport 443 -j DNAT --to-destination "127.0.0.1:$APISERVER_PORT"
  iptables -t nat -I PREROUTING -i "$POD_BRIDGE" -j "$CHAIN"
  # Pod to pod over the bridge passes the FORWARD chain (br_netfilter), whose policy a Docker engine sets to DROP.
  iptables -t filter -N "$CHAIN"
  iptables -t filter -A "$CHAIN" -j ACCEPT
  iptables -t filter -I FORWARD -i "$POD_BRIDGE" -o "$POD_BRIDGE" -j "$CHAIN"
}

chains_down() {
  while iptables -t nat -D PREROUTING -i "$POD_BRIDGE" -j "$CHAIN" 2>/dev/null; do :; done
  while iptables -t filter -D FORWARD -i "$POD_BRIDGE" -o "$POD_BRIDGE" -j "$CHAIN" 2>/dev/null; do :; done
  local t
  for t in nat filter; do
    iptables -t "$t" -F "$CHAIN" 2>/dev/null || true
    iptables -t "$t" -X "$CHAIN" 2>/dev/null || true
  done
}

up() {
  need_root
  take_lock podnet 60
  command -v iptables >/dev/null || apt_install iptables
  command -v ip >/dev/null || apt_install iproute2
  if ! healthy; then
    bridge_up
    chains_up
  fi
  fragment
  status
}

status() {
  if healthy; then
    echo "podnet: up $POD_BRIDGE $POD_GATEWAY/$POD_PREFIX_LEN (pods reach Redis $POD_GATEWAY:$REDIS_PORT, SMTP $POD_GATEWAY:$SMTP_PORT, the API server $KUBERNETES_SERVICE:443)"
  else
    echo "podnet: down"; return 1
  fi
}

down() {
  if pid_alive kubelet || pid_alive containerd; then die "the real node still runs on $POD_BRIDGE: run 'hack/infra.sh down node' first"; fi
  if (( EUID == 0 )); then
    chains_down 2>/dev/null || true
    ip link del "$POD_BRIDGE" 2>/dev/null || true
  fi
  drop_fragment podnet
  echo "podnet: down"
}

case ${1:-status} in
  up) up ;;
  status) status ;;
  down) down ;;
  *) die "usage: hack/podnet.sh up|status|down" ;;
esac
