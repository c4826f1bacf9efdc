#!/usr/bin/env bash
# Runs every test of the workspace (unit, storage conformance on etcd and in memory,
# apiserver integration tests against a real etcd, the python client tests), after
# installing what they need, plus formatting and lint checks.
set -euo pipefail
cd "$(dirname "$0")/.."
# Disk is what a fresh build of every test target runs short of first: say how much there is.
trap 'echo "disk at exit: $(df -h . | tail -1)"; du -sh "${CARGO_TARGET_DIR:-target}" 2>/dev/null || true' EXIT
echo "disk at start: $(df -h . | tail -1)"
./scripts/deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# Benchmarks (harness = false) are built by clippy above but not run here: cargo bench runs them.
# The end-to-end tests start the components' real binaries from the target directory
# (testkit::workspace_binary); cargo test only builds a package's own binaries for its own
# integration tests, so build them all first, and fresh.
cargo build --workspace --bins
# --no-fail-fast: one run reports every failing test binary, not only the first.
cargo test --workspace --lib --bins --tests --no-fail-fast
