#!/usr/bin/env bash
# Builds crypto-oms (the dashboard and the `oms` binary) and runs `oms serve`.
# Extra arguments go to `oms serve`, e.g. `scripts/run.sh --no-demo --listen 127.0.0.1:9090`.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }
command -v npm >/dev/null || { echo "npm not found: install Node.js 20 or newer" >&2; exit 1; }

# The Kafka adapter builds its bundled librdkafka with cmake (and curl's headers).
have_curl_headers() { compgen -G '/usr/include/curl/curl.h' >/dev/null || compgen -G '/usr/include/*/curl/curl.h' >/dev/null; }
if ! command -v cmake >/dev/null || ! have_curl_headers; then
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    echo "==> apt-get install cmake libcurl4-openssl-dev (to build the bundled librdkafka)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends cmake libcurl4-openssl-dev >/dev/null
fi

echo "==> building the dashboard (frontend/dist)"
(cd frontend && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run build)

echo "==> building oms (release)"
cargo build --release --locked -p oms

exec "${CARGO_TARGET_DIR:-target}/release/oms" serve "$@"
