# Sourced by the benchmark scripts: the two funded accounts the load generator trades between
# (one buys, one sells, so orders fill) and risk limits high enough for the load.
key_a=oms_bench_a_0000000000000000000000000000000000000000000000000000000
key_b=oms_bench_b_1111111111111111111111111111111111111111111111111111111

bench_accounts_toml() {
    cat <<TOML
[risk]
maxOpenOrders = 10000000
ordersPerSecond = 10000000
burst = 10000000
maxOrderNotional = "1000000000"
[[accounts]]
name = "bench-a"
apiKey = "$key_a"
deposits = { USD = "100000000000", BTC = "10000000" }
[[accounts]]
name = "bench-b"
apiKey = "$key_b"
deposits = { USD = "100000000000", BTC = "10000000" }
TOML
}
