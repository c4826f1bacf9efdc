#!/usr/bin/env bash
# Runs every test of the workspace (unit, storage conformance on etcd and in memory,
# apiserver integration tests against a real etcd, the python client tests), after
# installing what they need, plus formatting and lint checks.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# Benchmarks (harness = false) are built by clippy above but not run here: cargo bench runs them.
cargo test --workspace --lib --bins --tests
