#!/usr/bin/env bash
# Runs every test of crypto-oms:
#   1. Rust: unit, property and integration tests (the integration tests start real `oms`
#      processes, kill them with SIGKILL and restart them);
#   2. the dashboard's unit tests (Vitest) and production build;
#   3. end-to-end browser tests (Debian's Chromium, playwright-core) against a real `oms serve`.
# Artifacts (screenshots, server logs) go to test-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
artifacts="$root/test-artifacts"
mkdir -p "$artifacts"
passed=0
failed=0
suite() { # name, command...
    local name=$1; shift
    echo "==> $name"
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $name" >&2; fi
}

scripts/install-test-deps.sh

echo "==> building (debug)"
cargo build --workspace --locked

suite "rust tests (cargo nextest)" cargo nextest run --workspace --locked --no-fail-fast

echo "==> installing the dashboard's packages"
(cd frontend && npm ci --no-audit --no-fund)
suite "dashboard unit tests (vitest)" bash -c 'cd frontend && npm test'
suite "dashboard build" bash -c 'cd frontend && npm run build'
suite "end-to-end browser tests" scripts/e2e.sh "$artifacts"

echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
