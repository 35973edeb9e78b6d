//! `oms serve` killed with SIGKILL at random moments under load, restarted, ten times over:
//! every acknowledged order exists exactly once, the read model equals a full replay of the
//! log, no fill is lost or doubled, and asset totals are unchanged.

mod support;

use oms_domain::events::Event;
use oms_domain::ids::{AccountId, Asset, OrderId, TradeId};
use oms_domain::ledger::Ledger;
use oms_domain::order::Order;
use oms_domain::state_machine;
use oms_domain::Decimal;
use oms_embedded::{FileLog, FileLogOptions, SqliteOptions, SqliteStore};
use oms_ports::event_log::EventLog;
use oms_ports::order_store::OrderStore;
use oms_services::codec::{decode_event, topics};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Server, ALICE_KEY, BOB_KEY};

/// A small deterministic generator: the test's randomness is repeatable from its seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Places orders and cancels until `stop`, recording every order id that got a 2xx.
async fn load(
    addr: String,
    key: &'static str,
    seed: u64,
    acked: Arc<Mutex<Vec<String>>>,
    stop: Instant,
) {
    let mut rng = Rng(seed | 1);
    let mut mine: Vec<String> = Vec::new();
    while Instant::now() < stop {
        let roll = rng.below(100);
        let result = if roll < 8 && !mine.is_empty() {
            let id = mine[rng.below(mine.len() as u64) as usize].clone();
            support::request(
                &addr,
                hyper::Method::DELETE,
                &format!("/api/orders/{id}"),
                Some(key),
                &[],
                None,
            )
            .await
        } else {
            let side = if rng.below(2) == 0 { "BUY" } else { "SELL" };
            let body = if roll < 14 {
                format!(
                    r#"{{"symbol":"BTC/USD","side":"{side}","quantity":"0.001","orderType":"MARKET"}}"#
                )
            } else {
                let price = 49_900 + rng.below(200);
                format!(
                    r#"{{"symbol":"BTC/USD","side":"{side}","quantity":"0.001","price":"{price}","orderType":"LIMIT"}}"#
                )
            };
            let idem = format!("k-{seed}-{}", rng.next());
            let r = support::request(
                &addr,
                hyper::Method::POST,
                "/api/orders",
                Some(key),
                &[("x-idempotency-key", &idem)],
                Some(&body),
            )
            .await;
            if let Ok((202, v)) = &r {
                let id = v["orderId"].as_str().expect("orderId").to_string();
                mine.push(id.clone());
                acked.lock().unwrap().push(id);
            }
            r
        };
        if let Ok((status, body)) = &result {
            assert!(
                *status < 500 || *status == 503,
                "server error {status}: {body}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_nine_ten_times_under_load_loses_and_doubles_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = support::write_config(tmp.path(), 200);
    let port = support::free_port();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut rng = Rng(0x5eed);
    for round in 0..10u64 {
        let server = Server::start(&data, Some(&config), port).await;
        let run_for = Duration::from_millis(400 + rng.below(1200));
        let stop = Instant::now() + run_for + Duration::from_secs(5);
        let mut clients = Vec::new();
        for c in 0..6u64 {
            let key = if c % 2 == 0 { ALICE_KEY } else { BOB_KEY };
            clients.push(tokio::spawn(load(
                server.addr.clone(),
                key,
                round * 100 + c + 1,
                acked.clone(),
                stop,
            )));
        }
        tokio::time::sleep(run_for).await;
        server.kill9();
        for c in clients {
            c.await.unwrap();
        }
        eprintln!(
            "round {round}: killed after {run_for:?}, {} orders acknowledged so far",
            acked.lock().unwrap().len()
        );
    }

    // Final start: let the pipeline catch up, check through the API, stop cleanly.
    let server = Server::start(&data, Some(&config), port).await;
    let acked: Vec<String> = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 100,
        "the load placed too few orders ({}) to mean anything",
        acked.len()
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    for id in &acked {
        loop {
            let (a, b) = (
                server
                    .get(&format!("/api/orders/{id}"), Some(ALICE_KEY))
                    .await
                    .unwrap(),
                server
                    .get(&format!("/api/orders/{id}"), Some(BOB_KEY))
                    .await
                    .unwrap(),
            );
            let found = [a, b]
                .into_iter()
                .filter(|(s, _)| *s == 200)
                .collect::<Vec<_>>();
            assert!(found.len() <= 1, "order {id} visible to both accounts");
            if let Some((_, order)) = found.first() {
                if order["status"] != "NEW" {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "acknowledged order {id} is missing or stuck: {found:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    server.stop();

    // Replay the whole log with the domain and compare with the store.
    let log = FileLog::open(&data.join("log"), FileLogOptions::default())
        .await
        .unwrap();
    let store = SqliteStore::open(&data.join("oms.db"), SqliteOptions::default())
        .await
        .unwrap();
    let mut ledger = Ledger::new();
    let mut orders: HashMap<OrderId, Order> = HashMap::new();
    let mut fills: HashMap<OrderId, BTreeMap<TradeId, Decimal>> = HashMap::new();
    let mut deposits: BTreeMap<Asset, Decimal> = BTreeMap::new();
    let mut created = 0usize;
    let mut deposit_ids = HashSet::new();
    for p in 0..log.partition_count(topics::ORDERS).await.unwrap() {
        let mut offset = 0;
        loop {
            let records = log.read(topics::ORDERS, p, offset, 5000).await.unwrap();
            let Some(last) = records.last() else { break };
            offset = last.offset + 1;
            for rec in &records {
                let env = decode_event(rec).unwrap();
                ledger.apply(&env.event).unwrap();
                match &env.event {
                    Event::Deposit { asset, amount, .. } => {
                        if deposit_ids.insert(env.id.clone()) {
                            *deposits.entry(asset.clone()).or_default() += amount;
                        }
                    }
                    Event::OrderCreated(n) => {
                        created += 1;
                        assert!(
                            orders.insert(n.order_id, Order::from_new(n)).is_none(),
                            "order {} created twice",
                            n.order_id
                        );
                    }
                    other => {
                        if let Event::OrderFilled(f) = other {
                            fills
                                .entry(f.order_id)
                                .or_default()
                                .insert(f.trade_id, f.quantity);
                        }
                        if let Some(o) = other.order_id().and_then(|id| orders.get_mut(&id)) {
                            state_machine::apply(o, other, env.at).unwrap();
                        }
                    }
                }
            }
        }
    }
    let ids: HashSet<&String> = acked.iter().collect();
    assert_eq!(ids.len(), acked.len(), "an order id was acknowledged twice");
    for id in &acked {
        assert!(
            orders.contains_key(&id.parse().unwrap()),
            "acknowledged order {id} is not in the log"
        );
    }
    eprintln!(
        "log: {created} orders created, {} acknowledged by the clients",
        acked.len()
    );
    // The load must really exercise matching and cancels, or the checks below prove little.
    let total_fills: usize = fills.values().map(|f| f.len()).sum();
    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    for o in orders.values() {
        *by_status.entry(o.status.as_str()).or_default() += 1;
    }
    eprintln!("log: {total_fills} fills; orders by status {by_status:?}");
    assert!(
        total_fills > 50,
        "too few fills ({total_fills}) for the test to mean anything"
    );
    for status in ["FILLED", "CANCELED", "ACCEPTED"] {
        assert!(
            by_status.contains_key(status),
            "no order ended {status}: {by_status:?}"
        );
    }

    for (id, replayed) in &orders {
        let stored = store
            .order(replayed.account, *id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("order {id} missing from the store"));
        assert_eq!(stored.status, replayed.status, "order {id} status");
        assert_eq!(
            stored.filled_quantity, replayed.filled_quantity,
            "order {id} filled"
        );
        assert_eq!(
            stored.executed_notional, replayed.executed_notional,
            "order {id} notional"
        );
        assert_eq!(stored.fees, replayed.fees, "order {id} fees");
        let stored_fills = store.fills(replayed.account, *id).await.unwrap();
        let logged = fills.get(id).cloned().unwrap_or_default();
        assert_eq!(stored_fills.len(), logged.len(), "order {id} fills");
        assert!(
            stored_fills.iter().all(|f| f.at.is_some()),
            "order {id}: every fill carries its time"
        );
        let sum: Decimal = stored_fills.iter().map(|f| f.quantity).sum();
        assert_eq!(
            sum, stored.filled_quantity,
            "order {id}: fills do not add up to its filled quantity"
        );
    }
    for account in ledger.accounts().collect::<Vec<AccountId>>() {
        let stored: BTreeMap<String, (Decimal, Decimal)> = store
            .balances(account)
            .await
            .unwrap()
            .into_iter()
            .map(|b| (b.asset.0, (b.available, b.reserved)))
            .collect();
        for (asset, b) in ledger.balances(account) {
            let s = stored.get(&asset.0).copied().unwrap_or_default();
            assert_eq!(
                s,
                (b.available, b.reserved),
                "account {account} {asset}: store vs replay"
            );
        }
    }
    let totals = ledger.totals();
    for (asset, deposited) in &deposits {
        assert_eq!(
            totals.get(asset).copied().unwrap_or_default(),
            *deposited,
            "{asset}: total across accounts and fees differs from deposits"
        );
    }
}
