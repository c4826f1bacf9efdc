#!/usr/bin/env bash
# Runs a local control plane in the foreground: etcd and kube-apiserver on 127.0.0.1.
# State lives under ${KAJI_DIR:-$HOME/.kaji/dev}; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cargo build --release -p apiserver

dir="${KAJI_DIR:-$HOME/.kaji/dev}"
port="${KAJI_PORT:-6443}"
mkdir -p "$dir/etcd" "$dir/apiserver"

etcd --name kaji --data-dir "$dir/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster kaji=http://127.0.0.1:2380 >"$dir/etcd.log" 2>&1 &
etcd_pid=$!
trap 'kill "$etcd_pid" 2>/dev/null; wait "$etcd_pid" 2>/dev/null' EXIT

echo "etcd: pid $etcd_pid, log $dir/etcd.log"
echo "kube-apiserver: https://127.0.0.1:$port; once ready: export KUBECONFIG=$dir/apiserver/admin.kubeconfig"
./target/release/kube-apiserver --etcd-servers http://127.0.0.1:2379 --data-dir "$dir/apiserver" \
  --bind-address 127.0.0.1 --secure-port "$port"
