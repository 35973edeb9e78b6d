//! `/api/accounts/me`, the account's kill switch and dead man's switch, and `/api/instruments`.

use crate::api::auth::{Caller, Trader};
use crate::api::body::{object, JsonBody};
use crate::api::idempotency::run_idempotent;
use crate::api::problem::Problem;
use crate::api::reply::{Reply, ReplyResult};
use crate::api::state::ApiState;
use crate::api::views::{BalanceView, InstrumentView};
use crate::ingestion::clock::{self, format_rfc3339_millis};
use crate::ingestion::publish::publish_order_event;
use crate::ingestion::{codes, FieldError};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use oms_domain::events::Event;
use oms_domain::ids::{AccountId, Timestamp};
use serde_json::{json, Value};

pub async fn me(State(s): State<ApiState>, caller: Caller) -> ReplyResult {
    let name = s
        .account_name(caller.account)
        .await
        .map_err(|e| Problem::from_port("account store", &e))?;
    let balances = s
        .store
        .balances(caller.account)
        .await
        .map_err(|e| Problem::from_port("order store", &e))?;
    let balances: Vec<BalanceView> = balances.iter().map(BalanceView::from).collect();
    let kill_switch = s
        .store
        .kill_switch(caller.account)
        .await
        .map_err(|e| Problem::from_port("order store", &e))?;
    let global = s
        .store
        .global_kill_switch()
        .await
        .map_err(|e| Problem::from_port("order store", &e))?;
    let cancel_after = recorded_cancel_after(&s, caller.account).await?;
    Ok(Reply::json(
        StatusCode::OK,
        &json!({
            "accountId": caller.account.0,
            "name": name,
            "balances": balances,
            "killSwitch": kill_switch,
            "globalKillSwitch": global,
            "cancelAfter": cancel_after,
        }),
    ))
}

/// The account's dead man's switch as the processor last recorded it:
/// `{"enabled", "triggerTime", "triggered"}`. `triggered` means its deadline passed and it
/// fired (then `enabled` is false and `triggerTime` says when).
pub(crate) async fn recorded_cancel_after(
    s: &ApiState,
    account: AccountId,
) -> Result<Value, Problem> {
    let state = s
        .store
        .cancel_after(account)
        .await
        .map_err(|e| Problem::from_port("order store", &e))?;
    let deadline = state.and_then(|c| c.deadline);
    let triggered = state.is_some_and(|c| c.triggered);
    Ok(json!({
        "enabled": deadline.is_some() && !triggered,
        "triggerTime": deadline.map(format_rfc3339_millis),
        "triggered": triggered,
    }))
}

/// `PUT /api/accounts/me/kill-switch` with `{"enabled": true|false}`: the account's own kill
/// switch. While it is on, risk refuses the account's new orders and amends
/// (`ACCOUNT_KILL_SWITCH`); cancels still pass. It goes on the log in the account's partition,
/// so it applies to every order placed after the answer. `GET /api/accounts/me` shows it once
/// the processor has recorded it.
pub async fn set_kill_switch(
    State(s): State<ApiState>,
    caller: Trader,
    headers: HeaderMap,
    body: JsonBody,
) -> Response {
    let path = "/api/accounts/me/kill-switch";
    put_setting(&s, caller.account, &headers, path, &body, || {
        switch(&s, caller.account, &body)
    })
    .await
}

/// Runs an account's `PUT` of one of its settings under its idempotency key.
async fn put_setting<F, Fut>(
    s: &ApiState,
    account: AccountId,
    headers: &HeaderMap,
    path: &str,
    body: &JsonBody,
    apply: F,
) -> Response
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ReplyResult>,
{
    run_idempotent(
        s,
        account,
        headers,
        "PUT",
        path,
        &body.0,
        Vec::new(),
        |_| async { apply().await.unwrap_or_else(Reply::from) },
    )
    .await
    .into_response()
}

pub(super) async fn switch(s: &ApiState, account: AccountId, body: &JsonBody) -> ReplyResult {
    let on = parse_switch(&body.parse()?).map_err(|e| Problem::validation(vec![e]))?;
    let event = Event::KillSwitchSet {
        account,
        on,
        change: s.ids.next_id(),
    };
    publish_order_event(s.log.as_ref(), &s.config.orders_topic, clock::now(), event)
        .await
        .map_err(|e| Problem::from_port("event log", &e))?;
    Ok(Reply::json(
        StatusCode::ACCEPTED,
        &json!({ "killSwitch": on }),
    ))
}

/// `{"enabled": bool}`, nothing else.
pub(super) fn parse_switch(body: &Value) -> Result<bool, FieldError> {
    match object(body, &["enabled"])?.get("enabled") {
        Some(Value::Bool(on)) => Ok(*on),
        None | Some(Value::Null) => Err(FieldError::new(
            "enabled",
            codes::MISSING_FIELD,
            "enabled is required",
        )),
        Some(_) => Err(FieldError::new(
            "enabled",
            codes::INVALID_TYPE,
            "enabled must be true or false",
        )),
    }
}

/// The longest dead man's switch: a day. Longer would protect nothing a client would notice.
pub const CANCEL_AFTER_MAX_MS: u64 = 86_400_000;
/// The shortest one that is not "off": under a second the switch fires before a client's
/// refresh could get through the log, whatever the client does.
pub const CANCEL_AFTER_MIN_MS: u64 = 1_000;

/// `PUT /api/accounts/me/cancel-after` with `{"timeoutMs": n}`: the account's dead man's
/// switch. Unless the client sends it again within `n` ms, every order of the account placed
/// by then and still live is cancelled; `0` turns it off. A bot calls it every few seconds
/// with a timeout of a minute or so, and if the bot, its host or its network dies, its orders
/// do not rest on unattended. The deadline goes on the log in the account's partition; the
/// risk stage fires it (ARCHITECTURE.md, "Risk"). `GET /api/accounts/me` shows it
/// (`cancelAfter`) once the processor has recorded it.
pub async fn set_cancel_after(
    State(s): State<ApiState>,
    caller: Trader,
    headers: HeaderMap,
    body: JsonBody,
) -> Response {
    let path = "/api/accounts/me/cancel-after";
    put_setting(&s, caller.account, &headers, path, &body, || {
        cancel_after(&s, caller.account, &body)
    })
    .await
}

async fn cancel_after(s: &ApiState, account: AccountId, body: &JsonBody) -> ReplyResult {
    let timeout_ms = parse_timeout(&body.parse()?).map_err(|e| Problem::validation(vec![e]))?;
    let now = clock::now();
    let deadline = (timeout_ms > 0).then(|| {
        Timestamp(
            now.0
                .saturating_add(i64::try_from(timeout_ms).unwrap_or(i64::MAX)),
        )
    });
    let event = Event::CancelAfterSet {
        account,
        deadline,
        change: s.ids.next_id(),
    };
    publish_order_event(s.log.as_ref(), &s.config.orders_topic, now, event)
        .await
        .map_err(|e| Problem::from_port("event log", &e))?;
    Ok(Reply::json(
        StatusCode::ACCEPTED,
        &json!({
            "enabled": deadline.is_some(),
            "timeoutMs": timeout_ms,
            "currentTime": format_rfc3339_millis(now),
            "triggerTime": deadline.map(format_rfc3339_millis),
        }),
    ))
}

/// `{"timeoutMs": 0 | 1000..=86400000}`, nothing else.
fn parse_timeout(body: &Value) -> Result<u64, FieldError> {
    let bad = |code, detail: &str| FieldError::new("timeoutMs", code, detail);
    match object(body, &["timeoutMs"])?.get("timeoutMs") {
        None | Some(Value::Null) => Err(bad(codes::MISSING_FIELD, "timeoutMs is required")),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(ms) if ms == 0 || (CANCEL_AFTER_MIN_MS..=CANCEL_AFTER_MAX_MS).contains(&ms) => {
                Ok(ms)
            }
            _ => Err(bad(
                codes::INVALID_TIMEOUT,
                &format!(
                    "timeoutMs must be 0 (off) or a whole number of milliseconds from \
                     {CANCEL_AFTER_MIN_MS} to {CANCEL_AFTER_MAX_MS}"
                ),
            )),
        },
        Some(_) => Err(bad(
            codes::INVALID_TYPE,
            "timeoutMs must be a number of milliseconds",
        )),
    }
}

/// `GET /api/instruments`: the configured instruments, each with the trading status in force
/// (an operator's, as the order processor last recorded it, over the configured one).
pub async fn instruments(State(s): State<ApiState>, _caller: Caller) -> ReplyResult {
    let set = s
        .store
        .instrument_statuses()
        .await
        .map_err(|e| Problem::from_port("order store", &e))?;
    let list: Vec<InstrumentView> = s
        .instruments
        .iter()
        .map(|i| {
            let mut view = InstrumentView::from(i);
            if let Some(r) = set.iter().find(|r| r.symbol == i.symbol) {
                view.status = r.status;
            }
            view
        })
        .collect();
    Ok(Reply::json(StatusCode::OK, &json!({ "instruments": list })))
}
