//! Risk engine benchmark: the pre-trade check of one order on a warm engine.
//!
//! Two engine sizes: 10,000 funded accounts with 10 live orders each (100,000 reservations),
//! and 1,000 accounts with 10 each; market references on every book. Orders are generated up front; each measured call is one
//! `decide_order` (every check, the reservation, the events and the venue command, dropped
//! after). After each approval the oldest live order is cancelled, untimed, so the engine stays
//! in a steady state: as many orders end as start, and the set of ended orders it remembers
//! keeps growing, as it does in service within the horizon (a day by default).
//!
//! Two passes per case: one timing batches of 1,000 calls as a whole for throughput, one
//! reading the clock around every call for the latency histogram.
//!
//! Run: `cargo bench -p oms-domain --bench risk` (`-- --quick` for a short smoke run).

use hdrhistogram::Histogram;
use oms_domain::events::{CancelReason, Envelope, Event};
use oms_domain::ids::{AccountId, Asset, OrderId, Symbol, Timestamp};
use oms_domain::instrument::default_instruments;
use oms_domain::order::{NewOrder, OrderType, Side, TimeInForce};
use oms_domain::risk::{RiskConfig, RiskEngine};
use oms_domain::venue::Source;
use oms_domain::Decimal;
use std::collections::VecDeque;
use std::hint::black_box;
use std::time::Instant;

const RESTING_PER_ACCOUNT: u64 = 10;
const FEES: AccountId = AccountId(0);

/// Books the orders go to, with their reference price.
const BOOKS: [(&str, i64); 3] = [("BTC/USD", 50_000), ("ETH/USD", 3_000), ("SOL/USD", 150)];

struct Bench {
    accounts: u64,
    engine: RiskEngine,
    now: i64,
    next_id: u64,
    offset: u64,
    /// Live orders, oldest first.
    live: VecDeque<NewOrder>,
}

impl Bench {
    fn new(accounts: u64) -> Self {
        let config = RiskConfig {
            max_open_orders: 200,
            ..RiskConfig::default()
        };
        let mut engine = RiskEngine::new(default_instruments(), config, FEES);
        for (symbol, price) in BOOKS {
            let p = Decimal::from(price);
            engine.on_market(
                &Symbol::new(symbol),
                Some(p),
                Some(p),
                Some(p + Decimal::ONE),
            );
        }
        let mut b = Bench {
            accounts,
            engine,
            // The order-id epoch: the small ids here were issued then, and the engine refuses
            // ids issued far ahead of its clock.
            now: OrderId::EPOCH_MS,
            next_id: 1,
            offset: 0,
            live: VecDeque::new(),
        };
        for account in 1..=accounts {
            for (asset, amount) in [
                ("USD", 100_000_000),
                ("BTC", 1_000),
                ("ETH", 100),
                ("SOL", 100_000),
            ] {
                b.fold(Event::Deposit {
                    account: AccountId(account),
                    asset: Asset::new(asset),
                    amount: Decimal::from(amount),
                    reference: format!("seed-{account}-{asset}"),
                });
            }
        }
        // Resting orders, placed the way live ones are.
        for round in 0..RESTING_PER_ACCOUNT {
            for account in 1..=accounts {
                let o = b.order(account, round);
                let d = b.decide(&o);
                assert!(d, "warm-up order refused");
                b.live.push_back(o);
            }
        }
        b
    }

    fn fold(&mut self, event: Event) {
        self.engine
            .apply(&Envelope::new(Timestamp(self.now), event))
            .expect("fold");
    }

    /// A limit order alternating books and sides, inside every band.
    fn order(&mut self, account: u64, salt: u64) -> NewOrder {
        let (symbol, price) = BOOKS[(salt % 3) as usize];
        let side = if (account + salt) & 1 == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        let offset = Decimal::new((salt % 50) as i64, 2);
        let price = match side {
            Side::Buy => Decimal::from(price) - offset,
            Side::Sell => Decimal::from(price) + offset,
        };
        let id = self.next_id;
        self.next_id += 1;
        NewOrder {
            order_id: OrderId(id),
            client_order_id: Some(format!("c{id}")),
            account: AccountId(account),
            symbol: Symbol::new(symbol),
            side,
            order_type: OrderType::Limit,
            time_in_force: TimeInForce::Gtc,
            post_only: false,
            price: Some(price),
            stop_price: None,
            quantity: Decimal::new(1 + (salt % 7) as i64, 2),
            expire_at: None,
            created_at: Timestamp(self.now),
        }
    }

    fn decide(&mut self, o: &NewOrder) -> bool {
        self.now += 1;
        self.offset += 1;
        let source = Source {
            partition: 0,
            offset: self.offset,
        };
        self.engine
            .decide_order(Timestamp(self.now), source, o)
            .approved()
    }

    /// Keeps the live set at its size: the new order joins, the oldest ends.
    fn rotate(&mut self, o: NewOrder) {
        self.live.push_back(o);
        if let Some(old) = self.live.pop_front() {
            self.cancel(&old);
        }
    }

    fn cancel(&mut self, o: &NewOrder) {
        self.fold(Event::OrderCanceled {
            account: o.account,
            order_id: o.order_id,
            reason: CancelReason::UserRequested,
            leaves_quantity: o.quantity,
        });
    }

    /// Orders for the next batch: round robin over the accounts, from a varying start.
    fn batch(&mut self, n: usize, make: impl Fn(&mut Self, u64, u64) -> NewOrder) -> Vec<NewOrder> {
        let start = self.next_id;
        (0..n as u64)
            .map(|i| make(self, 1 + (start + i * 7_919) % self.accounts, start + i))
            .collect()
    }
}

fn report(name: &str, ops: u64, secs: f64, h: &Histogram<u64>) {
    println!(
        "{name:<34} {:>12.0} ops/s   p50 {:>6} ns   p90 {:>6} ns   p99 {:>6} ns   p99.9 {:>7} ns   max {:>8} ns   (n={})",
        ops as f64 / secs,
        h.value_at_quantile(0.50),
        h.value_at_quantile(0.90),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max(),
        h.len(),
    );
}

/// Runs `rounds` rounds: batches of 1,000 timed as a whole, then calls timed one by one.
fn case(
    b: &mut Bench,
    name: &str,
    rounds: usize,
    batch: usize,
    approved: bool,
    make: impl Fn(&mut Bench, u64, u64) -> NewOrder + Copy,
) {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3).unwrap();
    let (mut ops, mut secs) = (0u64, 0f64);
    for _ in 0..rounds {
        for orders in b.batch(batch, make).chunks(1_000) {
            let t = Instant::now();
            for o in orders {
                black_box(b.decide(o));
            }
            secs += t.elapsed().as_secs_f64();
            ops += orders.len() as u64;
            if approved {
                for o in orders {
                    b.rotate(o.clone());
                }
            }
        }

        for o in b.batch(batch, make) {
            let t = Instant::now();
            let ok = black_box(b.decide(&o));
            let ns = t.elapsed().as_nanos() as u64;
            hist.saturating_record(ns.max(1));
            assert_eq!(ok, approved, "{o:?}");
            if ok {
                b.rotate(o);
            }
        }
    }
    report(name, ops, secs, &hist);
}

/// The CPU, core count and load, printed with the figures: this machine is often shared.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, load average {load}")
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, batch) = if quick { (3, 2_000) } else { (40, 10_000) };
    println!("machine: {}", machine());
    for accounts in [10_000, 1_000] {
        let t = Instant::now();
        let mut b = Bench::new(accounts);
        println!(
            "warm engine: {accounts} accounts, {} live orders, built in {:.1} s",
            accounts * RESTING_PER_ACCOUNT,
            t.elapsed().as_secs_f64()
        );
        case(
            &mut b,
            "decide_order, approved",
            rounds,
            batch,
            true,
            |b, a, s| b.order(a, s),
        );
        case(
            &mut b,
            "decide_order, refused (balance)",
            rounds,
            batch,
            false,
            // A funded account selling more ETH than it holds: every check runs, the last
            // refuses, nothing is reserved.
            |b, a, s| {
                let mut o = b.order(a, s);
                o.symbol = Symbol::new("ETH/USD");
                o.side = Side::Sell;
                o.price = Some(Decimal::from(3_000));
                o.quantity = Decimal::from(200);
                o
            },
        );
    }
}
