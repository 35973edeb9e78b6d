#!/usr/bin/env bash
# Embedded-mode load benchmark on this machine: `oms serve` (every service in one process, the
# embedded log with fsync on, SQLite) and `oms loadgen` against it, on loopback.
# Usage: scripts/bench-embedded.sh [RATE] [SECONDS] [CONNECTIONS]
# Needs a release build (cargo build --release -p oms). Extra loadgen flags via LOADGEN_ARGS;
# BARE_SECONDS (default 10) for the bare-endpoint comparison. With RESTART=1 the server is then
# killed with SIGKILL and started again on the same data: prints the time to /ready and until a
# new order placed right then is FILLED (snapshots restored, log tails replayed).
# IDEMPOTENCY=sqlite keeps idempotency keys in SQLite instead of the journal (the default).
# ROLE=ingestion runs `oms ingestion` alone (the API, idempotency keys and the log; no pipeline)
# to see what the rest costs. Runs of 10 s or more print the CPU time per order of the server
# and of the load generator, from /proc over 5 s in the middle of the run.
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-10000}
secs=${2:-60}
conns=${3:-256}
oms=${CARGO_TARGET_DIR:-$(pwd)/target}/release/oms
[ -x "$oms" ] || { echo "build first: cargo build --release -p oms" >&2; exit 1; }
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

. scripts/lib/bench-config.sh
cat >"$work/bench.toml" <<TOML
[server]
sessionSecret = "bench-session-secret-0123456789abcdef"
# Two accounts carry the whole load: no per-account request limit.
requestsPerSecond = 0
logLevel = "info"
[demo]
enabled = false
[idempotency]
backend = "${IDEMPOTENCY:-journal}"
$(bench_accounts_toml)
TOML
role=${ROLE:-serve}
case "$role" in
    serve) role_args=(serve --no-demo); settle=300 ;;
    ingestion)
        role_args=(ingestion)
        settle=0
        [ "${RESTART:-0}" = 1 ] && { echo "RESTART=1 needs the whole pipeline (ROLE=serve)" >&2; exit 2; }
        ;;
    *) echo "ROLE must be serve or ingestion" >&2; exit 2 ;;
esac
start() {
    "$oms" --config "$work/bench.toml" "${role_args[@]}" --data-dir "$work/data" \
        --listen "127.0.0.1:$port" >>"$work/serve.log" 2>&1 &
    pid=$!
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# CPU time per order of the server and the load generator over 5 s mid-run, in the background.
sample_cpu() { # loadgen-pid
    sleep $((secs / 2 - 2))
    local s0 l0 s1 l1 hz
    s0=$(ticks "$pid") && l0=$(ticks "$1") || return 0
    sleep 5
    s1=$(ticks "$pid") && l1=$(ticks "$1") || return 0
    hz=$(getconf CLK_TCK)
    echo "CPU per order over 5 s mid-run: server $(( (s1 - s0) * 1000000 / hz / 5 / rate )) µs, load generator $(( (l1 - l0) * 1000000 / hz / 5 / rate )) µs"
}
now_ms() { date +%s%3N; }
wait_ready() {
    for _ in $(seq 1 6000); do curl -fs "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && return 0; sleep 0.05; done
    tail -20 "$work/serve.log" >&2; return 1
}
start
wait_ready
echo "embedded: oms $role on 127.0.0.1:$port (pid $pid), data in $work/data; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
# shellcheck disable=SC2086
"$oms" loadgen --addr "127.0.0.1:$port" --api-key "$key_a,$key_b" --rate "$rate" --duration "$secs" \
    --connections "$conns" --bare-seconds "${BARE_SECONDS:-10}" --settle-seconds "$settle" ${LOADGEN_ARGS:-} &
loadgen=$!
sampler=
if [ "$secs" -ge 10 ]; then
    sample_cpu "$loadgen" &
    sampler=$!
fi
wait "$loadgen"
if [ -n "$sampler" ]; then wait "$sampler"; fi
echo "server: $(ps -o rss=,cputime= -p "$pid" | awk '{print $1/1024 " MiB RSS, CPU " $2}')"
if [ "${RESTART:-0}" = 1 ]; then
    size=$(du -sh "$work/data" | cut -f1)
    kill -9 "$pid"; wait "$pid" 2>/dev/null || true
    t0=$(now_ms); start; wait_ready; t_ready=$(now_ms)
    # Serving again means the stages have restored their snapshots and replayed their tails:
    # time a new pair of orders until the buy is FILLED.
    place() { # key side
        curl -fsS -X POST "http://127.0.0.1:$port/api/orders" -H "X-API-Key: $1" \
            -H 'Content-Type: application/json' \
            -d "{\"symbol\":\"BTC/USD\",\"side\":\"$2\",\"quantity\":\"0.0001\",\"price\":\"50000\",\"orderType\":\"LIMIT\"}"
    }
    place "$key_b" SELL >/dev/null
    buy=$(place "$key_a" BUY | python3 -c 'import json,sys; print(json.load(sys.stdin)["orderId"])')
    until curl -fs "http://127.0.0.1:$port/api/orders/$buy" -H "X-API-Key: $key_a" | grep -q '"status":"FILLED"'; do
        [ $(( $(now_ms) - t0 )) -gt 600000 ] && { echo "the order after the restart never filled" >&2; exit 1; }
        sleep 0.02
    done
    t_filled=$(now_ms)
    echo "restart after SIGKILL (data dir $size): /ready in $((t_ready - t0)) ms, a new order FILLED $((t_filled - t0)) ms after the start"
    grep -h "restored" "$work/serve.log" | tail -12 || true
fi
