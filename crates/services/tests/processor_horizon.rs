//! The processor and an order its ledger has forgotten: a copy of the order's `OrderCreated`
//! (an idempotent request resumed long after) must not start the order over in the store.
//!
//! The ledger remembers ended orders for a horizon counted on the newest order decided (order
//! ids carry the time they were issued). Here the horizon is one minute and a later order,
//! issued an hour after the first, moves the clock past it.

mod api_common;

use oms_domain::events::{CancelReason, Event, Reservation};
use oms_domain::ids::{AccountId, Asset, OrderId, Symbol, Timestamp};
use oms_domain::order::{NewOrder, OrderStatus, OrderType, RejectReason, Side, TimeInForce};
use oms_domain::Decimal;
use oms_ports::order_store::OrderStore;
use oms_services::codec::{topics, LogNames};
use oms_services::ingestion::publish::publish_order_event;
use oms_services::pipeline::metrics::PipelineMetrics;
use oms_services::pipeline::now;
use oms_services::pipeline::processor::ProcessorStage;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};

/// Guards against a hang; never an assertion about speed.
const PATIENCE: Duration = Duration::from_secs(30);

/// An id issued `minutes` after an hour ago.
fn issued(minutes: i64) -> OrderId {
    let ms = now().millis() - 3_600_000 + minutes * 60_000 - OrderId::EPOCH_MS;
    OrderId(((ms as u64) << OrderId::TIME_SHIFT) | 1)
}

fn created(account: AccountId, id: OrderId) -> Event {
    Event::OrderCreated(NewOrder {
        order_id: id,
        client_order_id: None,
        account,
        symbol: Symbol::new("BTC/USD"),
        side: Side::Buy,
        order_type: OrderType::Limit,
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        price: Some(Decimal::from(100)),
        stop_price: None,
        quantity: Decimal::ONE,
        expire_at: None,
        created_at: id.issued_at(),
    })
}

fn decided(account: AccountId, id: OrderId, reason: Option<RejectReason>) -> Event {
    Event::RiskValidated {
        account,
        order_id: id,
        symbol: Symbol::new("BTC/USD"),
        approved: reason.is_none(),
        reason,
        reservation: reason.is_none().then(|| Reservation {
            asset: Asset::new("USD"),
            amount: Decimal::from(100),
            per_unit: Decimal::from(100),
            fee_rate: None,
        }),
        protection_price: None,
    }
}

async fn status(store: &dyn OrderStore, account: AccountId, id: OrderId) -> Option<OrderStatus> {
    store.order(account, id).await.unwrap().map(|o| o.status)
}

#[tokio::test]
async fn a_copy_of_a_forgotten_order_does_not_start_it_over() {
    let embedded = api_common::embedded_ports().await;
    let log = embedded.log.clone();
    log.ensure_topic(topics::ORDERS, 1).await.unwrap();
    let store: Arc<dyn OrderStore> = embedded.store.clone();
    let alice = store
        .create_account("alice", false, now())
        .await
        .unwrap()
        .id;
    let (first, later, marker) = (issued(0), issued(60), issued(61));

    let at = |id: OrderId| -> Timestamp { id.issued_at() };
    let publish = |events: Vec<(Timestamp, Event)>| {
        let log = log.clone();
        async move {
            for (at, event) in events {
                publish_order_event(log.as_ref(), topics::ORDERS, at, event)
                    .await
                    .unwrap();
            }
        }
    };
    let wait_for = |id: OrderId| {
        let store = store.clone();
        async move {
            let started = Instant::now();
            while status(store.as_ref(), alice, id).await.is_none() {
                assert!(
                    started.elapsed() < PATIENCE,
                    "the processor never got to {id}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };

    let (stop, shutdown) = watch::channel(false);
    let (updates, _) = broadcast::channel(64);
    let stage = ProcessorStage {
        log: log.clone(),
        store: store.clone(),
        snapshot_every: 1_000,
        snapshot_max_age: Duration::from_secs(3600),
        remember_ended: Duration::from_secs(60),
        metrics: Arc::new(PipelineMetrics::default()),
        updates,
        names: LogNames::default(),
        // No trades here: no account's balance is spread over partitions.
        fee_account: AccountId(u64::MAX),
    };
    let task = tokio::spawn(async move { stage.run(shutdown).await.expect("processor") });

    publish(vec![
        (
            at(first),
            Event::Deposit {
                account: alice,
                asset: Asset::new("USD"),
                amount: Decimal::from(1_000),
                reference: "test:alice".into(),
            },
        ),
        (at(first), created(alice, first)),
        (at(first), decided(alice, first, None)),
        (
            at(first),
            Event::OrderCanceled {
                account: alice,
                order_id: first,
                reason: CancelReason::UserRequested,
                leaves_quantity: Decimal::ONE,
            },
        ),
        // An hour later: the first order falls behind the one-minute horizon.
        (at(later), created(alice, later)),
        (at(later), decided(alice, later, None)),
    ])
    .await;
    wait_for(later).await;
    assert_eq!(
        status(store.as_ref(), alice, first).await,
        Some(OrderStatus::Canceled)
    );
    // In a later batch, once the first order's actor has stopped: its OrderCreated once
    // more, and risk refusing it for its time.
    publish(vec![
        (at(later), created(alice, first)),
        (
            at(later),
            decided(alice, first, Some(RejectReason::OrderTimeOutOfRange)),
        ),
        (at(marker), created(alice, marker)),
    ])
    .await;
    wait_for(marker).await;
    stop.send(true).unwrap();
    tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();

    assert_eq!(
        status(store.as_ref(), alice, first).await,
        Some(OrderStatus::Canceled),
        "the copy left the canceled order as it was"
    );
    assert!(status(store.as_ref(), alice, later).await.is_some());
    // Only the later order holds anything.
    let usd: Vec<(Decimal, Decimal)> = store
        .balances(alice)
        .await
        .unwrap()
        .into_iter()
        .filter(|b| b.asset == Asset::new("USD"))
        .map(|b| (b.available, b.reserved))
        .collect();
    assert_eq!(usd, vec![(Decimal::from(900), Decimal::from(100))]);
}

/// Records the log deleted (retention) before a snapshot of the ledger covered them: the
/// processor refuses to rebuild the partition's ledger without them, and writes nothing.
#[tokio::test]
async fn records_deleted_before_the_ledgers_snapshot_stop_the_processor() {
    let embedded = api_common::embedded_ports().await;
    embedded.log.ensure_topic(topics::ORDERS, 1).await.unwrap();
    let store: Arc<dyn OrderStore> = embedded.store.clone();
    let alice = store
        .create_account("alice", false, now())
        .await
        .unwrap()
        .id;
    let order = issued(0);
    for event in [
        Event::Deposit {
            account: alice,
            asset: Asset::new("USD"),
            amount: Decimal::from(1_000),
            reference: "test:alice".into(),
        },
        created(alice, order),
    ] {
        publish_order_event(embedded.log.as_ref(), topics::ORDERS, now(), event)
            .await
            .unwrap();
    }
    let (_stop, shutdown) = watch::channel(false);
    let (updates, _) = broadcast::channel(64);
    let stage = ProcessorStage {
        log: api_common::HookedLog::deleted_before(embedded.log.clone(), 1),
        store: store.clone(),
        snapshot_every: 1_000,
        snapshot_max_age: Duration::from_secs(3600),
        remember_ended: Duration::from_secs(60),
        metrics: Arc::new(PipelineMetrics::default()),
        updates,
        names: LogNames::default(),
        fee_account: AccountId(u64::MAX),
    };
    let err = tokio::time::timeout(PATIENCE, stage.run(shutdown))
        .await
        .expect("the stage stops at once")
        .expect_err("no ledger rebuilt without the deleted deposit");
    assert!(
        err.to_string()
            .contains("processor: records 0..1 of orders/0 were deleted"),
        "{err}"
    );
    assert_eq!(
        status(store.as_ref(), alice, order).await,
        None,
        "nothing written"
    );
}
