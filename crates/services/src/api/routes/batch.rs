//! `POST /api/orders/batch`: up to [`MAX_BATCH`] orders of one account in one request, the way
//! a market maker replaces its quotes.
//!
//! Each order is checked on its own, exactly as `POST /api/orders` checks it; the valid ones
//! are appended to the account's partition in one append, in the batch's order, and every item
//! of the answer says what became of its order. The batch as a whole is one idempotent request:
//! its claim records the ids of all its orders, so a retry that resumes it after a crash
//! places the very same orders.

use super::orders::{claim_client_order_id, ClaimFailed};
use crate::api::auth::{rate_limited, Trader};
use crate::api::body::{object, JsonBody};
use crate::api::idempotency::{run_idempotent, Run};
use crate::api::problem::Problem;
use crate::api::reply::{Reply, ReplyResult};
use crate::api::state::ApiState;
use crate::api::views::OrderView;
use crate::ingestion::clock;
use crate::ingestion::publish::order_event_record;
use crate::ingestion::validate::validate_new_order;
use crate::ingestion::{codes, FieldError};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use oms_domain::events::{Envelope, Event};
use oms_domain::ids::{AccountId, OrderId, Timestamp};
use oms_domain::order::{NewOrder, Order};
use oms_ports::PortError;
use serde_json::{json, Value};

/// Orders in one batch at most: a quote ladder of ten levels a side.
pub const MAX_BATCH: usize = 20;

pub async fn create(
    State(s): State<ApiState>,
    caller: Trader,
    headers: HeaderMap,
    body: JsonBody,
) -> Response {
    // The orders' identities are fixed before the key is claimed and recorded with it, so a
    // retry that resumes an abandoned batch creates the very same orders. A body that is not
    // a batch gets no ids; it is refused inside.
    let now = clock::now();
    let count = body
        .parse()
        .ok()
        .and_then(|v| v.get("orders").and_then(Value::as_array).map(Vec::len))
        .filter(|n| *n <= MAX_BATCH)
        .unwrap_or(0);
    // The request itself took one of the account's requests; each further order takes one
    // more, so a batch does not carry twenty times the work the limit allows.
    let rate = s.config.request_rate;
    let more = u32::try_from(count.saturating_sub(1)).unwrap_or(u32::MAX);
    if !s.limiter.admit(caller.account, rate, more).await {
        return rate_limited(rate).into_response();
    }
    let intent = BatchIntent {
        at: now,
        order_ids: (0..count)
            .map(|_| OrderId(s.ids.next_at(now.millis())))
            .collect(),
    };
    run_idempotent(
        &s,
        caller.account,
        &headers,
        "POST",
        "/api/orders/batch",
        &body.0,
        intent.encode(),
        |run| {
            let intent = BatchIntent::decode(&run.intent)
                .filter(|i| i.order_ids.len() == intent.order_ids.len())
                .unwrap_or_else(|| intent.clone());
            let (s, body) = (&s, &body);
            async move {
                place_batch(s, caller.account, body, intent, &run)
                    .await
                    .unwrap_or_else(Reply::from)
            }
        },
    )
    .await
    .into_response()
}

/// What a batch records with its idempotency claim: its time and its orders' ids.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BatchIntent {
    at: Timestamp,
    order_ids: Vec<OrderId>,
}

impl BatchIntent {
    fn encode(&self) -> Vec<u8> {
        let ids: Vec<String> = self.order_ids.iter().map(|id| id.0.to_string()).collect();
        format!("batch:{}:{}", self.at.0, ids.join(",")).into_bytes()
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?.strip_prefix("batch:")?;
        let (at, ids) = text.split_once(':')?;
        let order_ids = if ids.is_empty() {
            Vec::new()
        } else {
            ids.split(',')
                .map(|id| id.parse().ok().map(OrderId))
                .collect::<Option<Vec<_>>>()?
        };
        Some(BatchIntent {
            at: Timestamp(at.parse().ok()?),
            order_ids,
        })
    }
}

/// `{"orders": [ ...1 to MAX_BATCH order objects... ]}`.
fn batch_items(body: &Value) -> Result<&Vec<Value>, FieldError> {
    let items = match object(body, &["orders"])?.get("orders") {
        None | Some(Value::Null) => {
            return Err(FieldError::new(
                "orders",
                codes::MISSING_FIELD,
                "orders is required",
            ))
        }
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(FieldError::new(
                "orders",
                codes::INVALID_TYPE,
                "orders must be an array of orders",
            ))
        }
    };
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(FieldError::new(
            "orders",
            codes::INVALID_BATCH_SIZE,
            format!("orders must hold 1 to {MAX_BATCH} orders"),
        ));
    }
    Ok(items)
}

/// One order of the batch on its way: placed so far, or refused with its problem.
type Item = Result<NewOrder, Problem>;

/// Places the valid orders of the batch and answers for each. What the batch holds (its
/// orders' clientOrderIds) is given back on failure only if `run` may undo and the orders
/// surely did not reach the log.
async fn place_batch(
    s: &ApiState,
    account: AccountId,
    body: &JsonBody,
    intent: BatchIntent,
    run: &Run,
) -> ReplyResult {
    let value = body.parse()?;
    let items = batch_items(&value).map_err(|e| Problem::validation(vec![e]))?;
    if items.len() != intent.order_ids.len() {
        // The ids were counted from this very body; a mismatch is a bug, not bad input.
        return Err(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            crate::api::problem::api_codes::INTERNAL_ERROR,
            "the batch's order ids do not match its orders",
        ));
    }
    let now = intent.at;
    let mut placed: Vec<Item> = items
        .iter()
        .zip(&intent.order_ids)
        .enumerate()
        .map(|(i, (item, id))| {
            if !item.is_object() {
                // Well-formed JSON, so not MALFORMED_JSON: the element has the wrong type.
                let e = FieldError::new(
                    "body",
                    codes::INVALID_TYPE,
                    "each order must be a JSON object",
                );
                return Err(in_item(i, Problem::validation(vec![e])));
            }
            validate_new_order(item, &s.by_symbol, now)
                .map(|valid| valid.into_new_order(*id, account, now))
                .map_err(|errors| in_item(i, Problem::validation(errors)))
        })
        .collect();

    // Claimed one after another, in the batch's order: a clientOrderId used twice in the
    // batch goes to the first order that uses it, and a resumed batch decides the same. A
    // claim that fails fails the batch, giving back the claims made before it (which are
    // surely written), as a single order gives back its own.
    for i in 0..placed.len() {
        let Ok(new) = &placed[i] else { continue };
        let Some(coid) = new.client_order_id.clone() else {
            continue;
        };
        let failure = match claim_client_order_id(s, account, &coid, new.order_id).await {
            Ok(()) => continue,
            Err(ClaimFailed::Taken(p)) => {
                placed[i] = Err(in_item(i, p));
                continue;
            }
            Err(ClaimFailed::Refused(p)) => Err(p),
            Err(ClaimFailed::Unknown(p)) => Ok(p.into_reply().effect_unknown()),
        };
        if run.may_undo() {
            release_client_order_ids(s, account, &placed[..i]).await;
        }
        return failure;
    }

    let records = placed
        .iter()
        .filter_map(|item| item.as_ref().ok())
        .map(|new| order_event_record(&Envelope::new(now, Event::OrderCreated(new.clone()))))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Problem::from_port("event log", &e))?;
    if !records.is_empty() {
        match s.log.append(&s.config.orders_topic, records).await {
            Ok(_) => {}
            // Refused as it stands (never written): nothing happened.
            Err(e @ PortError::Invalid(_)) => {
                if run.may_undo() {
                    release_client_order_ids(s, account, &placed).await;
                }
                return Err(Problem::from_port("event log", &e));
            }
            // Otherwise the append may have landed all the same: the batch keeps its
            // clientOrderIds and its key, and the retry places the very same orders again.
            Err(e) => {
                return Ok(Problem::from_port("event log", &e)
                    .into_reply()
                    .effect_unknown())
            }
        }
    }
    let results: Vec<Value> = placed
        .into_iter()
        .map(|item| match item {
            Ok(new) => {
                let order = Order::from_new(&new);
                let view = OrderView::new(&order, s.instrument(order.symbol.as_str()));
                json!({ "status": StatusCode::ACCEPTED.as_u16(), "order": view })
            }
            Err(p) => json!({ "status": p.status.as_u16(), "error": p.body() }),
        })
        .collect();
    Ok(Reply::json(
        StatusCode::ACCEPTED,
        &json!({ "results": results }),
    ))
}

/// The `i`th order's problem, its fields named as fields of the batch (`orders[2].price`).
fn in_item(i: usize, mut p: Problem) -> Problem {
    let name = |field: &str| {
        if field == "body" {
            format!("orders[{i}]")
        } else {
            format!("orders[{i}].{field}")
        }
    };
    p.field = p.field.as_deref().map(name);
    for e in &mut p.errors {
        e.field = name(&e.field);
    }
    p
}

async fn release_client_order_ids(s: &ApiState, account: AccountId, placed: &[Item]) {
    for new in placed.iter().filter_map(|item| item.as_ref().ok()) {
        if let Some(coid) = &new.client_order_id {
            if let Err(e) = s.store.release_client_order_id(account, coid).await {
                tracing::warn!(error = %e, "could not release clientOrderId after a refused publish");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_round_trip() {
        for ids in [
            vec![],
            vec![OrderId(7)],
            vec![OrderId(1), OrderId(u64::MAX)],
        ] {
            let intent = BatchIntent {
                at: Timestamp(1_700_000_000_000),
                order_ids: ids,
            };
            assert_eq!(BatchIntent::decode(&intent.encode()), Some(intent));
        }
        assert_eq!(BatchIntent::decode(b"order:1:2"), None);
        assert_eq!(BatchIntent::decode(b"batch:1:2,x"), None);
    }
}
