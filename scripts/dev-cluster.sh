#!/usr/bin/env bash
# Runs a local one-node cluster in the foreground on 127.0.0.1: kube-apiserver (embedded store;
# KAJI_ETCD=1 runs a real etcd instead), kube-scheduler, kube-controller-manager and, as root, a
# kubelet with the built-in container runtime. State lives under ${KAJI_DIR:-$HOME/.kaji/dev};
# Ctrl-C stops the components (running containers are left to the next start's kubelet, which
# adopts them). Registries reachable over plain HTTP: KAJI_INSECURE_REGISTRIES="host:port ...".
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cargo build --release -p apiserver -p scheduler -p controller-manager -p kubelet

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

"$bin/kube-apiserver" "${store[@]}" --data-dir "$dir/apiserver" \
  --bind-address 127.0.0.1 --secure-port "$port" >"$dir/logs/apiserver.log" 2>&1 &
apiserver=$!
pids+=($apiserver)
kubeconfig="$dir/apiserver/admin.kubeconfig"
for _ in $(seq 1 100); do
  curl -sk "https://127.0.0.1:$port/readyz" >/dev/null 2>&1 && [ -f "$kubeconfig" ] && break
  sleep 0.1
done

"$bin/kube-scheduler" --kubeconfig "$kubeconfig" >"$dir/logs/scheduler.log" 2>&1 &
pids+=($!)
"$bin/kube-controller-manager" --kubeconfig "$kubeconfig" >"$dir/logs/controller-manager.log" 2>&1 &
pids+=($!)
if [ "$(id -u)" -eq 0 ]; then
  registries=()
  for registry in ${KAJI_INSECURE_REGISTRIES:-}; do registries+=(--insecure-registry "$registry"); done
  "$bin/kubelet" --kubeconfig "$kubeconfig" --node-name "$(hostname | tr '[:upper:]' '[:lower:]')" \
    --root-dir "$dir/kubelet" --address 127.0.0.1 --node-ip 127.0.0.1 --cgroup-root kaji \
    "${registries[@]}" >"$dir/logs/kubelet.log" 2>&1 &
  pids+=($!)
else
  echo "not root: running the control plane without a kubelet (pods stay Pending)"
fi

echo "kaji is up: export KUBECONFIG=$kubeconfig; logs in $dir/logs"
wait "$apiserver"
