//! `/api/accounts/me` and `/api/instruments`.

use crate::api::auth::Caller;
use crate::api::problem::Problem;
use crate::api::reply::{Reply, ReplyResult};
use crate::api::state::ApiState;
use crate::api::views::{BalanceView, InstrumentView};
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;

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
    Ok(Reply::json(
        StatusCode::OK,
        &json!({"accountId": caller.account.0, "name": name, "balances": balances}),
    ))
}

pub async fn instruments(State(s): State<ApiState>, _caller: Caller) -> Reply {
    let list: Vec<InstrumentView> = s.instruments.iter().map(InstrumentView::from).collect();
    Reply::json(StatusCode::OK, &json!({ "instruments": list }))
}
