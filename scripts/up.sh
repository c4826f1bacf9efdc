#!/usr/bin/env bash
# Runs a local cluster: installs what building and running need (iproute2, iptables and the
# build tools), builds every binary (release), then `kaji up` with the arguments given
# (default: one node; e.g. `--nodes 3`, `--name dev`, `--insecure-registry 10.250.0.1:5000`).
# Needs root (namespaces, links, mounts). `target/release/kaji down` removes the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh --run
cargo build --release --bins
exec ./target/release/kaji up "$@"
