//! `GET /api/fills` and `GET /api/fills/export`: the account's trade history across its
//! orders, newest first, as JSON pages or one CSV file, for reconciling with a desk's own books.

use super::orders::{
    bad_cursor, next_cursor, parse_limit, parse_side, parse_symbol, parse_time_param, DEFAULT_LIMIT,
};
use super::{check_range, distinct_params, query_pairs};
use crate::api::auth::Caller;
use crate::api::problem::Problem;
use crate::api::reply::{Reply, ReplyResult};
use crate::api::state::ApiState;
use crate::api::views::{fmt_plain, AccountFillView};
use crate::ingestion::{codes, FieldError};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use oms_domain::events::Fill;
use oms_domain::ids::{AccountId, OrderId, Timestamp, TradeId};
use oms_domain::instrument::Instrument;
use oms_domain::order::{Liquidity, Side};
use oms_ports::order_store::{FillCursor, FillQuery};
use serde_json::json;

pub async fn list(
    State(s): State<ApiState>,
    caller: Caller,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> ReplyResult {
    let pairs = query_pairs(query).map_err(|e| Problem::validation(vec![e]))?;
    let mut q = parse(&pairs, &s, caller.account).map_err(Problem::validation)?;
    let limit = q.limit;
    q.limit = limit + 1; // one more than asked tells whether there is a next page
    let mut fills = s
        .store
        .account_fills(&q)
        .await
        .map_err(|e| Problem::from_port("order store", &e))?;
    let next_cursor = next_cursor(&mut fills, limit, |f| cursor_text(FillCursor::of(f)));
    let views: Vec<AccountFillView> = fills
        .iter()
        .map(|f| AccountFillView::new(f, s.instrument(f.symbol.as_str())))
        .collect();
    Ok(Reply::json(
        StatusCode::OK,
        &json!({ "fills": views, "nextCursor": next_cursor }),
    ))
}

/// Fills per store read of an export.
const EXPORT_PAGE: u32 = 500;
/// The export's columns.
const CSV_HEADER: &str =
    "time,orderId,symbol,side,tradeId,price,quantity,notional,fee,feeAsset,liquidity\r\n";

/// `GET /api/fills/export`: the account's fills as CSV (RFC 4180), every one the filters
/// select, newest first as the listing: for a desk's spreadsheet or its books. Streamed a page
/// at a time, so an account's whole history costs no more memory than one page. A store that
/// fails midway ends the response without its final chunk, which clients report as a
/// truncated transfer, never as a shorter history.
pub async fn export(
    State(s): State<ApiState>,
    caller: Caller,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, Problem> {
    let pairs = query_pairs(query).map_err(|e| Problem::validation(vec![e]))?;
    let paging: Vec<FieldError> = pairs
        .iter()
        .filter(|(name, _)| name == "limit" || name == "cursor")
        .map(|(name, _)| {
            FieldError::new(
                name,
                codes::UNKNOWN_FIELD,
                format!("an export has every fill the filters select: {name} is not taken"),
            )
        })
        .collect();
    if !paging.is_empty() {
        return Err(Problem::validation(paging));
    }
    let mut q = parse(&pairs, &s, caller.account).map_err(Problem::validation)?;
    q.limit = EXPORT_PAGE;
    // The first page before the answer: a store that is down is a 503, not an empty file.
    let first = s
        .store
        .account_fills(&q)
        .await
        .map_err(|e| Problem::from_port("order store", &e))?;
    let pages = futures_util::stream::unfold(Some((s, q, Some(first), true)), |state| async move {
        let (s, mut q, page, header) = state?;
        let page = match page {
            Some(p) => p,
            None => match s.store.account_fills(&q).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "a fills export stopped: the order store failed");
                    return Some((Err(std::io::Error::other(e.to_string())), None));
                }
            },
        };
        let mut text = String::new();
        if header {
            text.push_str(CSV_HEADER);
        }
        for f in &page {
            csv_row(&mut text, f, s.instrument(f.symbol.as_str()));
        }
        let more = page.len() == EXPORT_PAGE as usize;
        let next = match page.last() {
            Some(last) if more => {
                q.before = Some(FillCursor::of(last));
                Some((s, q, None, false))
            }
            _ => None,
        };
        Some((Ok(axum::body::Bytes::from(text)), next))
    });
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"fills.csv\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        axum::body::Body::from_stream(pages),
    )
        .into_response())
}

/// One fill as a CSV line, its values as `GET /api/fills` writes them, and its notional
/// (price × quantity) exact.
fn csv_row(out: &mut String, f: &Fill, instrument: Option<&Instrument>) {
    let v = AccountFillView::new(f, instrument);
    let notional = f
        .price
        .checked_mul(f.quantity)
        .map(fmt_plain)
        .unwrap_or_default();
    let liquidity = match v.fill.liquidity {
        Liquidity::Maker => "MAKER",
        Liquidity::Taker => "TAKER",
    };
    let side = match v.side {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    };
    let fields = [
        v.fill.at.as_deref().unwrap_or(""),
        &v.order_id,
        &v.symbol,
        side,
        &v.fill.trade_id.to_string(),
        &v.fill.price,
        &v.fill.quantity,
        &notional,
        &v.fill.fee,
        &v.fill.fee_asset,
        liquidity,
    ];
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, field);
    }
    out.push_str("\r\n");
}

/// A field quoted only when it must be (RFC 4180).
fn csv_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
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
            "limit" => match parse_limit(value) {
                Ok(n) => q.limit = n,
                Err(e) => errs.push(e),
            },
            "cursor" => match parse_cursor(value) {
                Some(c) => q.before = Some(c),
                None => errs.push(bad_cursor()),
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
    check_range(q.from, q.to, &mut errs);
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
