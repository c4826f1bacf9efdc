#!/usr/bin/env bash
# Runs every test of the workspace (unit, storage conformance on etcd and in memory,
# apiserver integration tests against a real etcd, the python client tests), after
# installing what they need, plus formatting and lint checks.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --all-targets
