#!/usr/bin/env bash
# Runs a local one-node cluster in the foreground: kube-apiserver (embedded store; KAJI_ETCD=1
# runs a real etcd instead), kube-scheduler and kube-controller-manager on the host, and, as
# root, a node in its own network namespace (kind-style) with a kubelet (built-in container
# runtime, pod network) and kube-proxy (iptables, cluster DNS). The host reaches the node at
# ${KAJI_NODE_NET:-10.201.0}.2 over a veth (NodePorts answer there) and the pods through a route to the
# pod CIDR. State lives under ${KAJI_DIR:-$HOME/.kaji/dev}; Ctrl-C stops the components
# (running containers are left to the next start's kubelet, which adopts them; KAJI_DOWN=1
# removes the node's namespace, veth and route instead of starting). Registries reachable over
# plain HTTP: KAJI_INSECURE_REGISTRIES="host:port ..." (a registry on the host listening on
# ${KAJI_NODE_NET:-10.201.0}.1 is reachable from the node).
set -euo pipefail
cd "$(dirname "$0")/.."

net="${KAJI_NODE_NET:-10.201.0}"
netns=kaji-dev-node
host_if=kaji-dev0
cluster_cidr=10.244.0.0/16
if [ "${KAJI_DOWN:-0}" = 1 ]; then
  ip route del "$cluster_cidr" via "$net.2" 2>/dev/null || true
  ip link del "$host_if" 2>/dev/null || true
  ip netns del "$netns" 2>/dev/null || true
  exit 0
fi

./scripts/deps.sh
cargo build --release -p apiserver -p scheduler -p controller-manager -p kubelet -p proxy

dir="${KAJI_DIR:-$HOME/.kaji/dev}"
port="${KAJI_PORT:-6443}"
bin=./target/release
mkdir -p "$dir/apiserver" "$dir/logs"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

store=()
if [ "${KAJI_ETCD:-0}" = 1 ]; then
  mkdir -p "$dir/etcd"
  etcd --name kaji --data-dir "$dir/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster kaji=http://127.0.0.1:2380 >"$dir/logs/etcd.log" 2>&1 &
  pids+=($!)
  store=(--etcd-servers http://127.0.0.1:2379)
fi

root=0
[ "$(id -u)" -eq 0 ] && root=1
bind=127.0.0.1
if [ "$root" = 1 ]; then
  # The node: a network namespace joined to the host by a veth pair.
  if ! ip netns list | grep -qw "$netns"; then
    ip netns add "$netns"
    ip link add "$host_if" type veth peer name eth0 netns "$netns"
    ip addr add "$net.1/24" dev "$host_if"
    ip link set "$host_if" up
    ip -n "$netns" link set lo up
    ip -n "$netns" addr add "$net.2/24" dev eth0
    ip -n "$netns" link set eth0 up
    ip -n "$netns" route add default via "$net.1"
  fi
  ip route replace "$cluster_cidr" via "$net.2"
  bind="$net.1"
fi

"$bin/kube-apiserver" "${store[@]}" --data-dir "$dir/apiserver" \
  --bind-address "$bind" --secure-port "$port" >"$dir/logs/apiserver.log" 2>&1 &
apiserver=$!
pids+=($apiserver)
kubeconfig="$dir/apiserver/admin.kubeconfig"
for _ in $(seq 1 100); do
  curl -sk "https://$bind:$port/readyz" >/dev/null 2>&1 && [ -f "$kubeconfig" ] && break
  sleep 0.1
done

"$bin/kube-scheduler" --kubeconfig "$kubeconfig" >"$dir/logs/scheduler.log" 2>&1 &
pids+=($!)
"$bin/kube-controller-manager" --kubeconfig "$kubeconfig" --cluster-cidr "$cluster_cidr" \
  >"$dir/logs/controller-manager.log" 2>&1 &
pids+=($!)
if [ "$root" = 1 ]; then
  registries=()
  for registry in ${KAJI_INSECURE_REGISTRIES:-}; do registries+=(--insecure-registry "$registry"); done
  node="$(hostname | tr '[:upper:]' '[:lower:]')"
  nsenter --net="/run/netns/$netns" "$bin/kubelet" --kubeconfig "$kubeconfig" --node-name "$node" \
    --root-dir "$dir/kubelet" --address "$net.2" --node-ip "$net.2" --cgroup-root kaji \
    --cluster-dns 10.96.0.10 "${registries[@]}" >"$dir/logs/kubelet.log" 2>&1 &
  pids+=($!)
  nsenter --net="/run/netns/$netns" "$bin/kube-proxy" --kubeconfig "$kubeconfig" \
    --hostname-override "$node" --cluster-cidr "$cluster_cidr" >"$dir/logs/kube-proxy.log" 2>&1 &
  pids+=($!)
else
  echo "not root: running the control plane without a node (pods stay Pending)"
fi

echo "kaji is up: export KUBECONFIG=$kubeconfig; logs in $dir/logs"
wait "$apiserver"
