#!/usr/bin/env bash
# Starts a real `oms serve` on a fresh data directory and a free loopback port, runs the
# dashboard's end-to-end tests in Chromium against it, then stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
artifacts=${1:-test-artifacts}
mkdir -p "$artifacts"
data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
bin=${CARGO_TARGET_DIR:-target}/debug/oms
[ -x "$bin" ] || cargo build -p oms --locked
# An operator key for the admin API steps (the global kill switch).
admin=$("$bin" accounts admin-key)
admin_key=$(grep -o 'oms_admin_[0-9a-f]\{64\}' <<<"$admin" | head -1)
admin_hash=$(sed -n 's/.*OMS_ADMIN__KEY_SHA256=//p' <<<"$admin")
[ -n "$admin_key" ] && [ -n "$admin_hash" ] || { echo "oms accounts admin-key printed no key: $admin"; exit 1; }
OMS_ADMIN__KEY_SHA256="$admin_hash" "$bin" serve --data-dir "$data" --listen "127.0.0.1:$port" >"$artifacts/e2e-server.out" 2>"$artifacts/e2e-server.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break
    kill -0 $pid 2>/dev/null || { echo "oms serve exited:"; cat "$artifacts/e2e-server.log"; exit 1; }
    sleep 0.2
done
key=$(grep -o 'oms_[0-9a-f]\{64\}' "$artifacts/e2e-server.out" | head -1)
[ -n "$key" ] || { echo "no demo API key printed"; cat "$artifacts/e2e-server.out"; exit 1; }
cd frontend
OMS_URL="http://127.0.0.1:$port" OMS_API_KEY="$key" OMS_ADMIN_KEY="$admin_key" OMS_ARTIFACTS="$(cd .. && realpath "$artifacts")" npm run e2e
