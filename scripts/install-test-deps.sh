#!/usr/bin/env bash
# Installs what the tests need beyond Rust and Node, only what is missing:
#   - Debian packages: Chromium (browser tests), Redis and PostgreSQL (distributed-mode tests),
#     cmake and libcurl headers (to build the librdkafka bundled by the Kafka adapter);
#   - the Kafka-compatible broker `tansu` from crates.io (cached in ~/.cargo/bin; the first build
#     takes about 15 minutes);
#   - cargo-nextest; Python's confluent-kafka (an outside Kafka client used by one test).
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
command -v redis-server >/dev/null || need_apt+=(redis-server)
[ -x /usr/lib/postgresql/15/bin/postgres ] || ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need_apt+=(postgresql)
command -v cmake >/dev/null || need_apt+=(cmake)
# librdkafka 2.12's CMake build includes curl.h even when built without libcurl: headers only.
compgen -G '/usr/include/*curl/curl.h' >/dev/null || compgen -G '/usr/include/*/curl/curl.h' >/dev/null \
    || need_apt+=(libcurl4-openssl-dev)
command -v curl >/dev/null || need_apt+=(curl)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "==> apt-get install ${need_apt[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# Debian starts a system Redis on install; the tests run their own on other ports.

if ! cargo nextest --version >/dev/null 2>&1; then
    echo "==> cargo install cargo-nextest"
    cargo install cargo-nextest --locked
fi

if ! command -v tansu >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/tansu" ]; then
    echo "==> cargo install tansu (about 15 minutes, once)"
    cargo install tansu --locked --features dynostore
fi

if ! python3 -c 'import confluent_kafka' >/dev/null 2>&1; then
    echo "==> pip install confluent-kafka"
    python3 -m pip install --quiet confluent-kafka
fi
