#!/usr/bin/env bash
# Builds crypto-oms (the dashboard and the `oms` binary) and runs `oms serve`.
# Extra arguments go to `oms serve`, e.g. `scripts/run.sh --no-demo --listen 127.0.0.1:9090`.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }
command -v npm >/dev/null || { echo "npm not found: install Node.js 20 or newer" >&2; exit 1; }

echo "==> building the dashboard (frontend/dist)"
(cd frontend && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run build)

echo "==> building oms (release)"
cargo build --release --locked -p oms

exec ./target/release/oms serve "$@"
