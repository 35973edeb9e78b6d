//! `/api/orders`: place, read, list, cancel and amend orders.

use super::{check_range, distinct_params, query_pairs};
use crate::api::auth::{Caller, Trader};
use crate::api::body::JsonBody;
use crate::api::idempotency::{run_idempotent, Run};
use crate::api::problem::{api_codes, Problem};
use crate::api::reply::{Reply, ReplyResult};
use crate::api::state::ApiState;
use crate::api::views::{FillView, OrderView};
use crate::ingestion::clock::{self, parse_rfc3339};
use crate::ingestion::publish::publish_order_event;
use crate::ingestion::validate::{check_client_order_id, validate_amend, validate_new_order};
use crate::ingestion::{codes, FieldError};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use oms_domain::events::Event;
use oms_domain::ids::{AccountId, OrderId, Symbol, Timestamp};
use oms_domain::order::{Order, OrderStatus, Side};
use oms_ports::order_store::OrderQuery;
use oms_ports::PortError;
use serde_json::json;
use std::collections::HashMap;

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 500;

pub async fn create(
    State(s): State<ApiState>,
    caller: Trader,
    headers: HeaderMap,
    body: JsonBody,
) -> Response {
    // The order's identity is fixed before the key is claimed and recorded with it, so a
    // retry that resumes an abandoned request creates the very same order.
    let now = clock::now();
    let intent = OrderIntent {
        order_id: OrderId(s.ids.next_at(now.millis())),
        at: now,
    };
    run_idempotent(
        &s,
        caller.account,
        &headers,
        "POST",
        "/api/orders",
        &body.0,
        intent.encode(),
        |run| {
            // A claim from before intents were recorded has nothing to resume from.
            let intent = OrderIntent::decode(&run.intent).unwrap_or(intent);
            let (s, body) = (&s, &body);
            async move {
                place(s, caller.account, body, intent, &run)
                    .await
                    .unwrap_or_else(Reply::from)
            }
        },
    )
    .await
    .into_response()
}

/// What `POST /api/orders` records with its idempotency claim: the order's id and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OrderIntent {
    order_id: OrderId,
    at: Timestamp,
}

impl OrderIntent {
    fn encode(&self) -> Vec<u8> {
        format!("order:{}:{}", self.order_id.0, self.at.0).into_bytes()
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?.strip_prefix("order:")?;
        let (id, at) = text.split_once(':')?;
        Some(OrderIntent {
            order_id: OrderId(id.parse().ok()?),
            at: Timestamp(at.parse().ok()?),
        })
    }
}

/// Places the order of `intent`. What it holds is given back on failure only if `run` may
/// undo (a resumed request may have placed the order already) and the order surely did not
/// reach the log.
async fn place(
    s: &ApiState,
    account: AccountId,
    body: &JsonBody,
    intent: OrderIntent,
    run: &Run,
) -> ReplyResult {
    let value = body.parse()?;
    let OrderIntent { order_id, at: now } = intent;
    let valid = validate_new_order(&value, &s.by_symbol, now).map_err(Problem::validation)?;
    let new = valid.into_new_order(order_id, account, now);

    // (account, clientOrderId) is unique for ever: claim it before the order exists anywhere.
    if let Some(coid) = &new.client_order_id {
        match claim_client_order_id(s, account, coid, order_id).await {
            Ok(()) => {}
            Err(ClaimFailed::Taken(p) | ClaimFailed::Refused(p)) => return Err(p),
            Err(ClaimFailed::Unknown(p)) => return Ok(p.into_reply().effect_unknown()),
        }
    }

    let order = Order::from_new(&new);
    let published = publish_order_event(
        s.log.as_ref(),
        &s.config.orders_topic,
        now,
        Event::OrderCreated(new),
    )
    .await;
    match published {
        Ok(_) => {}
        // Refused as it stands (never written): nothing happened.
        Err(e @ PortError::Invalid(_)) => {
            if let Some(coid) = order.client_order_id.as_ref().filter(|_| run.may_undo()) {
                if let Err(e) = s.store.release_client_order_id(account, coid).await {
                    tracing::warn!(error = %e, "could not release clientOrderId after a refused publish");
                }
            }
            return Err(Problem::from_port("event log", &e));
        }
        // Otherwise the append may have landed all the same (a broker that timed out after
        // writing): the order keeps its clientOrderId and its idempotency key goes to the next
        // retry, which places the very same order again (downstream drops it if it exists).
        Err(e) => {
            return Ok(Problem::from_port("event log", &e)
                .into_reply()
                .effect_unknown())
        }
    }
    tracing::debug!(order_id = %order.order_id, "order accepted for processing");
    let view = OrderView::new(&order, s.instrument(order.symbol.as_str()));
    Ok(Reply::json(StatusCode::ACCEPTED, &view)
        .header("location", format!("/api/orders/{}", order.order_id)))
}

/// Why an order could not have its clientOrderId.
pub(super) enum ClaimFailed {
    /// Another order holds it (`409`).
    Taken(Problem),
    /// The store refused the claim as it stands: nothing was written.
    Refused(Problem),
    /// The claim may have been written all the same: a retry must come back as this order
    /// (whose id then holds it), not as a new one that would find it taken.
    Unknown(Problem),
}

/// Claims (account, `coid`) for `order_id`, for ever; the same order claiming it again holds it.
pub(super) async fn claim_client_order_id(
    s: &ApiState,
    account: AccountId,
    coid: &str,
    order_id: OrderId,
) -> Result<(), ClaimFailed> {
    let held = match s.store.claim_client_order_id(account, coid, order_id).await {
        Ok(held) => held,
        Err(e @ PortError::Invalid(_)) => {
            return Err(ClaimFailed::Refused(Problem::from_port("order store", &e)))
        }
        Err(e) => return Err(ClaimFailed::Unknown(Problem::from_port("order store", &e))),
    };
    match held.filter(|e| *e != order_id) {
        Some(existing) => Err(ClaimFailed::Taken(duplicate_client_order_id(
            coid, existing,
        ))),
        None => Ok(()),
    }
}

/// `409 DUPLICATE_CLIENT_ORDER_ID`, naming the order that holds `coid`.
fn duplicate_client_order_id(coid: &str, existing: OrderId) -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        api_codes::DUPLICATE_CLIENT_ORDER_ID,
        format!("clientOrderId {coid:?} was already used by order {existing}"),
    )
    .with_field("clientOrderId")
    .with_extra("existingOrderId", json!(existing.to_string()))
}

pub async fn get(State(s): State<ApiState>, caller: Caller, Path(id): Path<String>) -> ReplyResult {
    let order = find(&s, caller.account, &id).await?;
    Ok(Reply::json(
        StatusCode::OK,
        &OrderView::new(&order, s.instrument(order.symbol.as_str())),
    ))
}

pub async fn fills(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> ReplyResult {
    // Every fill of the order, always: a parameter (say a `limit`) would be ignored.
    let pairs = query_pairs(query).map_err(|e| Problem::validation(vec![e]))?;
    if let Some((name, _)) = pairs.first() {
        return Err(Problem::validation(vec![FieldError::new(
            name,
            codes::UNKNOWN_FIELD,
            format!(
                "unknown parameter {name:?}: an order's fills take none (GET /api/fills filters and pages an account's)"
            ),
        )]));
    }
    let order = find(&s, caller.account, &id).await?;
    let fills = s
        .store
        .fills(caller.account, order.order_id)
        .await
        .map_err(|e| Problem::from_port("order store", &e))?;
    let instrument = s.instrument(order.symbol.as_str());
    let views: Vec<FillView> = fills.iter().map(|f| FillView::new(f, instrument)).collect();
    Ok(Reply::json(StatusCode::OK, &json!({ "fills": views })))
}

pub async fn list(
    State(s): State<ApiState>,
    caller: Caller,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> ReplyResult {
    let pairs = query_pairs(query).map_err(|e| Problem::validation(vec![e]))?;
    let mut q = parse_list_query(&pairs, &s).map_err(Problem::validation)?;
    q.account = Some(caller.account);
    let limit = q.limit;
    q.limit = limit + 1; // one more than asked tells whether there is a next page
    let mut orders = s
        .store
        .orders(&q)
        .await
        .map_err(|e| Problem::from_port("order store", &e))?;
    let next_cursor = next_cursor(&mut orders, limit, |o| o.order_id.to_string());
    let views: Vec<OrderView> = orders
        .iter()
        .map(|o| OrderView::new(o, s.instrument(o.symbol.as_str())))
        .collect();
    Ok(Reply::json(
        StatusCode::OK,
        &json!({ "orders": views, "nextCursor": next_cursor }),
    ))
}

/// Every parameter once; an unknown one is refused, since a misspelt filter would silently
/// widen the list.
fn parse_list_query(
    pairs: &[(String, String)],
    s: &ApiState,
) -> Result<OrderQuery, Vec<FieldError>> {
    const KNOWN: [&str; 7] = ["symbol", "status", "side", "from", "to", "limit", "cursor"];
    let mut errs = Vec::new();
    let mut q = OrderQuery {
        limit: DEFAULT_LIMIT,
        ..OrderQuery::default()
    };
    let distinct = distinct_params(pairs, &mut errs);
    for (name, _) in distinct.iter().filter(|(n, _)| !KNOWN.contains(n)) {
        errs.push(FieldError::new(
            name,
            codes::UNKNOWN_FIELD,
            format!(
                "unknown parameter {name:?}: orders are filtered by symbol, status, side, from, to, limit and cursor"
            ),
        ));
    }
    let p: HashMap<&str, &str> = distinct.into_iter().collect();
    // An empty filter is no filter.
    let non_empty = |k: &str| p.get(k).copied().filter(|v| !v.is_empty());
    if let Some(sym) = non_empty("symbol") {
        match parse_symbol(sym, s) {
            Ok(v) => q.symbol = Some(v),
            Err(e) => errs.push(e),
        }
    }
    if let Some(st) = non_empty("status") {
        match st.parse::<OrderStatus>() {
            Ok(v) => q.status = Some(v),
            Err(()) => errs.push(FieldError::new(
                "status",
                codes::INVALID_ENUM,
                "status must be one of NEW, ACCEPTED, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED, REJECTED",
            )),
        }
    }
    if let Some(side) = non_empty("side") {
        match parse_side(side) {
            Ok(v) => q.side = Some(v),
            Err(e) => errs.push(e),
        }
    }
    for (field, slot) in [("from", &mut q.from), ("to", &mut q.to)] {
        if let Some(v) = non_empty(field) {
            match parse_time_param(v) {
                Some(t) => *slot = Some(t),
                None => errs.push(FieldError::new(
                    field,
                    codes::INVALID_TIMESTAMP,
                    format!("{field} must be epoch milliseconds or an RFC 3339 date-time"),
                )),
            }
        }
    }
    if let Some(l) = non_empty("limit") {
        match parse_limit(l) {
            Ok(n) => q.limit = n,
            Err(e) => errs.push(e),
        }
    }
    if let Some(c) = non_empty("cursor") {
        match c.parse::<OrderId>() {
            Ok(id) => q.before = Some(id),
            Err(_) => errs.push(bad_cursor()),
        }
    }
    check_range(q.from, q.to, &mut errs);
    if errs.is_empty() {
        Ok(q)
    } else {
        Err(errs)
    }
}

/// A page size: 1 to [`MAX_LIMIT`].
pub(super) fn parse_limit(v: &str) -> Result<u32, FieldError> {
    v.parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            FieldError::new(
                "limit",
                codes::INVALID_LIMIT,
                format!("limit must be an integer from 1 to {MAX_LIMIT}"),
            )
        })
}

/// Keeps the first `limit` of a page read one longer than asked, and gives the cursor of the
/// next page if there is one.
pub(super) fn next_cursor<T>(
    page: &mut Vec<T>,
    limit: u32,
    key: impl Fn(&T) -> String,
) -> Option<String> {
    if page.len() > limit as usize {
        page.truncate(limit as usize);
        page.last().map(key)
    } else {
        None
    }
}

/// A `cursor` that is not one a page gave.
pub(super) fn bad_cursor() -> FieldError {
    FieldError::new(
        "cursor",
        codes::INVALID_CURSOR,
        "cursor must be a nextCursor value",
    )
}

pub(super) fn parse_symbol(v: &str, s: &ApiState) -> Result<Symbol, FieldError> {
    if s.instrument(v).is_some() {
        Ok(Symbol::new(v))
    } else {
        Err(FieldError::new(
            "symbol",
            codes::UNKNOWN_SYMBOL,
            format!("unknown symbol {v:?}"),
        ))
    }
}

pub(super) fn parse_side(v: &str) -> Result<Side, FieldError> {
    match v {
        "BUY" => Ok(Side::Buy),
        "SELL" => Ok(Side::Sell),
        _ => Err(FieldError::new(
            "side",
            codes::INVALID_ENUM,
            "side must be one of BUY, SELL",
        )),
    }
}

pub(super) fn parse_time_param(v: &str) -> Option<Timestamp> {
    if v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse::<i64>().ok().map(Timestamp);
    }
    parse_rfc3339(v)
}

pub async fn cancel(
    State(s): State<ApiState>,
    caller: Trader,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let path = format!("/api/orders/{id}");
    run_idempotent(
        &s,
        caller.account,
        &headers,
        "DELETE",
        &path,
        b"",
        Vec::new(),
        |_| async {
            request_cancel(&s, caller.account, &id)
                .await
                .unwrap_or_else(Reply::from)
        },
    )
    .await
    .into_response()
}

async fn request_cancel(s: &ApiState, account: AccountId, id: &str) -> ReplyResult {
    let order = find_live(s, account, id).await?;
    let event = Event::CancelRequested {
        account,
        order_id: order.order_id,
        reason: None,
    };
    publish_order_event(s.log.as_ref(), &s.config.orders_topic, clock::now(), event)
        .await
        .map_err(|e| Problem::from_port("event log", &e))?;
    Ok(Reply::json(
        StatusCode::ACCEPTED,
        &OrderView::new(&order, s.instrument(order.symbol.as_str())),
    ))
}

pub async fn amend(
    State(s): State<ApiState>,
    caller: Trader,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: JsonBody,
) -> Response {
    let path = format!("/api/orders/{id}");
    run_idempotent(
        &s,
        caller.account,
        &headers,
        "PATCH",
        &path,
        &body.0,
        // No intent: the amend's id is taken when it is published, since risk ignores an
        // amend older than the order's last. A resumed amend is published again with a new
        // id; setting the same price and quantity twice moves no money.
        Vec::new(),
        |_| async {
            request_amend(&s, caller.account, &id, &body)
                .await
                .unwrap_or_else(Reply::from)
        },
    )
    .await
    .into_response()
}

async fn request_amend(s: &ApiState, account: AccountId, id: &str, body: &JsonBody) -> ReplyResult {
    let value = body.parse()?;
    let order = find_live(s, account, id).await?;
    let instrument = s.instrument(order.symbol.as_str());
    let amend =
        validate_amend(&value, instrument, order.order_type).map_err(Problem::validation)?;
    let amend_id = s.ids.next_id();
    let event = Event::AmendRequested {
        account,
        order_id: order.order_id,
        amend_id,
        price: amend.price,
        quantity: amend.quantity,
    };
    publish_order_event(s.log.as_ref(), &s.config.orders_topic, clock::now(), event)
        .await
        .map_err(|e| Problem::from_port("event log", &e))?;
    // The order as it was, and the amend's id: its outcome shows as the order's `lastAmend`
    // once risk and the venue have decided it.
    let reply = AmendReply {
        order: OrderView::new(&order, instrument),
        amend_id: amend_id.to_string(),
    };
    Ok(Reply::json(StatusCode::ACCEPTED, &reply))
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct AmendReply {
    #[serde(flatten)]
    order: OrderView,
    amend_id: String,
}

/// How a path names an order by its clientOrderId instead of its id (`/api/orders/client:abc`):
/// a client that lost the answer to its POST finds, cancels or amends the order by the id it
/// chose. Order ids are digits, so the two never collide.
pub const CLIENT_ORDER_ID_PREFIX: &str = "client:";

/// The caller's order; another account's order is "not found", never "forbidden".
async fn find(s: &ApiState, account: AccountId, id: &str) -> Result<Order, Problem> {
    let order_id = match id.strip_prefix(CLIENT_ORDER_ID_PREFIX) {
        Some(client_order_id) => {
            if check_client_order_id(client_order_id).is_err() {
                return Err(Problem::order_not_found());
            }
            s.store
                .order_for_client_order_id(account, client_order_id)
                .await
                .map_err(|e| Problem::from_port("order store", &e))?
                .ok_or_else(Problem::order_not_found)?
        }
        None => id
            .parse::<OrderId>()
            .map_err(|_| Problem::order_not_found())?,
    };
    // The read model trails the log by a few milliseconds: an order accepted just now may not be
    // stored yet. Ids carry their creation time, so only a recent id waits, and briefly.
    let (issued_ms, _, _) = crate::ingestion::order_id::decompose(order_id.0);
    let recent = (clock::now().millis() - issued_ms).abs() < RECENT_ORDER_MS;
    let deadline = tokio::time::Instant::now() + READ_YOUR_WRITES_WAIT;
    loop {
        let found = s
            .store
            .order(account, order_id)
            .await
            .map_err(|e| Problem::from_port("order store", &e))?
            .filter(|o| o.account == account);
        match found {
            Some(order) => return Ok(order),
            None if recent && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            None => return Err(Problem::order_not_found()),
        }
    }
}

/// Ids younger than this may still be on their way to the read model.
const RECENT_ORDER_MS: i64 = 5_000;
/// The longest a request waits for such an order to be stored.
const READ_YOUR_WRITES_WAIT: std::time::Duration = std::time::Duration::from_millis(1_500);

async fn find_live(s: &ApiState, account: AccountId, id: &str) -> Result<Order, Problem> {
    let order = find(s, account, id).await?;
    if order.status.is_final() {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            api_codes::ORDER_NOT_LIVE,
            format!(
                "the order is {} and can no longer change",
                order.status.as_str()
            ),
        )
        .with_field("orderId")
        .with_extra("orderStatus", json!(order.status.as_str())));
    }
    Ok(order)
}
