//! The risk stage across a restart: an order's `OrderCreated` appended again after the stage
//! restored a snapshot (an idempotent request resumed after a crash appends it once more,
//! same id) gets no second decision and no second venue command.
//!
//! The decision on the last order before a snapshot lies in the log after it: the restored
//! stage finds that decision in its tail although the request it answers came before the
//! snapshot, and must not take it for the answer to the repeat.
//!
//! A dead man's switch that fired just before a crash (its cancels appended, the position not
//! yet committed) does not ask for the same cancels again after the restart.

mod api_common;

use oms_domain::events::{Event, Reservation};
use oms_domain::ids::{AccountId, Asset, OrderId, Symbol};
use oms_domain::instrument::default_instruments;
use oms_domain::order::{NewOrder, OrderType, Side, TimeInForce};
use oms_domain::risk::RiskConfig;
use oms_domain::venue::VenueCommand;
use oms_domain::Decimal;
use oms_ports::event_log::EventLog;
use oms_ports::order_store::OrderStore;
use oms_services::codec::{decode_command, decode_event, topics, LogNames};
use oms_services::ingestion::publish::publish_order_event;
use oms_services::ingestion::OrderIdGenerator;
use oms_services::pipeline::now;
use oms_services::pipeline::reference::References;
use oms_services::pipeline::risk::RiskStage;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Guards against a hang; never an assertion about speed.
const PATIENCE: Duration = Duration::from_secs(30);
const ALICE: AccountId = AccountId(7);

struct Ports {
    log: Arc<dyn EventLog>,
    store: Arc<dyn OrderStore>,
}

fn start_risk(ports: &Ports) -> (watch::Sender<bool>, JoinHandle<()>) {
    // The deposit and the first order: a snapshot right after the order, before the stage
    // reads its own decision.
    start_risk_snapshotting(ports, 2)
}

fn start_risk_snapshotting(
    ports: &Ports,
    snapshot_every: u64,
) -> (watch::Sender<bool>, JoinHandle<()>) {
    start(risk_stage(ports, snapshot_every, Duration::from_secs(3600)))
}

fn risk_stage(ports: &Ports, snapshot_every: u64, snapshot_max_age: Duration) -> RiskStage {
    RiskStage {
        log: ports.log.clone(),
        store: ports.store.clone(),
        instruments: default_instruments(),
        config: RiskConfig::default(),
        fee_account: AccountId(1),
        references: References::default(),
        snapshot_every,
        snapshot_max_age,
        remember_ended: Duration::from_secs(3600),
        names: LogNames::default(),
    }
}

fn start(stage: RiskStage) -> (watch::Sender<bool>, JoinHandle<()>) {
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(async move {
        stage.run(shutdown).await.expect("risk stage");
    });
    (stop, task)
}

/// The log (one partition per topic) and store, with Alice's funds deposited. The first
/// value holds the files.
async fn funded() -> (api_common::Ports, Ports) {
    let embedded = api_common::embedded_ports().await;
    let log = embedded.log.clone();
    for topic in [topics::ORDERS, topics::VENUE, topics::MARKETDATA] {
        log.ensure_topic(topic, 1).await.unwrap();
    }
    let ports = Ports {
        log: log.clone(),
        store: embedded.store.clone(),
    };
    let deposit = Event::Deposit {
        account: ALICE,
        asset: Asset::new("USD"),
        amount: Decimal::from(1_000_000),
        reference: "test:alice".into(),
    };
    publish_order_event(log.as_ref(), topics::ORDERS, now(), deposit)
        .await
        .unwrap();
    (embedded, ports)
}

async fn stop_risk((stop, task): (watch::Sender<bool>, JoinHandle<()>)) {
    stop.send(true).unwrap();
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("the risk stage stops")
        .unwrap();
}

fn buy(id: u64) -> NewOrder {
    NewOrder {
        order_id: OrderId(id),
        client_order_id: None,
        account: ALICE,
        symbol: Symbol::new("BTC/USD"),
        side: Side::Buy,
        order_type: OrderType::Limit,
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        price: Some(Decimal::from(50_000)),
        stop_price: None,
        quantity: "0.1".parse().unwrap(),
        expire_at: None,
        created_at: now(),
    }
}

async fn create(log: &dyn EventLog, order: &NewOrder) {
    publish_order_event(
        log,
        topics::ORDERS,
        now(),
        Event::OrderCreated(order.clone()),
    )
    .await
    .unwrap();
}

/// The venue's `Submit` commands so far, by order id.
async fn submits(log: &dyn EventLog) -> Vec<OrderId> {
    let records = log.read(topics::VENUE, 0, 0, 10_000).await.unwrap();
    records
        .iter()
        .filter_map(|r| match decode_command(r).unwrap() {
            VenueCommand::Submit { order, .. } => Some(order.order_id),
            _ => None,
        })
        .collect()
}

/// The risk decisions on `orders` so far, by order id.
async fn decisions(log: &dyn EventLog) -> Vec<(OrderId, Option<Reservation>)> {
    let records = log.read(topics::ORDERS, 0, 0, 10_000).await.unwrap();
    records
        .iter()
        .filter_map(|r| match &decode_event(r).unwrap().event {
            Event::RiskValidated {
                order_id,
                reservation,
                ..
            } => Some((*order_id, reservation.clone())),
            _ => None,
        })
        .collect()
}

async fn wait_for_submit(log: &dyn EventLog, id: OrderId) {
    let started = Instant::now();
    while !submits(log).await.contains(&id) {
        assert!(started.elapsed() < PATIENCE, "no Submit for {id}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_order_created_again_after_a_restart_is_not_decided_or_sent_twice() {
    let (_embedded, ports) = funded().await;
    let log = ports.log.clone();
    let ids = OrderIdGenerator::new(1).unwrap();
    let first = buy(ids.next_id());

    let risk = start_risk(&ports);
    create(log.as_ref(), &first).await;
    wait_for_submit(log.as_ref(), first.order_id).await;
    // Once the stage has read its decision (offset 2) it stops, its snapshot at offset 2.
    let started = Instant::now();
    while log.committed("risk", topics::ORDERS, 0).await.unwrap() != Some(3) {
        assert!(started.elapsed() < PATIENCE, "risk never read its decision");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_risk(risk).await;

    // A repeat while the stage is down (in the tail it replays) and one after it is back.
    create(log.as_ref(), &first).await;
    let risk = start_risk(&ports);
    create(log.as_ref(), &first).await;
    let marker = buy(ids.next_id());
    create(log.as_ref(), &marker).await;
    wait_for_submit(log.as_ref(), marker.order_id).await;
    stop_risk(risk).await;

    assert_eq!(
        submits(log.as_ref()).await,
        vec![first.order_id, marker.order_id],
        "one Submit per order"
    );
    let decided: Vec<OrderId> = decisions(log.as_ref())
        .await
        .into_iter()
        .map(|(id, reservation)| {
            assert!(reservation.is_some(), "{id} approved");
            id
        })
        .collect();
    assert_eq!(decided, vec![first.order_id, marker.order_id]);
}

/// A crash of the risk stage after its outputs were appended: the group's position on
/// `orders` goes back to `offset`, so the restarted stage reads from there again.
async fn rewind_risk(log: &dyn EventLog, offset: u64) {
    let mut rewind = log.subscribe("risk", &[topics::ORDERS]).await.unwrap();
    rewind.poll(1, Duration::ZERO).await.unwrap();
    let tp = oms_ports::event_log::TopicPartition {
        topic: topics::ORDERS.into(),
        partition: 0,
    };
    rewind.commit(&[(tp, offset)]).await.unwrap();
}

/// The `CancelRequested` records on `orders` so far, with the offset of the trigger (if any).
async fn cancel_requests(log: &dyn EventLog) -> (Vec<OrderId>, Option<u64>) {
    let records = log.read(topics::ORDERS, 0, 0, 10_000).await.unwrap();
    let mut cancels = Vec::new();
    let mut trigger = None;
    for r in &records {
        match &decode_event(r).unwrap().event {
            Event::CancelRequested { order_id, .. } => cancels.push(*order_id),
            Event::CancelAfterTriggered { .. } => trigger = Some(r.offset),
            _ => {}
        }
    }
    (cancels, trigger)
}

#[tokio::test]
async fn a_dead_mans_switch_that_fired_before_a_crash_does_not_cancel_again_after_it() {
    let (_embedded, ports) = funded().await;
    let log = ports.log.clone();
    let ids = OrderIdGenerator::new(1).unwrap();
    let orders = [buy(ids.next_id()), buy(ids.next_id())];

    // No snapshot: the restarted stage replays everything, its outputs past the committed
    // position included.
    let risk = start_risk_snapshotting(&ports, 1_000_000);
    for o in &orders {
        create(log.as_ref(), o).await;
        wait_for_submit(log.as_ref(), o.order_id).await;
    }
    let switch = Event::CancelAfterSet {
        account: ALICE,
        deadline: Some(oms_domain::ids::Timestamp(now().0 + 200)),
        change: 1,
    };
    publish_order_event(log.as_ref(), topics::ORDERS, now(), switch)
        .await
        .unwrap();
    let started = Instant::now();
    let trigger = loop {
        let (cancels, trigger) = cancel_requests(log.as_ref()).await;
        if cancels.len() == 2 {
            break trigger.expect("the trigger is on the log");
        }
        assert!(started.elapsed() < PATIENCE, "the switch never fired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let end = log.end_offset(topics::ORDERS, 0).await.unwrap();
    while log.committed("risk", topics::ORDERS, 0).await.unwrap() != Some(end) {
        assert!(started.elapsed() < PATIENCE, "risk never read its cancels");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_risk(risk).await;

    // The crash: the stage had appended the cancels but not committed past the trigger.
    rewind_risk(log.as_ref(), trigger).await;

    let risk = start_risk_snapshotting(&ports, 1_000_000);
    let marker = buy(ids.next_id());
    create(log.as_ref(), &marker).await;
    wait_for_submit(log.as_ref(), marker.order_id).await;
    stop_risk(risk).await;
    let (cancels, _) = cancel_requests(log.as_ref()).await;
    let mut expected: Vec<OrderId> = orders.iter().map(|o| o.order_id).collect();
    expected.sort();
    assert_eq!(cancels, expected, "each order asked to cancel once");
}

/// The withdrawal decisions on `orders` so far: (reference, approved), and the offset of each
/// request by reference.
async fn withdrawals(log: &dyn EventLog) -> (Vec<(String, bool)>, Vec<(String, u64)>) {
    let records = log.read(topics::ORDERS, 0, 0, 10_000).await.unwrap();
    let mut decided = Vec::new();
    let mut requested = Vec::new();
    for r in &records {
        match &decode_event(r).unwrap().event {
            Event::WithdrawalDecided {
                reference,
                approved,
                ..
            } => decided.push((reference.clone(), *approved)),
            Event::WithdrawalRequested { reference, .. } => {
                requested.push((reference.clone(), r.offset))
            }
            _ => {}
        }
    }
    (decided, requested)
}

async fn request_withdrawal(log: &dyn EventLog, amount: Decimal, reference: &str) {
    let request = Event::WithdrawalRequested {
        account: ALICE,
        asset: Asset::new("USD"),
        amount,
        reference: reference.into(),
    };
    publish_order_event(log, topics::ORDERS, now(), request)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_withdrawal_decided_before_a_crash_is_neither_decided_nor_paid_again_after_it() {
    let (_embedded, ports) = funded().await;
    let log = ports.log.clone();
    // No snapshot: the restarted stage replays everything, its decision past the committed
    // position included.
    let risk = start_risk_snapshotting(&ports, 1_000_000);
    request_withdrawal(log.as_ref(), Decimal::from(1_000_000), "payout-1").await;
    let started = Instant::now();
    while withdrawals(log.as_ref()).await.0.is_empty() {
        assert!(started.elapsed() < PATIENCE, "never decided");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let end = log.end_offset(topics::ORDERS, 0).await.unwrap();
    while log.committed("risk", topics::ORDERS, 0).await.unwrap() != Some(end) {
        assert!(started.elapsed() < PATIENCE, "risk never read its decision");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_risk(risk).await;

    // The crash: the decision was appended, the request not committed.
    let (_, requested) = withdrawals(log.as_ref()).await;
    rewind_risk(log.as_ref(), requested[0].1).await;

    let risk = start_risk_snapshotting(&ports, 1_000_000);
    // Everything was paid out once: one more cent is refused.
    request_withdrawal(log.as_ref(), Decimal::new(1, 2), "payout-2").await;
    let started = Instant::now();
    while withdrawals(log.as_ref()).await.0.len() < 2 {
        assert!(started.elapsed() < PATIENCE, "payout-2 never decided");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_risk(risk).await;
    assert_eq!(
        withdrawals(log.as_ref()).await.0,
        vec![
            ("payout-1".to_string(), true),
            ("payout-2".to_string(), false)
        ],
        "decided once each, paid once"
    );
}

/// A quiet partition is snapshotted once its oldest unsnapshotted record has waited the
/// maximum age, though far fewer records came than `snapshotEvery`; a restart then replays
/// from there, and records the log deleted before that snapshot do not matter.
#[tokio::test]
async fn a_quiet_partition_is_snapshotted_by_age() {
    let (_embedded, ports) = funded().await;
    let log = ports.log.clone();
    let ids = OrderIdGenerator::new(1).unwrap();
    let order = buy(ids.next_id());
    let risk = start(risk_stage(&ports, 1_000_000, Duration::from_millis(300)));
    create(log.as_ref(), &order).await;
    wait_for_submit(log.as_ref(), order.order_id).await;
    let started = Instant::now();
    let covered = loop {
        if let Some((offset, _)) = ports.store.load_snapshot("risk", 0).await.unwrap() {
            break offset;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "no snapshot of the quiet partition"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        covered >= 2,
        "the deposit and the order: snapshot at {covered}"
    );
    stop_risk(risk).await;

    // The records before the snapshot are gone: the stage starts from the snapshot anyway.
    let trimmed = Ports {
        log: api_common::HookedLog::deleted_before(log.clone(), covered),
        store: ports.store.clone(),
    };
    let risk = start_risk(&trimmed);
    let marker = buy(ids.next_id());
    create(log.as_ref(), &marker).await;
    wait_for_submit(log.as_ref(), marker.order_id).await;
    stop_risk(risk).await;
}

/// Records the log deleted (retention) before any snapshot covered them: the stage refuses to
/// rebuild the partition from what is left, which would lose the deposit, and says why.
#[tokio::test]
async fn records_deleted_before_the_snapshot_stop_the_stage() {
    let (_embedded, ports) = funded().await;
    let log = ports.log.clone();
    let ids = OrderIdGenerator::new(1).unwrap();
    create(log.as_ref(), &buy(ids.next_id())).await;
    let trimmed = Ports {
        log: api_common::HookedLog::deleted_before(log.clone(), 1),
        store: ports.store.clone(),
    };
    let (_stop, shutdown) = watch::channel(false);
    let run = risk_stage(&trimmed, 1_000_000, Duration::from_secs(3600)).run(shutdown);
    let err = tokio::time::timeout(PATIENCE, run)
        .await
        .expect("the stage stops at once")
        .expect_err("no state rebuilt without the deleted deposit");
    let why = err.to_string();
    assert!(
        why.contains("records 0..1 of orders/0 were deleted"),
        "{why}"
    );
    assert!(
        submits(log.as_ref()).await.is_empty(),
        "nothing decided on a partial state"
    );
}
