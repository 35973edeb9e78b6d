#!/usr/bin/env bash
# Distributed-mode load benchmark on this machine: starts PostgreSQL, Redis and the
# Kafka-compatible broker tansu on loopback ports, the five services as separate `oms` processes,
# then `oms loadgen` against ingestion. Usage: scripts/bench-distributed.sh [RATE] [SECONDS]
# Needs what scripts/install-test-deps.sh installs and a release build (cargo build --release -p oms).
# SETTLE_SECONDS (default 300): how long acknowledged orders may take to leave NEW afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-1000}
secs=${2:-30}
oms=$(pwd)/target/release/oms
[ -x "$oms" ] || { echo "build first: cargo build --release -p oms" >&2; exit 1; }
work=$(mktemp -d)
chmod 755 "$work"
pids=()
# BENCH_LOGS=DIR keeps every server's log there.
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
    if [ -n "${BENCH_LOGS:-}" ]; then mkdir -p "$BENCH_LOGS" && cp "$work"/*.log "$BENCH_LOGS"/; fi
    rm -rf "$work"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

rport=$(port); redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >"$work/redis.log" 2>&1 & pids+=($!)
pgbin=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
pport=$(port); mkdir -p "$work/pg"; chown postgres "$work/pg"
runuser -u postgres -- "$pgbin/initdb" -D "$work/pg/data" -U oms --auth=trust >/dev/null
runuser -u postgres -- "$pgbin/postgres" -D "$work/pg/data" -p "$pport" -k "$work/pg" -c listen_addresses=127.0.0.1 >"$work/pg.log" 2>&1 & pids+=($!)
kport=$(port); tansu=$(command -v tansu || echo "$HOME/.cargo/bin/tansu")
RUST_LOG=warn "$tansu" broker --listener-url "tcp://127.0.0.1:$kport" --advertised-listener-url "tcp://127.0.0.1:$kport" --storage-engine memory://tansu/ >"$work/tansu.log" 2>&1 & pids+=($!)
wait_port "$rport"; wait_port "$pport"; wait_port "$kport"
runuser -u postgres -- "$pgbin/createdb" -h 127.0.0.1 -p "$pport" -U oms oms

. scripts/lib/bench-config.sh
cat >"$work/distributed.toml" <<TOML
[server]
sessionSecret = "bench-session-secret-0123456789abcdef"
# Two accounts carry the whole load: no per-account request limit.
requestsPerSecond = 0
[log]
backend = "kafka"
[kafka]
bootstrapServers = "127.0.0.1:$kport"
broker = "tansu"
[store]
backend = "postgres"
url = "postgres://oms@127.0.0.1:$pport/oms"
[idempotency]
backend = "redis"
redisUrl = "redis://127.0.0.1:$rport/"
[demo]
enabled = false
$(bench_accounts_toml)
TOML
start() { # role port
    "$oms" --config "$work/distributed.toml" "$1" --listen "127.0.0.1:$2" --data-dir "$work/$1" >"$work/$1.log" 2>&1 & pids+=($!)
    for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$2/ready" >/dev/null 2>&1 && return 0; sleep 0.2; done
    echo "$1 never became ready:" >&2; tail -20 "$work/$1.log" >&2; return 1
}
iport=$(port); start ingestion "$iport"
start risk "$(port)"; start venue "$(port)"; start processor "$(port)"
mport=$(port); start marketdata "$mport"
echo "distributed: ingestion on 127.0.0.1:$iport; Kafka (tansu) :$kport, PostgreSQL :$pport, Redis :$rport"
"$oms" loadgen --addr "127.0.0.1:$iport" --e2e --ws-addr "127.0.0.1:$mport" --api-key "$key_a,$key_b" \
    --rate "$rate" --duration "$secs" --connections 256 --bare-seconds 5 --settle-seconds "${SETTLE_SECONDS:-300}"
