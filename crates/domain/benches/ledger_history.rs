//! What a long history costs the ledger: the ended orders it remembers, the size of its
//! snapshot and the time to restore one, with and without a horizon
//! (`Ledger::remember_ended_for`).
//!
//! Each order is approved and then cancelled (the live state stays empty, so what grows is
//! only the history), at 5,000 orders per second of order-id time. With a horizon the ledger
//! remembers about rate × horizon orders however long the history; the services set the
//! horizon from the idempotency keys' time to live (a day by default), the benchmark to a
//! minute so that a short history shows the bound. The fold time per order includes the
//! forgetting.
//!
//! Run: `cargo bench -p oms-domain --bench ledger_history` (`-- --quick` for a short run).

use oms_domain::events::{CancelReason, Event, Reservation};
use oms_domain::ids::{AccountId, Asset, OrderId, Symbol};
use oms_domain::ledger::Ledger;
use oms_domain::Decimal;
use std::hint::black_box;
use std::time::{Duration, Instant};

const ACCOUNTS: u64 = 1_000;
const ORDERS_PER_SECOND: u64 = 5_000;

fn order_id(n: u64) -> OrderId {
    let ms = n * 1_000 / ORDERS_PER_SECOND;
    OrderId((ms << OrderId::TIME_SHIFT) | (n % 4_096))
}

fn funded() -> Ledger {
    let mut l = Ledger::new();
    for a in 1..=ACCOUNTS {
        let deposit = Event::Deposit {
            account: AccountId(a),
            asset: Asset::new("USD"),
            amount: Decimal::from(1_000_000),
            reference: format!("seed-{a}"),
        };
        l.apply(&deposit).expect("deposit");
    }
    l
}

fn run(orders: u64, horizon: Option<Duration>) {
    let mut l = funded();
    if let Some(h) = horizon {
        l.remember_ended_for(h);
    }
    let usd = Asset::new("USD");
    let started = Instant::now();
    for n in 0..orders {
        let account = AccountId(1 + n % ACCOUNTS);
        let order_id = order_id(n);
        let approved = Event::RiskValidated {
            account,
            order_id,
            symbol: Symbol::new("BTC/USD"),
            approved: true,
            reason: None,
            reservation: Some(Reservation {
                asset: usd.clone(),
                amount: Decimal::from(50),
                per_unit: Decimal::from(50_000),
                fee_rate: None,
            }),
            protection_price: None,
        };
        let canceled = Event::OrderCanceled {
            account,
            order_id,
            reason: CancelReason::UserRequested,
            leaves_quantity: Decimal::ONE,
        };
        black_box(l.apply(&approved).expect("approve"));
        black_box(l.apply(&canceled).expect("cancel"));
    }
    let fold_ns = started.elapsed().as_nanos() as f64 / orders as f64;
    let t = Instant::now();
    let bytes = serde_json::to_vec(&l).expect("serialise");
    let save_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let back: Ledger = serde_json::from_slice(&bytes).expect("restore");
    let restore_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(back.ended_remembered(), l.ended_remembered());
    let horizon = horizon.map_or("none (all)".to_string(), |h| format!("{} s", h.as_secs()));
    println!(
        "{orders:>9} orders  horizon {horizon:<10}  remembered {:>9}  snapshot {:>6.1} MiB  \
         save {save_ms:>7.1} ms  restore {restore_ms:>7.1} ms  fold {fold_ns:>5.0} ns/order",
        l.ended_remembered(),
        bytes.len() as f64 / (1024.0 * 1024.0),
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes: &[u64] = if quick {
        &[100_000, 400_000]
    } else {
        &[1_000_000, 4_000_000]
    };
    println!(
        "{ACCOUNTS} accounts, {ORDERS_PER_SECOND} orders per second of order time, each approved then cancelled"
    );
    for &orders in sizes {
        run(orders, None);
        run(orders, Some(Duration::from_secs(60)));
    }
}
