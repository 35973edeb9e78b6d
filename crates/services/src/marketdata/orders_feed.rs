//! The private `orders` channel: order-lifecycle events, read live from topic `orders`, pushed
//! to the WebSocket clients of the order's own account only.
//!
//! Each message carries the order as it stands after the event. Orders are folded here with the
//! domain state machine from `OrderCreated` on; an order first seen mid-life is read from the
//! order store, which may be a little behind or ahead of this feed — either way the client gets
//! the freshest state known.

use super::protocol::{self, orders_key};
use super::state::MarketData;
use super::views::{FillView, OrderUpdate, OrderView};
use super::MarketDataError;
use crate::codec::decode_event;
use crate::ingestion::clock::format_rfc3339_millis;
use crate::pipeline::processor::OrderUpdate as ProcessorUpdate;
use crate::pipeline::stage::{backoff, POLL_MAX, POLL_TIMEOUT};
use crate::pipeline::Shutdown;
use oms_domain::events::{Envelope, Event};
use oms_domain::ids::{AccountId, OrderId};
use oms_domain::order::Order;
use oms_domain::state_machine::{apply, Applied};
use oms_ports::event_log::{ConsumerEvent, EventLog};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Live orders remembered between events; beyond this the memory is simply cleared.
const MAX_CACHED_ORDERS: usize = 100_000;

/// An `OrderCreated` appended this long after its own time may be a resumed request repeating
/// an order placed long ago (a resume comes only after the idempotency lock expires), so the
/// store is asked first. A fresh order is appended within milliseconds of its time; one held
/// up longer under load costs only that look-up.
const LATE_CREATION_MS: i64 = 1_000;

/// Folds order events into the order states pushed on the private channel.
#[derive(Default)]
pub struct OrdersFeed {
    orders: HashMap<OrderId, Order>,
}

impl OrdersFeed {
    pub fn new() -> Self {
        Self::default()
    }

    /// Handles one order-lifecycle event, appended to the log at `appended_ms`; queues an
    /// update for the account's subscribers.
    pub async fn on_event(&mut self, md: &MarketData, env: &Envelope, appended_ms: i64) {
        let ev = &env.event;
        let (Some(account), Some(order_id)) = (ev.account(), ev.order_id()) else {
            return;
        };
        let key = orders_key(account);
        if !md.hub().has_subscribers(&key) {
            // Nobody listens: forget the order rather than keep a copy that goes stale.
            self.orders.remove(&order_id);
            return;
        }
        let (order, push) = match ev {
            // Already followed: a repeated `OrderCreated` (a resumed request) changes nothing.
            Event::OrderCreated(_) if self.orders.contains_key(&order_id) => return,
            Event::OrderCreated(new) if appended_ms - env.at.millis() > LATE_CREATION_MS => {
                match stored_order(md, account, order_id).await {
                    // Known already: pushing NEW would move the client's order back. A live
                    // one is sent as stored (this feed may be behind the store); a finished
                    // one has nothing new to say.
                    Some(Some(stored)) => {
                        let push = !stored.status.is_final();
                        (stored, push)
                    }
                    Some(None) => (Order::from_new(new), true),
                    None => return,
                }
            }
            Event::OrderCreated(new) => (Order::from_new(new), true),
            _ => {
                let (mut order, from_store) = match self.orders.remove(&order_id) {
                    Some(o) => (o, false),
                    None => match stored_order(md, account, order_id).await {
                        Some(Some(o)) => (o, true),
                        Some(None) | None => return,
                    },
                };
                let changed = match apply(&mut order, ev, env.at) {
                    Ok(Applied::Changed) => true,
                    Ok(Applied::Unchanged) => false,
                    Err(illegal) => {
                        // The stored copy already holds this event (or is behind it).
                        tracing::debug!(error = %illegal, "orders channel kept the stored order");
                        false
                    }
                };
                (order, ev.shown_to_owner() && (changed || from_store))
            }
        };
        if push {
            publish_order_update(md, &order, env);
        }
        if !order.status.is_final() {
            if self.orders.len() >= MAX_CACHED_ORDERS {
                self.orders.clear();
            }
            self.orders.insert(order_id, order);
        }
    }
}

/// The order as the store has it; `None` (logged) when the store cannot be reached.
async fn stored_order(
    md: &MarketData,
    account: AccountId,
    order_id: OrderId,
) -> Option<Option<Order>> {
    md.store()
        .order(account, order_id)
        .await
        .inspect_err(|e| {
            tracing::warn!(%order_id, error = %e, "order store unavailable for the orders channel");
        })
        .ok()
}

/// Queues `{"order":...}` (with `"fill"` for a fill) for the subscribers of the order's account.
pub fn publish_order_update(md: &MarketData, order: &Order, env: &Envelope) {
    let fill = match &env.event {
        Event::OrderFilled(f) => {
            let mut view = FillView::new(f, md.instrument(&f.symbol));
            // The fill's time is its event's time.
            view.at = Some(format_rfc3339_millis(env.at));
            Some(view)
        }
        _ => None,
    };
    let update = OrderUpdate {
        fill,
        order: OrderView::new(order, md.instrument(&order.symbol)),
    };
    let key = orders_key(order.account);
    let n = md.hub().publish(&key, None, |seq| {
        protocol::data_message("orders", None, seq, &update)
    });
    md.metrics()
        .order_updates_sent
        .fetch_add(n as u64, Ordering::Relaxed);
}

/// The in-process alternative to [`run_orders_feed`]: forwards the processor's persisted order
/// updates (`ProcessorStage::updates`). Each carries the stored order, but the processor sends
/// only an order's latest change per batch, so a client may see fewer fill messages than with
/// the topic feed, which passes on every event.
pub async fn run_processor_updates(
    md: MarketData,
    mut updates: broadcast::Receiver<ProcessorUpdate>,
    mut shutdown: Shutdown,
) {
    md.set_orders_feed_live(true);
    while !*shutdown.borrow() {
        tokio::select! {
            r = updates.recv() => match r {
                Ok(u) => {
                    if md.hub().has_subscribers(&orders_key(u.order.account)) {
                        publish_order_update(&md, &u.order, &u.event);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "orders channel fell behind the processor's updates");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = shutdown.changed() => break,
        }
    }
    md.set_orders_feed_live(false);
}

/// Reads topic `orders` from its end (only live updates matter) until `shutdown`.
pub async fn run_orders_feed(
    md: MarketData,
    log: Arc<dyn EventLog>,
    mut shutdown: Shutdown,
) -> Result<(), MarketDataError> {
    let cfg = md.config().clone();
    let mut consumer = log
        .subscribe(&cfg.orders_group, &[cfg.orders_topic.as_str()])
        .await?;
    let mut feed = OrdersFeed::new();
    let mut failures = 0u32;
    while !*shutdown.borrow() {
        let polled = tokio::select! {
            r = consumer.poll(POLL_MAX, POLL_TIMEOUT) => r,
            _ = shutdown.changed() => break,
        };
        match polled {
            Ok(ConsumerEvent::Assigned(tps)) => {
                failures = 0;
                for tp in tps {
                    let end = log.end_offset(&tp.topic, tp.partition).await?;
                    consumer.seek(&tp, end).await?;
                }
                md.set_orders_feed_live(true);
            }
            Ok(ConsumerEvent::Revoked(_)) => {
                failures = 0;
                md.set_orders_feed_live(false);
            }
            Ok(ConsumerEvent::Records(records)) => {
                failures = 0;
                for rec in &records {
                    match decode_event(rec) {
                        Ok(env) => feed.on_event(&md, &env, rec.timestamp_ms).await,
                        Err(e) => tracing::warn!(error = %e, "skipping an order record"),
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "orders channel poll failed, retrying");
                backoff(failures).await;
                failures += 1;
            }
        }
    }
    Ok(())
}
