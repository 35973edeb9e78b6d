//! Distributed mode across real processes on real servers: PostgreSQL, Redis and a
//! Kafka-compatible broker (tansu), two `oms ingestion`, `oms risk`, two `oms processor`
//! replicas in one consumer group, `oms venue` and `oms marketdata`.

mod support;

use oms_domain::events::Event;
use oms_domain::ids::{Asset, OrderId, TradeId};
use oms_domain::ledger::Ledger;
use oms_domain::Decimal;
use oms_kafka::{KafkaConfig, KafkaLog};
use oms_ports::event_log::EventLog;
use oms_services::codec::{decode_event, topics};
use oms_testkit::postgres::PostgresServer;
use oms_testkit::redis::RedisServer;
use oms_testkit::tansu::TansuServer;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{admin, request, ADMIN_KEY, ALICE_KEY, BOB_KEY};

struct Proc {
    name: String,
    child: Child,
    addr: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(dir: &Path, pg: &str, redis: &str, kafka: &str) -> std::path::PathBuf {
    let path = dir.join("distributed.toml");
    let admin_hash = oms_services::api::hash_api_key(ADMIN_KEY);
    let text = format!(
        r#"
[server]
sessionSecret = "distributed-test-session-secret-0123456789"
requestsPerSecond = 0
[log]
backend = "kafka"
ordersPartitions = 4
venuePartitions = 2
marketdataPartitions = 2
[kafka]
bootstrapServers = "{kafka}"
# What tansu needs (oms-kafka's docs): bounded batches fetched from a batch early, gaps
# refetched, short fetch waits, a longer linger.
broker = "tansu"
[store]
backend = "postgres"
url = "{pg}"
[idempotency]
backend = "redis"
redisUrl = "{redis}"
[demo]
enabled = false
[admin]
keySha256 = ["{admin_hash}"]
[pipeline]
snapshotEvery = 200
tickMillis = 500
[risk]
maxOpenOrders = 1000000
ordersPerSecond = 1000000
burst = 1000000
[[accounts]]
name = "alice"
apiKey = "{ALICE_KEY}"
deposits = {{ USD = "100000000", BTC = "10000" }}
[[accounts]]
name = "bob"
apiKey = "{BOB_KEY}"
deposits = {{ USD = "100000000", BTC = "10000" }}
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

async fn spawn(name: &str, role: &str, config: &Path, dir: &Path, instance: u16) -> Proc {
    let port = support::free_port();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_oms"))
        .arg("--config")
        .arg(config)
        .arg(role)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.join(name))
        .env("OMS_SERVER__INSTANCE_ID", instance.to_string())
        .env("OMS_SERVER__STATIC_DIR", "/nonexistent")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let mut p = Proc {
        name: name.into(),
        child,
        addr: format!("127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok((200, _)) = request(&p.addr, hyper::Method::GET, "/ready", None, &[], None).await
        {
            return p;
        }
        if let Ok(Some(status)) = p.child.try_wait() {
            let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
            panic!("{name} exited with {status}:\n{log}");
        }
        assert!(Instant::now() < deadline, "{} never became ready", p.name);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn order_body(i: u64) -> String {
    let side = if i.is_multiple_of(2) { "BUY" } else { "SELL" };
    let price = 49_950 + (i * 37) % 100;
    format!(
        r#"{{"symbol":"BTC/USD","side":"{side}","quantity":"0.001","price":"{price}","orderType":"LIMIT"}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn services_in_separate_processes_keep_every_guarantee() {
    let tmp = tempfile::tempdir().unwrap();
    let (pg, redis, kafka) = (
        PostgresServer::new(),
        RedisServer::new(),
        TansuServer::new(),
    );
    let config = write_config(
        tmp.path(),
        &pg.url(),
        &redis.url(),
        &kafka.bootstrap_servers(),
    );
    let dir = tmp.path();

    // Ingestion first: it creates the accounts; the others wait for the fee account.
    let in1 = spawn("ingestion-1", "ingestion", &config, dir, 1).await;
    let in2 = spawn("ingestion-2", "ingestion", &config, dir, 2).await;
    let _risk = spawn("risk", "risk", &config, dir, 0).await;
    let _venue = spawn("venue", "venue", &config, dir, 0).await;
    let p1 = spawn("processor-1", "processor", &config, dir, 0).await;
    let p2 = spawn("processor-2", "processor", &config, dir, 0).await;
    let md = spawn("marketdata", "marketdata", &config, dir, 0).await;
    let ingestion = [in1.addr.clone(), in2.addr.clone()];

    // The same idempotency key sent to both ingestion instances at once: one order.
    let body = order_body(0);
    let (a, b) = tokio::join!(
        request(
            &ingestion[0],
            hyper::Method::POST,
            "/api/orders",
            Some(ALICE_KEY),
            &[("x-idempotency-key", "both-at-once")],
            Some(&body)
        ),
        request(
            &ingestion[1],
            hyper::Method::POST,
            "/api/orders",
            Some(ALICE_KEY),
            &[("x-idempotency-key", "both-at-once")],
            Some(&body)
        ),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut same_key_ids = HashSet::new();
    for (status, v) in [&a, &b] {
        assert!(*status == 202 || *status == 409, "{status}: {v}");
        if *status == 202 {
            same_key_ids.insert(v["orderId"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(same_key_ids.len(), 1, "one order for one key: {a:?} {b:?}");

    // An operator opens and funds an account through one instance; the other (same
    // PostgreSQL) knows its key, and the deposit reaches the balances through Kafka and a
    // processor replica.
    let (status, opened) = admin(
        &ingestion[0],
        hyper::Method::POST,
        "/api/admin/accounts",
        Some(r#"{"name":"carol"}"#),
    )
    .await;
    assert_eq!(status, 201, "{opened}");
    let carol = format!("/api/admin/accounts/{}", opened["accountId"]);
    let (status, issued) = admin(
        &ingestion[1],
        hyper::Method::POST,
        &format!("{carol}/api-keys"),
        None,
    )
    .await;
    assert_eq!(status, 201, "{issued}");
    let (status, v) = admin(
        &ingestion[1],
        hyper::Method::POST,
        &format!("{carol}/deposits"),
        Some(r#"{"asset":"USD","amount":"1234.5","reference":"wire-carol"}"#),
    )
    .await;
    assert_eq!(status, 202, "{v}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, me) = request(
            &ingestion[0],
            hyper::Method::GET,
            "/api/accounts/me",
            Some(issued["apiKey"].as_str().unwrap()),
            &[],
            None,
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{me}");
        if me["balances"]
            == serde_json::json!([{"asset": "USD", "available": "1234.5", "reserved": "0", "total": "1234.5"}])
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the deposit never reached the balances: {me}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Load through both instances; one processor replica is killed half way.
    let acked = Arc::new(Mutex::new(same_key_ids.iter().cloned().collect::<Vec<_>>()));
    let mut load = Vec::new();
    for c in 0..4u64 {
        let (addr, acked) = (ingestion[(c % 2) as usize].clone(), acked.clone());
        let key = if c < 2 { ALICE_KEY } else { BOB_KEY };
        load.push(tokio::spawn(async move {
            for i in 0..120u64 {
                let idem = format!("load-{c}-{i}");
                let body = order_body(c + i * 4);
                if let Ok((202, v)) = request(
                    &addr,
                    hyper::Method::POST,
                    "/api/orders",
                    Some(key),
                    &[("x-idempotency-key", &idem)],
                    Some(&body),
                )
                .await
                {
                    acked
                        .lock()
                        .unwrap()
                        .push(v["orderId"].as_str().unwrap().to_string());
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(p1); // SIGKILL: its partitions move to the other replica.
    for l in load {
        l.await.unwrap();
    }

    // Redis stopped: orders fail closed with 503 and Retry-After, then succeed when it is back.
    redis.stop();
    let (status, v) = request(
        &ingestion[0],
        hyper::Method::POST,
        "/api/orders",
        Some(ALICE_KEY),
        &[("x-idempotency-key", "while-redis-down")],
        Some(&order_body(1)),
    )
    .await
    .unwrap();
    assert_eq!(status, 503, "{v}");
    redis.start();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, v) = request(
            &ingestion[0],
            hyper::Method::POST,
            "/api/orders",
            Some(ALICE_KEY),
            &[("x-idempotency-key", "while-redis-down")],
            Some(&order_body(1)),
        )
        .await
        .unwrap();
        if status == 202 {
            acked
                .lock()
                .unwrap()
                .push(v["orderId"].as_str().unwrap().to_string());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "orders never succeeded after Redis came back: {status} {v}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Everything settles: every acknowledged order leaves NEW, through either instance.
    let acked: Vec<String> = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 300,
        "too few orders acknowledged: {}",
        acked.len()
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut stored = HashMap::new();
    for id in &acked {
        loop {
            let mut found = Vec::new();
            for key in [ALICE_KEY, BOB_KEY] {
                if let Ok((200, o)) = request(
                    &ingestion[1],
                    hyper::Method::GET,
                    &format!("/api/orders/{id}"),
                    Some(key),
                    &[],
                    None,
                )
                .await
                {
                    found.push(o);
                }
            }
            assert!(found.len() <= 1, "order {id} visible to two accounts");
            if let Some(o) = found.pop() {
                if o["status"] != "NEW" {
                    stored.insert(id.clone(), o);
                    break;
                }
            }
            assert!(Instant::now() < deadline, "order {id} missing or stuck");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Then wait for the surviving processor to have consumed everything, and read again.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut quiet = 0;
    while quiet < 3 {
        let (_, metrics) = request(&p2.addr, hyper::Method::GET, "/metrics", None, &[], None)
            .await
            .unwrap();
        let text = metrics.as_str().unwrap_or_default().to_string();
        let behind = text
            .lines()
            .filter(|l| l.starts_with("oms_consumer_lag{group=\"processor\""))
            .any(|l| !l.ends_with(" 0"));
        quiet = if behind || !text.contains("oms_consumer_lag{") {
            0
        } else {
            quiet + 1
        };
        assert!(
            Instant::now() < deadline,
            "processor never caught up:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    for (id, order) in stored.iter_mut() {
        for key in [ALICE_KEY, BOB_KEY] {
            if let Ok((200, o)) = request(
                &ingestion[1],
                hyper::Method::GET,
                &format!("/api/orders/{id}"),
                Some(key),
                &[],
                None,
            )
            .await
            {
                *order = o;
            }
        }
    }
    // The orders-by-status gauge (counted by the store as it writes, through a processor
    // killed mid-run and its partitions replayed by the other) matches the orders stored.
    let mut listed: BTreeMap<String, u64> = BTreeMap::new();
    for key in [ALICE_KEY, BOB_KEY] {
        let mut path = "/api/orders?limit=500".to_string();
        loop {
            let (status, page) = request(
                &ingestion[0],
                hyper::Method::GET,
                &path,
                Some(key),
                &[],
                None,
            )
            .await
            .unwrap();
            assert_eq!(status, 200, "{page}");
            for o in page["orders"].as_array().unwrap() {
                *listed
                    .entry(o["status"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
            match page["nextCursor"].as_str() {
                Some(c) => path = format!("/api/orders?limit=500&cursor={c}"),
                None => break,
            }
        }
    }
    let (_, metrics) = request(&p2.addr, hyper::Method::GET, "/metrics", None, &[], None)
        .await
        .unwrap();
    let gauge: BTreeMap<String, u64> = metrics
        .as_str()
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("oms_orders{status=\""))
        .filter_map(|l| {
            let (status, n) = l.split_once("\"} ")?;
            Some((status.to_string(), n.trim().parse().ok()?))
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    assert!(!listed.is_empty());
    assert_eq!(
        gauge, listed,
        "oms_orders by status against the orders listed"
    );

    // Market data saw the trades.
    let (status, trades) = request(
        &md.addr,
        hyper::Method::GET,
        "/api/marketdata/trades?symbol=BTC/USD&limit=5",
        None,
        &[],
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert!(
        !trades["trades"].as_array().unwrap().is_empty(),
        "market data has no trades: {trades}"
    );

    // Replay the whole `orders` topic from the broker and compare.
    let log = KafkaLog::connect(KafkaConfig::for_tansu(kafka.bootstrap_servers()))
        .await
        .unwrap();
    let mut ledger = Ledger::new();
    let mut created: HashMap<OrderId, usize> = HashMap::new();
    let mut fills: HashMap<OrderId, BTreeMap<TradeId, Decimal>> = HashMap::new();
    let mut deposits: BTreeMap<Asset, Decimal> = BTreeMap::new();
    let mut deposit_ids = HashSet::new();
    for p in 0..log.partition_count(topics::ORDERS).await.unwrap() {
        let end = log.end_offset(topics::ORDERS, p).await.unwrap();
        let mut offset = 0;
        while offset < end {
            let records = log.read(topics::ORDERS, p, offset, 5000).await.unwrap();
            let Some(last) = records.last() else { break };
            offset = last.offset + 1;
            for rec in &records {
                let env = decode_event(rec).unwrap();
                ledger.apply(&env.event).unwrap();
                match &env.event {
                    Event::OrderCreated(o) => *created.entry(o.order_id).or_default() += 1,
                    Event::OrderFilled(f) => {
                        fills
                            .entry(f.order_id)
                            .or_default()
                            .insert(f.trade_id, f.quantity);
                    }
                    Event::Deposit { asset, amount, .. } if deposit_ids.insert(env.id.clone()) => {
                        *deposits.entry(asset.clone()).or_default() += amount;
                    }
                    _ => {}
                }
            }
        }
    }
    for id in &acked {
        let oid: OrderId = id.parse().unwrap();
        assert_eq!(
            created.get(&oid),
            Some(&1),
            "order {id} created {:?} times",
            created.get(&oid)
        );
        let filled: Decimal = fills
            .get(&oid)
            .map(|f| f.values().copied().sum())
            .unwrap_or_default();
        let stored_filled: Decimal = stored[id]["filledQuantity"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            filled, stored_filled,
            "order {id}: fills in the log vs the store"
        );
    }
    let total_fills: usize = fills.values().map(|f| f.len()).sum();
    assert!(
        total_fills > 20,
        "too few fills ({total_fills}) for the test to mean anything"
    );
    let totals = ledger.totals();
    for (asset, deposited) in &deposits {
        assert_eq!(
            totals.get(asset).copied().unwrap_or_default(),
            *deposited,
            "{asset} not conserved"
        );
    }
    // Balances in PostgreSQL equal the replay, for the traders' accounts.
    for key in [ALICE_KEY, BOB_KEY] {
        let (_, me) = request(
            &ingestion[0],
            hyper::Method::GET,
            "/api/accounts/me",
            Some(key),
            &[],
            None,
        )
        .await
        .unwrap();
        let account = oms_domain::ids::AccountId(me["accountId"].as_u64().unwrap());
        for b in me["balances"].as_array().unwrap() {
            let asset = Asset::new(b["asset"].as_str().unwrap());
            let replay = ledger.balance(account, &asset);
            assert_eq!(
                b["available"].as_str().unwrap().parse::<Decimal>().unwrap(),
                replay.available,
                "{account} {asset}"
            );
            assert_eq!(
                b["reserved"].as_str().unwrap().parse::<Decimal>().unwrap(),
                replay.reserved,
                "{account} {asset}"
            );
        }
    }

    // Carol's dead man's switch, armed through one instance, fires in the risk process and
    // cancels her order, placed through the other instance, once she stops refreshing it.
    let carol_key = issued["apiKey"].as_str().unwrap();
    let (status, v) = request(
        &ingestion[1],
        hyper::Method::PUT,
        "/api/accounts/me/cancel-after",
        Some(carol_key),
        &[],
        Some(r#"{"timeoutMs":1500}"#),
    )
    .await
    .unwrap();
    assert_eq!(status, 202, "{v}");
    let resting = r#"{"symbol":"BTC/USD","side":"BUY","quantity":"0.01","price":"49000","orderType":"LIMIT"}"#;
    let (status, placed) = request(
        &ingestion[0],
        hyper::Method::POST,
        "/api/orders",
        Some(carol_key),
        &[],
        Some(resting),
    )
    .await
    .unwrap();
    assert_eq!(status, 202, "{placed}");
    let carols_order = format!("/api/orders/{}", placed["orderId"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, order) = request(
            &ingestion[1],
            hyper::Method::GET,
            &carols_order,
            Some(carol_key),
            &[],
            None,
        )
        .await
        .unwrap();
        if order["status"] == "CANCELED" {
            assert_eq!(order["cancelReason"], "CANCEL_AFTER", "{order}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dead man's switch never cancelled Carol's order: {order}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // PostgreSQL holds the switch as fired: the trigger precedes the cancel in her partition.
    let (_, me) = request(
        &ingestion[0],
        hyper::Method::GET,
        "/api/accounts/me",
        Some(carol_key),
        &[],
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        me["cancelAfter"],
        serde_json::json!({"enabled": false, "triggerTime": v["triggerTime"], "triggered": true}),
        "{me}"
    );

    // An operator halts BTC/USD through one instance: the risk and venue processes, through
    // Kafka, refuse Bob's order placed through the other, PostgreSQL holds the halt for both
    // instances, `oms marketdata` pushes it to WebSocket clients, and lifting it lets his next
    // order in.
    let (mut watcher, first) = support::status_watcher(&md.addr, "BTC/USD").await;
    assert_eq!(first, "TRADING");
    let set_status = |addr: String, status: &'static str| async move {
        let body = format!(r#"{{"symbol":"BTC/USD","status":"{status}"}}"#);
        let (code, v) = admin(
            &addr,
            hyper::Method::PUT,
            "/api/admin/instruments/status",
            Some(&body),
        )
        .await;
        assert_eq!(code, 202, "{v}");
    };
    // Waits until Bob's order (placed through `addr`) leaves NEW; returns it.
    let decided = |addr: String, path: String| async move {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, order) = request(&addr, hyper::Method::GET, &path, Some(BOB_KEY), &[], None)
                .await
                .unwrap();
            if order["status"] != "NEW" {
                return order;
            }
            assert!(Instant::now() < deadline, "{path} stayed NEW: {order}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let place_bob = |addr: String| async move {
        let (status, placed) = request(
            &addr,
            hyper::Method::POST,
            "/api/orders",
            Some(BOB_KEY),
            &[],
            Some(resting),
        )
        .await
        .unwrap();
        assert_eq!(status, 202, "{placed}");
        format!("/api/orders/{}", placed["orderId"].as_str().unwrap())
    };
    set_status(ingestion[0].clone(), "HALTED").await;
    assert_eq!(watcher.next_change().await, "HALTED");
    let refused = place_bob(ingestion[1].clone()).await;
    let order = decided(ingestion[0].clone(), refused).await;
    assert_eq!(
        (&order["status"], &order["rejectReason"]),
        (
            &serde_json::json!("REJECTED"),
            &serde_json::json!("INSTRUMENT_HALTED")
        ),
        "{order}"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, listed) = request(
            &ingestion[1],
            hyper::Method::GET,
            "/api/instruments",
            Some(BOB_KEY),
            &[],
            None,
        )
        .await
        .unwrap();
        let btc = listed["instruments"]
            .as_array()
            .and_then(|l| l.iter().find(|i| i["symbol"] == "BTC/USD").cloned());
        if btc.as_ref().is_some_and(|i| i["status"] == "HALTED") {
            break;
        }
        assert!(Instant::now() < deadline, "the halt never showed: {listed}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    set_status(ingestion[1].clone(), "TRADING").await;
    assert_eq!(watcher.next_change().await, "TRADING");
    let taken = place_bob(ingestion[0].clone()).await;
    let order = decided(ingestion[1].clone(), taken).await;
    assert_ne!(order["status"], "REJECTED", "{order}");

    // An outside Kafka client reads well-formed OrderCreated events keyed by account.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/read_orders_topic.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(kafka.bootstrap_servers())
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "outside client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("OrderCreated events:"), "{text}");
}
