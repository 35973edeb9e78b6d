//! `/api/admin/accounts/{accountId}/withdrawals`: an operator pays funds out of an account.
//!
//! A withdrawal is asked for on the log (`WithdrawalRequested`, in the account's partition)
//! and decided by the risk engine where it lands there, against what is available then:
//! funds held by live orders cannot leave, and a reference is decided once, ever. The
//! processor records the decision; `GET` reads it back.

use super::admin::{check_deposit_reference, find_account, once, parse_deposit};
use super::{distinct_params, query_pairs};
use crate::api::auth::Operator;
use crate::api::body::JsonBody;
use crate::api::problem::{api_codes, Problem};
use crate::api::reply::{Reply, ReplyResult};
use crate::api::state::ApiState;
use crate::api::views::fmt_plain;
use crate::ingestion::clock::{self, format_rfc3339_millis};
use crate::ingestion::publish::publish_order_event;
use crate::ingestion::{codes, FieldError};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use oms_domain::events::Event;
use oms_ports::order_store::WithdrawalRecord;
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
    let pairs = query_pairs(query).map_err(|e| Problem::validation(vec![e]))?;
    let mut errs = Vec::new();
    let mut reference = None;
    for (name, value) in distinct_params(&pairs, &mut errs) {
        match name {
            "reference" => match check_deposit_reference(value) {
                Ok(r) => reference = Some(r),
                Err(e) => errs.push(e),
            },
            _ => errs.push(FieldError::new(
                name,
                codes::UNKNOWN_FIELD,
                format!("unknown parameter {name:?}: a withdrawal is read by its reference"),
            )),
        }
    }
    if reference.is_none() && errs.is_empty() {
        errs.push(FieldError::new(
            "reference",
            codes::MISSING_FIELD,
            "reference is required",
        ));
    }
    let (Some(reference), true) = (reference, errs.is_empty()) else {
        return Err(Problem::validation(errs));
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
