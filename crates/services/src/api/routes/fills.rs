//! `GET /api/fills`: the account's trade history across its orders, newest first, for
//! reconciling with a desk's own books.

use super::distinct_params;
use super::orders::{parse_side, parse_symbol, parse_time_param, DEFAULT_LIMIT, MAX_LIMIT};
use crate::api::auth::Caller;
use crate::api::problem::Problem;
use crate::api::reply::{Reply, ReplyResult};
use crate::api::state::ApiState;
use crate::api::views::AccountFillView;
use crate::ingestion::{codes, FieldError};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use oms_domain::ids::{AccountId, OrderId, Timestamp, TradeId};
use oms_ports::order_store::{FillCursor, FillQuery};
use serde_json::json;

pub async fn list(
    State(s): State<ApiState>,
    caller: Caller,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> ReplyResult {
    let Query(pairs) = query.map_err(|e| {
        Problem::validation(vec![FieldError::new(
            "query",
            codes::MALFORMED_JSON,
            format!("bad query string: {}", e.body_text()),
        )])
    })?;
    let mut q = parse(&pairs, &s, caller.account).map_err(Problem::validation)?;
    let limit = q.limit;
    q.limit = limit + 1; // one more than asked tells whether there is a next page
    let mut fills = s
        .store
        .account_fills(&q)
        .await
        .map_err(|e| Problem::from_port("order store", &e))?;
    let next_cursor = if fills.len() > limit as usize {
        fills.truncate(limit as usize);
        fills.last().map(|f| cursor_text(FillCursor::of(f)))
    } else {
        None
    };
    let views: Vec<AccountFillView> = fills
        .iter()
        .map(|f| AccountFillView::new(f, s.instrument(f.symbol.as_str())))
        .collect();
    Ok(Reply::json(
        StatusCode::OK,
        &json!({ "fills": views, "nextCursor": next_cursor }),
    ))
}

/// Every parameter once; an unknown one is refused, since a misspelt filter would silently
/// widen the history a reconciliation reads.
fn parse(
    pairs: &[(String, String)],
    s: &ApiState,
    account: AccountId,
) -> Result<FillQuery, Vec<FieldError>> {
    let mut errs = Vec::new();
    let mut q = FillQuery {
        limit: DEFAULT_LIMIT,
        ..FillQuery::of(account)
    };
    for (name, value) in distinct_params(pairs, &mut errs) {
        if value.is_empty() {
            // As for the order list: an empty filter is no filter.
            continue;
        }
        match name {
            "symbol" => match parse_symbol(value, s) {
                Ok(v) => q.symbol = Some(v),
                Err(e) => errs.push(e),
            },
            "side" => match parse_side(value) {
                Ok(v) => q.side = Some(v),
                Err(e) => errs.push(e),
            },
            "from" | "to" => match parse_time_param(value) {
                Some(t) if name == "from" => q.from = Some(t),
                Some(t) => q.to = Some(t),
                None => errs.push(FieldError::new(
                    name,
                    codes::INVALID_TIMESTAMP,
                    format!("{name} must be epoch milliseconds or an RFC 3339 date-time"),
                )),
            },
            "limit" => match value.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => q.limit = n,
                _ => errs.push(FieldError::new(
                    "limit",
                    codes::INVALID_LIMIT,
                    format!("limit must be an integer from 1 to {MAX_LIMIT}"),
                )),
            },
            "cursor" => match parse_cursor(value) {
                Some(c) => q.before = Some(c),
                None => errs.push(FieldError::new(
                    "cursor",
                    codes::INVALID_CURSOR,
                    "cursor must be a nextCursor value",
                )),
            },
            _ => errs.push(FieldError::new(
                name,
                codes::UNKNOWN_FIELD,
                format!(
                    "unknown parameter {name:?}: fills are filtered by symbol, side, from, to, limit and cursor"
                ),
            )),
        }
    }
    if errs.is_empty() {
        Ok(q)
    } else {
        Err(errs)
    }
}

/// `time.orderId.tradeId`: opaque to clients, but plain, so a log line can be read.
fn cursor_text(c: FillCursor) -> String {
    format!("{}.{}.{}", c.at.0, c.order_id.0, c.trade_id.0)
}

fn parse_cursor(v: &str) -> Option<FillCursor> {
    let parts: Vec<&str> = v.split('.').collect();
    let [at, order_id, trade_id] = parts[..] else {
        return None;
    };
    // Digits only: `parse` would take a sign.
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if ![at, order_id, trade_id].into_iter().all(digits) {
        return None;
    }
    Some(FillCursor {
        at: Timestamp(at.parse().ok()?),
        order_id: OrderId(order_id.parse().ok()?),
        trade_id: TradeId(trade_id.parse().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let c = FillCursor {
            at: Timestamp(1_764_057_600_123),
            order_id: OrderId(u64::MAX),
            trade_id: TradeId(0),
        };
        assert_eq!(parse_cursor(&cursor_text(c)), Some(c));
        for bad in [
            "", "1.2", "1.2.3.4", "1..3", "-1.2.3", "+1.2.3", "a.2.3", "1.2.3 ",
        ] {
            assert_eq!(parse_cursor(bad), None, "{bad:?}");
        }
    }
}
