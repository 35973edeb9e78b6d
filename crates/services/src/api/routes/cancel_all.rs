//! `DELETE /api/orders`: cancels every open order of the caller, or those of one symbol and/or
//! side, that was acknowledged before the request arrived.
//!
//! The order store lists the orders the processor has recorded; orders acknowledged a moment
//! ago may be only in the log. So the request also reads the account's partition of `orders`
//! from the processor's stored position and folds the account's events there: orders created
//! before the partition's end on arrival are cancelled unless they have ended (a cancel behind
//! its order in the partition reaches risk after it); orders created after that end are left
//! alone, even if the store lists them by then. Nothing waits for the processor; the log read
//! grows with how far behind it is, up to [`MAX_SCAN`] records, past which the request is
//! refused with 503 rather than left to run for minutes.

use super::{distinct_params, query_pairs};
use crate::api::auth::Trader;
use crate::api::idempotency::run_idempotent;
use crate::api::problem::Problem;
use crate::api::reply::{Reply, ReplyResult};
use crate::api::request_ctx::spawn_detached;
use crate::api::routes::orders::{parse_side, parse_symbol, MAX_LIMIT};
use crate::api::state::ApiState;
use crate::api::views::OrderView;
use crate::codec::{account_key, decode_event};
use crate::ingestion::clock;
use crate::ingestion::publish::order_event_record;
use crate::ingestion::{codes, FieldError};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use oms_domain::events::{CancelReason, Envelope, Event};
use oms_domain::ids::{AccountId, OrderId, Symbol};
use oms_domain::order::{Order, OrderStatus, Side};
use oms_domain::state_machine;
use oms_ports::event_log::partition_for;
use oms_ports::order_store::OrderQuery;
use oms_ports::PortError;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Records read from the log per call.
const READ_BATCH: usize = 5_000;
/// How long a read of the partition may find a range the log reports but cannot serve yet (a
/// broker that moves a partition's end before it stores the batch) before giving up.
const READ_PATIENCE: Duration = Duration::from_secs(15);
/// The most records of the partition one request reads: the processor's lag it can cover.
pub const MAX_SCAN: u64 = 500_000;

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
        for (name, value) in distinct_params(pairs, &mut errs) {
            match name {
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

    fn covers(&self, order: &Order) -> bool {
        self.symbol.as_ref().is_none_or(|s| *s == order.symbol)
            && self.side.is_none_or(|s| s == order.side)
    }
}

/// `DELETE /api/orders`: the caller's own orders.
pub async fn cancel_all(
    State(s): State<ApiState>,
    caller: Trader,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
    body: Bytes,
) -> Response {
    let requested = Requested {
        scope: caller.account,
        path: "/api/orders".into(),
        reason: None,
    };
    cancel_all_of(s, caller.account, requested, headers, query, &body).await
}

/// Who asked for a cancel of all orders: `scope` and `path` place the request's idempotency
/// key (the account's own, or an operator's for the admin API); `reason` goes on each cancel
/// (none: the account's own request).
pub(super) struct Requested<S> {
    pub scope: S,
    pub path: String,
    pub reason: Option<CancelReason>,
}

/// Cancels `account`'s open orders that `query` selects.
pub(super) async fn cancel_all_of(
    s: ApiState,
    account: AccountId,
    requested: Requested<impl std::fmt::Display + Send + 'static>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
    body: &[u8],
) -> Response {
    if !body.is_empty() {
        // A client that puts its filter in a body (as for a POST) must not cancel everything.
        return Reply::from(Problem::validation(vec![FieldError::new(
            "body",
            codes::UNEXPECTED_BODY,
            "a cancel of all orders takes no body: give symbol and side in the query string; nothing was cancelled",
        )]))
        .into_response();
    }
    let filter = match query_pairs(query)
        .map_err(|e| vec![e])
        .and_then(|pairs| Filter::parse(&pairs, &s))
    {
        Ok(f) => f,
        Err(errs) => return Reply::from(Problem::validation(errs)).into_response(),
    };
    // Where the account's partition ends now: orders created past it came after this request.
    let arrival = match Arrival::now(&s, account).await {
        Ok(a) => a,
        Err(p) => return Reply::from(p).into_response(),
    };
    let Requested {
        scope,
        path,
        reason,
    } = requested;
    // Run to the end even if the client goes away: a request dropped midway would keep its
    // idempotency key locked, and its retries refused, for the whole lock.
    let task = spawn_detached(async move {
        run_idempotent(
            &s,
            scope,
            &headers,
            "DELETE",
            &path,
            filter.canonical().as_bytes(),
            Vec::new(),
            |_| async {
                request(&s, account, &filter, &arrival, reason)
                    .await
                    .unwrap_or_else(Reply::from)
            },
        )
        .await
    });
    match task.await {
        Ok(reply) => reply.into_response(),
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // Cancelled: the runtime is shutting down.
            Err(_) => Reply::from(Problem::from_port(
                "server",
                &PortError::Unavailable("shutting down".into()),
            ))
            .into_response(),
        },
    }
}

/// The account's partition of `orders` and its end when the request arrived.
struct Arrival {
    key: Vec<u8>,
    partition: u32,
    end: u64,
}

impl Arrival {
    async fn now(s: &ApiState, account: AccountId) -> Result<Arrival, Problem> {
        let topic = &s.config.orders_topic;
        let log_error = |e: PortError| Problem::from_port("event log", &e);
        let partitions = s.log.partition_count(topic).await.map_err(log_error)?;
        let key = account_key(account);
        let partition = partition_for(&key, partitions);
        let end = s
            .log
            .end_offset(topic, partition)
            .await
            .map_err(log_error)?;
        Ok(Arrival {
            key,
            partition,
            end,
        })
    }
}

/// Finds the orders to cancel and appends a `CancelRequested` for each, a page at a time.
/// Cancels appended before a failure stay: repeating a cancel is harmless, so a retry simply
/// runs again.
async fn request(
    s: &ApiState,
    account: AccountId,
    filter: &Filter,
    arrival: &Arrival,
    reason: Option<CancelReason>,
) -> ReplyResult {
    let topic = &s.config.orders_topic;
    let log_error = |e: PortError| Problem::from_port("event log", &e);
    let recorded = s
        .store
        .positions(&s.config.processor_group)
        .await
        .map_err(|e| Problem::from_port("order store", &e))?
        .into_iter()
        .find(|p| &p.topic == topic && p.partition == arrival.partition)
        .map_or(0, |p| p.next_offset);
    let stored = open_in_store(s, account, filter).await?;
    // Read after the store, so every order the store listed is in the range read.
    let read_to = s
        .log
        .end_offset(topic, arrival.partition)
        .await
        .map_err(log_error)?;
    let from = recorded.min(arrival.end);
    if read_to.saturating_sub(from) > MAX_SCAN {
        return Err(Problem::from_port(
            "event log",
            &PortError::Unavailable(format!(
                "the order processor is {} events behind on this account's partition, too far \
                 to find every order placed before this request",
                arrival.end.saturating_sub(recorded)
            )),
        )
        .retry_after(5));
    }
    let created = orders_in_log(s, account, arrival, from, read_to).await?;
    let chosen = choose(stored, &created, arrival.end, filter);

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
                        reason,
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

/// The caller's orders created in `[from, to)` of its partition, each with the offset of its
/// creation and its state after the events up to `to`.
async fn orders_in_log(
    s: &ApiState,
    account: AccountId,
    arrival: &Arrival,
    from: u64,
    to: u64,
) -> Result<Vec<(u64, Order)>, Problem> {
    let topic = &s.config.orders_topic;
    let mut found: HashMap<OrderId, (u64, Order)> = HashMap::new();
    let mut offset = from;
    let mut stalled_since = None;
    while offset < to {
        let records = s
            .log
            .read(topic, arrival.partition, offset, READ_BATCH)
            .await
            .map_err(|e| Problem::from_port("event log", &e))?;
        let Some(last) = records.last() else {
            let since = *stalled_since.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() > READ_PATIENCE {
                return Err(Problem::from_port(
                    "event log",
                    &PortError::Unavailable(format!(
                        "partition {} of {topic} could not be read from offset {offset} to {to}",
                        arrival.partition
                    )),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        stalled_since = None;
        offset = last.offset + 1;
        // Other accounts' records share the partition: only this account's are decoded.
        for rec in records
            .iter()
            .filter(|r| r.offset < to && *r.key == *arrival.key)
        {
            let env = match decode_event(rec) {
                Ok(env) => env,
                Err(e) => {
                    tracing::warn!(error = %e, offset = rec.offset, "cancel all: skipping a record this build cannot read");
                    continue;
                }
            };
            match &env.event {
                Event::OrderCreated(o) if o.account == account => {
                    found
                        .entry(o.order_id)
                        .or_insert_with(|| (rec.offset, Order::from_new(o)));
                }
                event => {
                    if let Some((_, order)) = event.order_id().and_then(|id| found.get_mut(&id)) {
                        // An illegal transition is the processor's to report; here it only
                        // leaves the order as it was.
                        let _ = state_machine::apply(order, event, env.at);
                    }
                }
            }
        }
    }
    Ok(found.into_values().collect())
}

/// The orders to cancel: those the store listed as open and those created in the log before
/// `arrived_at` that have not ended (in the state the log gives them, which is newer), each
/// once, leaving out any created at or after `arrived_at`.
fn choose(
    stored: Vec<Order>,
    created: &[(u64, Order)],
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
        if !filter.covers(o) {
            continue;
        }
        if o.status.is_final() {
            chosen.remove(&o.order_id);
        } else {
            chosen.insert(o.order_id, o.clone());
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
    use oms_domain::order::{NewOrder, OrderType, TimeInForce};
    use oms_domain::Decimal;

    fn order(id: u64, symbol: &str, side: Side, status: OrderStatus) -> Order {
        let mut o = Order::from_new(&NewOrder {
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
        });
        o.status = status;
        o
    }

    fn btc_buy(id: u64, status: OrderStatus) -> Order {
        order(id, "BTC/USD", Side::Buy, status)
    }

    fn ids(orders: &[Order]) -> Vec<(u64, OrderStatus)> {
        orders.iter().map(|o| (o.order_id.0, o.status)).collect()
    }

    #[test]
    fn orders_created_after_arrival_are_left_alone_even_when_stored() {
        let stored = vec![
            btc_buy(1, OrderStatus::Accepted),
            btc_buy(5, OrderStatus::Accepted),
        ];
        let created = vec![
            (10, btc_buy(2, OrderStatus::New)),
            (11, btc_buy(5, OrderStatus::Accepted)),
            (12, btc_buy(6, OrderStatus::New)),
        ];
        let chosen = choose(stored, &created, 11, &Filter::default());
        assert_eq!(
            ids(&chosen),
            vec![(2, OrderStatus::New), (1, OrderStatus::Accepted)]
        );
    }

    #[test]
    fn the_log_state_of_an_order_wins_and_ended_ones_are_left_out() {
        let stored = vec![
            btc_buy(3, OrderStatus::New),
            btc_buy(4, OrderStatus::Accepted),
        ];
        let created = vec![
            (1, btc_buy(3, OrderStatus::PartiallyFilled)),
            (2, btc_buy(4, OrderStatus::Filled)),
            (3, btc_buy(7, OrderStatus::Accepted)),
            (4, btc_buy(8, OrderStatus::Rejected)),
            (5, order(9, "ETH/USD", Side::Buy, OrderStatus::New)),
            (6, order(10, "BTC/USD", Side::Sell, OrderStatus::New)),
        ];
        let filter = Filter {
            symbol: Some(Symbol::new("BTC/USD")),
            side: Some(Side::Buy),
        };
        let chosen = choose(stored, &created, 100, &filter);
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
