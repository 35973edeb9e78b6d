//! Events and venue commands to and from their JSON on the log: nanoseconds per decode and
//! encode on one core, for the shapes every order produces. Each stage decodes every record
//! it reads, so this is paid several times per order.
//!
//! `cargo bench -p oms-domain --bench event_json` (optional arg: iterations per case).

use oms_domain::events::{Envelope, Event, Fill, Reservation};
use oms_domain::ids::{AccountId, Asset, OrderId, Symbol, Timestamp, TradeId};
use oms_domain::order::{Liquidity, NewOrder, OrderType, Side, TimeInForce};
use oms_domain::venue::{Source, VenueCommand};
use oms_domain::Decimal;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::hint::black_box;
use std::time::Instant;

fn order() -> NewOrder {
    NewOrder {
        order_id: OrderId(386_085_098_795_040_769),
        client_order_id: None,
        account: AccountId(3),
        symbol: Symbol::new("BTC/USD"),
        side: Side::Buy,
        order_type: OrderType::Limit,
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        price: Some(Decimal::new(5_002_900, 2)),
        stop_price: None,
        quantity: Decimal::new(1, 4),
        expire_at: None,
        created_at: Timestamp(1_796_117_060_667),
    }
}

fn events() -> Vec<(&'static str, Envelope)> {
    let o = order();
    let at = Timestamp(1_796_117_060_710);
    let fill = Fill {
        account: o.account,
        order_id: o.order_id,
        symbol: o.symbol.clone(),
        side: Side::Buy,
        trade_id: TradeId(10),
        price: Decimal::new(49_874, 0),
        quantity: Decimal::new(1, 4),
        liquidity: Liquidity::Taker,
        fee: Decimal::new(99_748, 10),
        base: Asset::new("BTC"),
        quote: Asset::new("USD"),
        cumulative_quantity: Decimal::new(1, 4),
        leaves_quantity: Decimal::ZERO,
        fee_account: AccountId(1),
        at: Some(at),
    };
    vec![
        ("OrderCreated", Event::OrderCreated(o.clone())),
        (
            "RiskValidated",
            Event::RiskValidated {
                account: o.account,
                order_id: o.order_id,
                symbol: o.symbol.clone(),
                approved: true,
                reason: None,
                reservation: Some(Reservation {
                    asset: Asset::new("USD"),
                    amount: Decimal::new(5_012_906, 3),
                    per_unit: Decimal::new(50_129_058, 3),
                    fee_rate: None,
                }),
                protection_price: None,
            },
        ),
        (
            "OrderAccepted",
            Event::OrderAccepted {
                account: o.account,
                order_id: o.order_id,
                symbol: o.symbol.clone(),
            },
        ),
        ("OrderFilled", Event::OrderFilled(fill)),
        (
            "Trade",
            Event::Trade {
                symbol: o.symbol.clone(),
                trade_id: TradeId(10),
                price: Decimal::new(49_874, 0),
                quantity: Decimal::new(1, 4),
                taker_side: Side::Buy,
                at,
            },
        ),
        (
            "BookChanged",
            Event::BookChanged {
                symbol: o.symbol,
                seq: 42,
                side: Side::Sell,
                price: Decimal::new(49_874, 0),
                quantity: Decimal::new(25, 3),
            },
        ),
    ]
    .into_iter()
    .map(|(name, e)| (name, Envelope::new(at, e)))
    .collect()
}

/// Median nanoseconds per call over seven rounds of `n` calls.
fn time(n: usize, mut f: impl FnMut()) -> f64 {
    let mut rounds: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_nanos() as f64 / n as f64
        })
        .collect();
    rounds.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    rounds[3]
}

fn case<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    name: &str,
    value: &T,
    n: usize,
) {
    let json = serde_json::to_vec(value).expect("encodes");
    let back: T = serde_json::from_slice(&json).expect("decodes");
    assert_eq!(&back, value, "{name} round-trips");
    let decode = time(n, || {
        black_box(serde_json::from_slice::<T>(black_box(&json)).expect("decodes"));
    });
    let encode = time(n, || {
        black_box(serde_json::to_vec(black_box(value)).expect("encodes"));
    });
    println!("| {name} | {} | {decode:.0} | {encode:.0} |", json.len());
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    println!("JSON on the log, median of 7 rounds of {n} calls, ns per call");
    println!("| record | bytes | decode ns | encode ns |");
    println!("|---|---:|---:|---:|");
    for (name, envelope) in events() {
        case(name, &envelope, n);
    }
    let submit = VenueCommand::Submit {
        source: Source {
            partition: 1,
            offset: 20_049,
        },
        order: order(),
        protection_price: None,
        fee_rate_cap: None,
    };
    case("VenueCommand::Submit", &submit, n);
}
