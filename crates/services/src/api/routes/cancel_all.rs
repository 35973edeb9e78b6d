//! `DELETE /api/orders`: cancels every open order of the caller, or those of one symbol and/or
//! side, that was acknowledged before the request arrived.
//!
//! The order store lists the orders the processor has recorded; orders acknowledged a moment
//! ago may be only in the log. So the request reads the account's partition of `orders` from
//! the processor's stored position: `OrderCreated` events before the end it saw on arrival are
//! cancelled too (a cancel behind its order in the partition reaches risk after it), and those
//! after it are left alone, even if the store lists them by then. Nothing waits for the
//! processor, so the cancel works however far behind it is.

use crate::api::auth::Caller;
use crate::api::idempotency::run_idempotent;
use crate::api::problem::Problem;
use crate::api::reply::{Reply, ReplyResult};
use crate::api::request_ctx::spawn_detached;
use crate::api::routes::orders::{parse_side, parse_symbol, MAX_LIMIT};
use crate::api::state::ApiState;
use crate::api::views::OrderView;
use crate::codec::{decode_event, event_key};
use crate::ingestion::clock;
use crate::ingestion::publish::order_event_record;
use crate::ingestion::{codes, FieldError};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use oms_domain::events::{Envelope, Event};
use oms_domain::ids::{AccountId, OrderId, Symbol};
use oms_domain::order::{NewOrder, Order, OrderStatus, Side};
use oms_ports::event_log::partition_for;
use oms_ports::order_store::OrderQuery;
use oms_ports::PortError;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Records read from the log per call.
const READ_BATCH: usize = 1_000;
/// How long a read of the partition may find a range the log reports but cannot serve yet (a
/// broker that moves a partition's end before it stores the batch) before giving up.
const READ_PATIENCE: Duration = Duration::from_secs(5);

/// Which open orders to cancel: all of the caller's, or those of one symbol and/or side.
#[derive(Debug, Default, PartialEq, Eq)]
struct Filter {
    symbol: Option<Symbol>,
    side: Option<Side>,
}

impl Filter {
    /// Parses the query string. Anything but `symbol` and `side`, or either given twice, is
    /// refused: a misspelt filter must not widen a cancel to every order.
    fn parse(pairs: &[(String, String)], s: &ApiState) -> Result<Self, Vec<FieldError>> {
        let mut errs = Vec::new();
        let mut filter = Filter::default();
        let mut seen = HashSet::new();
        for (name, value) in pairs {
            if !seen.insert(name.as_str()) {
                errs.push(FieldError::new(
                    name,
                    codes::MALFORMED_JSON,
                    format!("{name} is given more than once"),
                ));
                continue;
            }
            match name.as_str() {
                "symbol" => match parse_symbol(value, s) {
                    Ok(v) => filter.symbol = Some(v),
                    Err(e) => errs.push(e),
                },
                "side" => match parse_side(value) {
                    Ok(v) => filter.side = Some(v),
                    Err(e) => errs.push(e),
                },
                _ => errs.push(FieldError::new(
                    name,
                    codes::UNKNOWN_FIELD,
                    format!("unknown parameter {name:?}: only symbol and side filter a cancel of all orders"),
                )),
            }
        }
        if errs.is_empty() {
            Ok(filter)
        } else {
            Err(errs)
        }
    }

    /// The same filter always reads the same, so a retry under one idempotency key matches
    /// whatever order its parameters came in.
    fn canonical(&self) -> String {
        let side = match self.side {
            Some(Side::Buy) => "BUY",
            Some(Side::Sell) => "SELL",
            None => "",
        };
        let symbol = self.symbol.as_ref().map_or("", |s| s.as_str());
        format!("symbol={symbol}&side={side}")
    }

    fn covers(&self, order: &NewOrder) -> bool {
        self.symbol.as_ref().is_none_or(|s| *s == order.symbol)
            && self.side.is_none_or(|s| s == order.side)
    }
}

pub async fn cancel_all(
    State(s): State<ApiState>,
    caller: Caller,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let filter = match query
        .map_err(|e| {
            vec![FieldError::new(
                "query",
                codes::MALFORMED_JSON,
                format!("bad query string: {}", e.body_text()),
            )]
        })
        .and_then(|Query(pairs)| Filter::parse(&pairs, &s))
    {
        Ok(f) => f,
        Err(errs) => return Reply::from(Problem::validation(errs)).into_response(),
    };
    // Run to the end even if the client goes away: a request dropped midway would keep its
    // idempotency key locked, and its retries refused, for the whole lock.
    let task = spawn_detached(async move {
        run_idempotent(
            &s,
            caller.account,
            &headers,
            "DELETE",
            "/api/orders",
            filter.canonical().as_bytes(),
            Vec::new(),
            |_| async {
                request(&s, caller.account, &filter)
                    .await
                    .unwrap_or_else(Reply::from)
            },
        )
        .await
    });
    match task.await {
        Ok(reply) => reply.into_response(),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Finds the orders to cancel and appends a `CancelRequested` for each, a page at a time.
/// Cancels appended before a failure stay: repeating a cancel is harmless, so a retry simply
/// runs again.
async fn request(s: &ApiState, account: AccountId, filter: &Filter) -> ReplyResult {
    let topic = &s.config.orders_topic;
    let log_error = |e: PortError| Problem::from_port("event log", &e);
    let store_error = |e: PortError| Problem::from_port("order store", &e);
    let partitions = s.log.partition_count(topic).await.map_err(log_error)?;
    let key = event_key(&Event::CancelRequested {
        account,
        order_id: OrderId(0),
    });
    let partition = partition_for(&key, partitions);
    let arrived_at = s
        .log
        .end_offset(topic, partition)
        .await
        .map_err(log_error)?;
    let recorded = s
        .store
        .positions(&s.config.processor_group)
        .await
        .map_err(store_error)?
        .into_iter()
        .find(|p| &p.topic == topic && p.partition == partition)
        .map_or(0, |p| p.next_offset);
    let stored = open_in_store(s, account, filter).await?;
    // Read after the store, so every order the store listed is in the range read.
    let read_to = s
        .log
        .end_offset(topic, partition)
        .await
        .map_err(log_error)?;
    let from = recorded.min(arrived_at);
    let created = created_orders(s, account, partition, from, read_to).await?;
    // Orders created before arrival that the scan did not list may have been recorded (and
    // even ended) since: their stored state decides.
    let listed: HashSet<OrderId> = stored.iter().map(|o| o.order_id).collect();
    let mut since = HashMap::new();
    for (_, o) in created.iter().filter(|(offset, o)| {
        *offset < arrived_at && filter.covers(o) && !listed.contains(&o.order_id)
    }) {
        if let Some(order) = s
            .store
            .order(account, o.order_id)
            .await
            .map_err(store_error)?
        {
            since.insert(order.order_id, order);
        }
    }
    let chosen = choose(stored, &created, &since, arrived_at, filter);

    let now = clock::now();
    for page in chosen.chunks(MAX_LIMIT as usize) {
        let records = page
            .iter()
            .map(|o| {
                order_event_record(&Envelope::new(
                    now,
                    Event::CancelRequested {
                        account,
                        order_id: o.order_id,
                    },
                ))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(log_error)?;
        s.log.append(topic, records).await.map_err(log_error)?;
    }
    let views: Vec<OrderView> = chosen
        .iter()
        .map(|o| OrderView::new(o, s.instrument(o.symbol.as_str())))
        .collect();
    Ok(Reply::json(
        StatusCode::ACCEPTED,
        &json!({ "orders": views }),
    ))
}

/// The caller's orders the store lists as open, each once: statuses only move forward and
/// are read in that order, so an order that changes status between pages is still found.
async fn open_in_store(
    s: &ApiState,
    account: AccountId,
    filter: &Filter,
) -> Result<Vec<Order>, Problem> {
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    for status in OrderStatus::ALL.into_iter().filter(|st| !st.is_final()) {
        let mut q = OrderQuery {
            account: Some(account),
            symbol: filter.symbol.clone(),
            side: filter.side,
            status: Some(status),
            limit: MAX_LIMIT,
            ..OrderQuery::default()
        };
        loop {
            let page = s
                .store
                .orders(&q)
                .await
                .map_err(|e| Problem::from_port("order store", &e))?;
            let next = match page.last() {
                Some(last) if page.len() == MAX_LIMIT as usize => Some(last.order_id),
                _ => None,
            };
            found.extend(page.into_iter().filter(|o| seen.insert(o.order_id)));
            match next {
                Some(id) => q.before = Some(id),
                None => break,
            }
        }
    }
    Ok(found)
}

/// The caller's `OrderCreated` events in `[from, to)` of the partition, with their offsets.
async fn created_orders(
    s: &ApiState,
    account: AccountId,
    partition: u32,
    from: u64,
    to: u64,
) -> Result<Vec<(u64, NewOrder)>, Problem> {
    let topic = &s.config.orders_topic;
    let mut found = Vec::new();
    let mut offset = from;
    let mut stalled_since = None;
    while offset < to {
        let records = s
            .log
            .read(topic, partition, offset, READ_BATCH)
            .await
            .map_err(|e| Problem::from_port("event log", &e))?;
        let Some(last) = records.last() else {
            let since = *stalled_since.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() > READ_PATIENCE {
                return Err(Problem::from_port(
                    "event log",
                    &PortError::Unavailable(format!(
                        "partition {partition} of {topic} could not be read from offset {offset} to {to}"
                    )),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        stalled_since = None;
        offset = last.offset + 1;
        for rec in records.iter().filter(|r| r.offset < to) {
            // Another account's events, or ones this build cannot read, are not this
            // account's orders.
            if let Ok(env) = decode_event(rec) {
                if let Event::OrderCreated(o) = &env.event {
                    if o.account == account {
                        found.push((rec.offset, o.clone()));
                    }
                }
            }
        }
    }
    Ok(found)
}

/// The orders to cancel: those the store listed as open and those created in the log before
/// `arrived_at` (as `since` has them if they were stored after the listing, leaving out the
/// ended ones), each once, leaving out any created at or after `arrived_at`.
fn choose(
    stored: Vec<Order>,
    created: &[(u64, NewOrder)],
    since: &HashMap<OrderId, Order>,
    arrived_at: u64,
    filter: &Filter,
) -> Vec<Order> {
    let later: HashSet<OrderId> = created
        .iter()
        .filter(|(offset, _)| *offset >= arrived_at)
        .map(|(_, o)| o.order_id)
        .collect();
    let mut chosen: HashMap<OrderId, Order> = stored
        .into_iter()
        .filter(|o| !later.contains(&o.order_id))
        .map(|o| (o.order_id, o))
        .collect();
    for (_, o) in created.iter().filter(|(offset, _)| *offset < arrived_at) {
        if !filter.covers(o) || chosen.contains_key(&o.order_id) {
            continue;
        }
        match since.get(&o.order_id) {
            Some(recorded) if recorded.status.is_final() => {}
            Some(recorded) => {
                chosen.insert(o.order_id, recorded.clone());
            }
            None => {
                chosen.insert(o.order_id, Order::from_new(o));
            }
        }
    }
    let mut out: Vec<Order> = chosen.into_values().collect();
    out.sort_unstable_by_key(|o| std::cmp::Reverse(o.order_id));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_domain::ids::Timestamp;
    use oms_domain::order::{OrderType, TimeInForce};
    use oms_domain::Decimal;

    fn new_order(id: u64, symbol: &str, side: Side) -> NewOrder {
        NewOrder {
            order_id: OrderId(id),
            client_order_id: None,
            account: AccountId(1),
            symbol: Symbol::new(symbol),
            side,
            order_type: OrderType::Limit,
            time_in_force: TimeInForce::Gtc,
            post_only: false,
            price: Some(Decimal::ONE),
            stop_price: None,
            quantity: Decimal::ONE,
            expire_at: None,
            created_at: Timestamp(0),
        }
    }

    fn with_status(id: u64, status: OrderStatus) -> Order {
        let mut o = Order::from_new(&new_order(id, "BTC/USD", Side::Buy));
        o.status = status;
        o
    }

    fn ids(orders: &[Order]) -> Vec<(u64, OrderStatus)> {
        orders.iter().map(|o| (o.order_id.0, o.status)).collect()
    }

    #[test]
    fn orders_created_after_arrival_are_left_alone_even_when_stored() {
        let stored = vec![
            with_status(1, OrderStatus::Accepted),
            with_status(5, OrderStatus::Accepted),
        ];
        let created = vec![
            (10, new_order(2, "BTC/USD", Side::Buy)),
            (11, new_order(5, "BTC/USD", Side::Buy)),
            (12, new_order(6, "BTC/USD", Side::Buy)),
        ];
        let chosen = choose(stored, &created, &HashMap::new(), 11, &Filter::default());
        assert_eq!(
            ids(&chosen),
            vec![(2, OrderStatus::New), (1, OrderStatus::Accepted)]
        );
    }

    #[test]
    fn an_order_is_chosen_once_in_its_latest_known_state() {
        let stored = vec![with_status(3, OrderStatus::PartiallyFilled)];
        let created = vec![
            (1, new_order(3, "BTC/USD", Side::Buy)),
            (2, new_order(4, "BTC/USD", Side::Buy)),
            (3, new_order(7, "BTC/USD", Side::Buy)),
            (4, new_order(8, "ETH/USD", Side::Buy)),
            (5, new_order(9, "BTC/USD", Side::Sell)),
        ];
        let since = HashMap::from([
            (OrderId(4), with_status(4, OrderStatus::Filled)),
            (OrderId(7), with_status(7, OrderStatus::Accepted)),
        ]);
        let filter = Filter {
            symbol: Some(Symbol::new("BTC/USD")),
            side: Some(Side::Buy),
        };
        let chosen = choose(stored, &created, &since, 100, &filter);
        assert_eq!(
            ids(&chosen),
            vec![
                (7, OrderStatus::Accepted),
                (3, OrderStatus::PartiallyFilled)
            ]
        );
    }

    #[test]
    fn the_canonical_filter_ignores_parameter_order() {
        let a = Filter {
            symbol: Some(Symbol::new("BTC/USD")),
            side: Some(Side::Sell),
        };
        assert_eq!(a.canonical(), "symbol=BTC/USD&side=SELL");
        assert_eq!(Filter::default().canonical(), "symbol=&side=");
    }
}
