//! `/api/session`: trade an API key for the `oms_session` cookie the dashboard uses.

use crate::api::auth::{
    account_for_api_key, end_session, hash_api_key, issue_session, new_session_nonce,
    session_clear_cookie, session_set_cookie, Caller,
};
use crate::api::body::{object, string_field, JsonBody};
use crate::api::problem::{api_codes, Problem};
use crate::api::reply::{Reply, ReplyResult};
use crate::api::state::ApiState;
use crate::ingestion::{clock, FieldError};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

pub async fn create(State(s): State<ApiState>, body: JsonBody) -> ReplyResult {
    let value = body.parse()?;
    let key = api_key_field(&value).map_err(|e| Problem::validation(vec![e]))?;
    let account = account_for_api_key(&s, key)
        .await?
        .ok_or_else(|| Problem::unauthorized("unknown API key").with_field("apiKey"))?;
    let ttl = s.config.session_ttl;
    let expiry = clock::now().millis() / 1000 + ttl.as_secs() as i64;
    let nonce = new_session_nonce().map_err(|e| {
        tracing::error!(error = %e, "no randomness for a session token");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            api_codes::INTERNAL_ERROR,
            "no session could be opened",
        )
    })?;
    let token = issue_session(
        &s.config.session_secret,
        account,
        &hash_api_key(key),
        expiry,
        &nonce,
    );
    Ok(Reply::empty(StatusCode::NO_CONTENT)
        .header(
            "set-cookie",
            session_set_cookie(&token, ttl, s.config.secure_cookies),
        )
        .header("cache-control", "no-store"))
}

fn api_key_field(v: &Value) -> Result<&str, FieldError> {
    string_field(object(v, &["apiKey"])?, "apiKey")
}

/// Signs out: the session ends on the server (a copy of the cookie no longer works), and the
/// browser is told to forget the cookie. If the end cannot be recorded (`503`), or the account
/// is over its request rate (`429`), the cookie is kept, so the client can try again.
pub async fn delete(State(s): State<ApiState>, headers: HeaderMap) -> ReplyResult {
    end_session(&s, &headers).await?;
    Ok(Reply::empty(StatusCode::NO_CONTENT)
        .header("set-cookie", session_clear_cookie(s.config.secure_cookies)))
}

pub async fn get(State(s): State<ApiState>, caller: Caller) -> ReplyResult {
    let name = s
        .account_name(caller.account)
        .await
        .map_err(|e| Problem::from_port("account store", &e))?;
    Ok(Reply::json(
        StatusCode::OK,
        &json!({"accountId": caller.account.0, "name": name, "scope": caller.scope}),
    ))
}
