//! An account's funds for operators: withdrawals (`/api/admin/accounts/{accountId}/withdrawals`),
//! and deposits' credits read back (`GET .../deposits`; the deposit itself is
//! [`super::admin::deposit`]).
//!
//! A withdrawal is asked for on the log (`WithdrawalRequested`, in the account's partition)
//! and decided by the risk engine where it lands there, against what is available then:
//! funds held by live orders cannot leave, and a reference is decided once, ever. The
//! processor records the decision, and each deposit the ledger credits; `GET` reads one back
//! by reference, or lists an account's by reference, a page at a time.

use super::admin::{check_deposit_reference, find_account, once, parse_deposit};
use super::orders::{bad_cursor, next_cursor, parse_limit, DEFAULT_LIMIT};
use super::{distinct_params, query_pairs};
use crate::api::auth::Operator;
use crate::api::body::JsonBody;
use crate::api::problem::{api_codes, Problem};
use crate::api::reply::{Reply, ReplyResult};
use crate::api::state::ApiState;
use crate::api::views::fmt_plain;
use crate::ingestion::clock::{self, format_rfc3339_millis};
use crate::ingestion::publish::{deposit_reference, publish_order_event};
use crate::ingestion::{codes, FieldError};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use oms_domain::events::Event;
use oms_domain::ids::Asset;
use oms_ports::order_store::{DepositRecord, WithdrawalRecord};
use serde_json::json;

/// `POST` with `{"asset", "amount", "reference"}` (checked as a deposit's): asks to pay the
/// amount out. `202` with `status: PENDING` and a `Location` to read the decision at; it
/// goes on the log in the account's partition, so it is decided after every order placed
/// before the answer.
pub async fn withdraw(
    State(s): State<ApiState>,
    operator: Operator,
    headers: HeaderMap,
    Path(account_id): Path<String>,
    body: JsonBody,
) -> Response {
    let path = format!("/api/admin/accounts/{account_id}/withdrawals");
    once(&s, &operator, &headers, "POST", &path, &body, || {
        request(&s, &account_id, &body)
    })
    .await
}

async fn request(s: &ApiState, account_id: &str, body: &JsonBody) -> ReplyResult {
    let account = find_account(s, account_id).await?;
    if s.config.fee_account == Some(account.id) {
        // Fees are credited in the partition of each trade's account, so the fee account's
        // balance is spread over every partition's ledger, and a withdrawal, decided in its
        // own partition, would see only that partition's share.
        return Err(Problem::new(
            StatusCode::CONFLICT,
            api_codes::FEE_ACCOUNT_WITHDRAWAL,
            "the fee account's balance is kept across every partition; it cannot be withdrawn from",
        )
        .with_field("accountId"));
    }
    let (asset, amount, reference) = parse_deposit(s, &body.parse()?)?;
    // A reference is decided once: a repeat of the same withdrawal is answered as the first
    // was, but one of another asset or amount would be answered PENDING and never decided.
    let recorded = s
        .store
        .withdrawal(account.id, &reference)
        .await
        .map_err(|e| Problem::from_port("order store", &e))?;
    if let Some(w) = recorded.filter(|w| w.asset != asset || w.amount != amount) {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            api_codes::WITHDRAWAL_REFERENCE_REUSED,
            format!(
                "the account's withdrawal {reference:?} of {} {} was decided already; a reference is decided once",
                fmt_plain(w.amount),
                w.asset
            ),
        )
        .with_field("reference")
        .with_extra("recorded", view(&w)));
    }
    let event = Event::WithdrawalRequested {
        account: account.id,
        asset: asset.clone(),
        amount,
        reference: reference.clone(),
    };
    publish_order_event(s.log.as_ref(), &s.config.orders_topic, clock::now(), event)
        .await
        .map_err(|e| Problem::from_port("event log", &e))?;
    tracing::info!(account = %account.id, %asset, %amount, %reference, "withdrawal asked for by an operator");
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("reference", &reference)
        .finish();
    Ok(Reply::json(
        StatusCode::ACCEPTED,
        &json!({
            "accountId": account.id.0,
            "asset": asset.as_str(),
            "amount": fmt_plain(amount),
            "reference": reference,
            "status": "PENDING",
        }),
    )
    .header(
        "location",
        format!("/api/admin/accounts/{}/withdrawals?{query}", account.id),
    ))
}

/// `GET ?reference=...`: the decision on the account's withdrawal with that reference:
/// `status` `APPROVED` or `REJECTED` (with `rejectReason`), or `404 WITHDRAWAL_NOT_FOUND`
/// while none is recorded (not decided yet, or never asked for).
pub async fn withdrawal(
    State(s): State<ApiState>,
    _: Operator,
    Path(account_id): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    read(&s, &account_id, query)
        .await
        .unwrap_or_else(Reply::from)
        .into_response()
}

async fn read(
    s: &ApiState,
    account_id: &str,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> ReplyResult {
    let account = find_account(s, account_id).await?;
    let reference = match funds_query(query, false)? {
        FundsQuery::One(reference, _) => reference,
        FundsQuery::Page { limit, after } => {
            let page = s
                .store
                .withdrawals_page(account.id, after.as_deref(), limit + 1)
                .await;
            return page_reply("withdrawals", page, limit, |w| &w.reference, view);
        }
    };
    let found = s
        .store
        .withdrawal(account.id, &reference)
        .await
        .map_err(|e| Problem::from_port("order store", &e))?;
    let Some(w) = found else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            api_codes::WITHDRAWAL_NOT_FOUND,
            "no decision is recorded for a withdrawal of the account with this reference \
             (not decided yet, or never asked for)",
        )
        .with_field("reference"));
    };
    Ok(Reply::json(StatusCode::OK, &view(&w)))
}

/// `GET .../deposits?reference=...&asset=...`: the credit of the account's deposit with that
/// reference and asset (as `POST .../deposits` took them): its amount and when it was
/// credited, or `404 DEPOSIT_NOT_FOUND` while none is recorded (not processed yet, never
/// sent, or credited before credits were recorded). A repeat of a reference credits nothing,
/// so this shows the first amount.
pub async fn deposit(
    State(s): State<ApiState>,
    _: Operator,
    Path(account_id): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    read_deposit(&s, &account_id, query)
        .await
        .unwrap_or_else(Reply::from)
        .into_response()
}

async fn read_deposit(
    s: &ApiState,
    account_id: &str,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> ReplyResult {
    let account = find_account(s, account_id).await?;
    let (reference, asset) = match funds_query(query, true)? {
        FundsQuery::One(reference, asset) => (reference, asset),
        FundsQuery::Page { limit, after } => {
            let page = s
                .store
                .deposits_page(account.id, after.as_deref(), limit + 1)
                .await;
            return page_reply("deposits", page, limit, |d| &d.reference, deposit_view);
        }
    };
    // Any asset: a deposit in one no longer traded still reads back.
    let asset = Asset::new(asset.unwrap_or_default());
    let found = s
        .store
        .deposit(account.id, &deposit_reference(&reference, &asset))
        .await
        .map_err(|e| Problem::from_port("order store", &e))?;
    let Some(d) = found else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            api_codes::DEPOSIT_NOT_FOUND,
            "no credit is recorded for a deposit of the account with this reference and asset \
             (not processed yet, never sent, or credited before credits were recorded)",
        )
        .with_field("reference"));
    };
    Ok(Reply::json(StatusCode::OK, &deposit_view(&d)))
}

/// What a `GET` of withdrawals or deposits asks for.
enum FundsQuery {
    /// `?reference=...` (and `&asset=...` for a deposit): one record.
    One(String, Option<String>),
    /// Neither (`?limit=...&cursor=...`, both optional): a page of the account's records by
    /// reference.
    Page { limit: u32, after: Option<String> },
}

/// Longest cursor: a stored reference (a deposit's carries its asset; one from a
/// configuration file or the demo need not follow the API's rules for references).
const CURSOR_MAX: usize = 1024;

fn funds_query(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    with_asset: bool,
) -> Result<FundsQuery, Problem> {
    let pairs = query_pairs(query).map_err(|e| Problem::validation(vec![e]))?;
    let one = pairs
        .iter()
        .any(|(n, _)| n == "reference" || (with_asset && n == "asset"));
    let mut errs = Vec::new();
    let (mut reference, mut asset) = (None, None);
    let (mut limit, mut after) = (DEFAULT_LIMIT, None);
    for (name, value) in distinct_params(&pairs, &mut errs) {
        match name {
            "reference" => match check_deposit_reference(value) {
                Ok(r) => reference = Some(r),
                Err(e) => errs.push(e),
            },
            "asset" if with_asset && !value.is_empty() => asset = Some(value.to_string()),
            "asset" if with_asset => errs.push(FieldError::new(
                "asset",
                codes::MISSING_FIELD,
                "asset is required",
            )),
            "limit" if !one => match parse_limit(value) {
                Ok(n) => limit = n,
                Err(e) => errs.push(e),
            },
            "cursor" if !one => {
                if value.is_empty() || value.len() > CURSOR_MAX {
                    errs.push(bad_cursor());
                } else {
                    after = Some(value.to_string());
                }
            }
            _ => errs.push(FieldError::new(
                name,
                codes::UNKNOWN_FIELD,
                match (one, with_asset) {
                    (true, true) => format!("unknown parameter {name:?}: a deposit is read by reference and asset"),
                    (true, false) => format!("unknown parameter {name:?}: a withdrawal is read by its reference"),
                    (false, _) => format!("unknown parameter {name:?}: give a reference to read one, or limit and cursor to list"),
                },
            )),
        }
    }
    if !one {
        return if errs.is_empty() {
            Ok(FundsQuery::Page { limit, after })
        } else {
            Err(Problem::validation(errs))
        };
    }
    let missing = |name: &str, given: bool, errs: &mut Vec<FieldError>| {
        if !given && !errs.iter().any(|e| e.field == name) {
            errs.push(FieldError::new(
                name,
                codes::MISSING_FIELD,
                format!("{name} is required"),
            ));
        }
    };
    missing("reference", reference.is_some(), &mut errs);
    if with_asset {
        missing("asset", asset.is_some(), &mut errs);
    }
    match reference {
        Some(reference) if errs.is_empty() => Ok(FundsQuery::One(reference, asset)),
        _ => Err(Problem::validation(errs)),
    }
}

/// `{"<what>": [...], "nextCursor": ...}` from a page read one longer than `limit`; the
/// cursor is the last record's stored reference.
fn page_reply<T>(
    what: &str,
    page: oms_ports::PortResult<Vec<T>>,
    limit: u32,
    reference: impl Fn(&T) -> &String,
    view: impl Fn(&T) -> serde_json::Value,
) -> ReplyResult {
    let mut page = page.map_err(|e| Problem::from_port("order store", &e))?;
    let next = next_cursor(&mut page, limit, |r| reference(r).clone());
    let views: Vec<_> = page.iter().map(view).collect();
    Ok(Reply::json(
        StatusCode::OK,
        &json!({ what: views, "nextCursor": next }),
    ))
}

/// A recorded deposit credit, under the reference the operator gave (the ledger's carries
/// the asset too).
fn deposit_view(d: &DepositRecord) -> serde_json::Value {
    let suffix = format!(":{}", d.asset.as_str());
    json!({
        "accountId": d.account.0,
        "asset": d.asset.as_str(),
        "amount": fmt_plain(d.amount),
        "reference": d.reference.strip_suffix(&suffix).unwrap_or(&d.reference),
        "creditedAt": format_rfc3339_millis(d.credited_at),
    })
}

fn view(w: &WithdrawalRecord) -> serde_json::Value {
    json!({
        "accountId": w.account.0,
        "asset": w.asset.as_str(),
        "amount": fmt_plain(w.amount),
        "reference": w.reference,
        "status": if w.approved { "APPROVED" } else { "REJECTED" },
        "rejectReason": w.reason.map(|r| r.code()),
        "decidedAt": format_rfc3339_millis(w.decided_at),
    })
}
