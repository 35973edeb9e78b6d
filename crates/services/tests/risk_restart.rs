//! The risk stage across a restart: an order's `OrderCreated` appended again after the stage
//! restored a snapshot (an idempotent request resumed after a crash appends it once more,
//! same id) gets no second decision and no second venue command.
//!
//! The decision on the last order before a snapshot lies in the log after it: the restored
//! stage finds that decision in its tail although the request it answers came before the
//! snapshot, and must not take it for the answer to the repeat.

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
    let (stop, shutdown) = watch::channel(false);
    let stage = RiskStage {
        log: ports.log.clone(),
        store: ports.store.clone(),
        instruments: default_instruments(),
        config: RiskConfig::default(),
        fee_account: AccountId(1),
        references: References::default(),
        // The deposit and the first order: a snapshot right after the order, before the
        // stage reads its own decision.
        snapshot_every: 2,
        remember_ended: Duration::from_secs(3600),
        names: LogNames::default(),
    };
    let task = tokio::spawn(async move {
        stage.run(shutdown).await.expect("risk stage");
    });
    (stop, task)
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
