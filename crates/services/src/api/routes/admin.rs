//! `/api/admin/...`: what an operator does while the system runs. Open accounts, issue and
//! revoke their API keys, credit deposits, stop an account (its kill switch and a cancel of
//! all its open orders), and stop every account (the global kill switch). Callers
//! authenticate with `X-Admin-Key` ([`Operator`]); trading keys and sessions never reach
//! these routes.

use crate::api::auth::{hash_api_key, new_api_key, Operator};
use crate::api::body::{object, parse_json, require_json, string_field, JsonBody};
use crate::api::idempotency::{key_from_headers, run_idempotent};
use crate::api::problem::{api_codes, Problem};
use crate::api::reply::{Reply, ReplyResult};
use crate::api::routes::account::{parse_switch, switch};
use crate::api::routes::cancel_all::{cancel_all_of, Requested};
use crate::api::routes::orders::{
    bad_cursor, next_cursor, parse_limit, parse_symbol, DEFAULT_LIMIT,
};
use crate::api::routes::{distinct_params, query_pairs};
use crate::api::state::ApiState;
use crate::api::views::{fmt_plain, BalanceView};
use crate::ingestion::clock::{self, format_rfc3339_millis};
use crate::ingestion::decimal::decimal_field;
use crate::ingestion::publish::{
    deposit_reference, publish_order_event, publish_to_every_partition,
};
use crate::ingestion::validate::required_enum;
use crate::ingestion::{codes, FieldError};
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use oms_domain::events::{CancelReason, Event};
use oms_domain::ids::{AccountId, Asset, Symbol};
use oms_domain::instrument::{Instrument, TradingStatus};
use oms_domain::Decimal;
use oms_ports::order_store::{Account, KeyScope, OrderStore};
use oms_ports::PortResult;
use serde_json::{json, Value};

/// Longest account name, in characters.
pub const ACCOUNT_NAME_MAX: usize = 64;
/// Longest deposit reference, in bytes (visible ASCII).
pub const DEPOSIT_REFERENCE_MAX: usize = 128;
/// Largest deposit. Balances are exact decimals of about 28 digits, and the ledgers refuse a
/// change they could not hold exactly; with this bound and [`DEPOSIT_MAX_DECIMALS`] a balance
/// has room for 10,000 largest deposits before that, so an accepted deposit is credited.
pub const DEPOSIT_MAX: u64 = 1_000_000_000_000;
/// Most decimals of a deposit: finer than any price or quantity the instruments allow.
pub const DEPOSIT_MAX_DECIMALS: u32 = 12;

/// `GET /api/admin/accounts?limit=&cursor=`: accounts by id with their balances and kill
/// switch, a page at a time (`limit` 1 to 500, 100 by default; `cursor` the `nextCursor` of
/// the page before, absent on the last page).
pub async fn list_accounts(
    State(s): State<ApiState>,
    _: Operator,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> ReplyResult {
    let pairs = query_pairs(query).map_err(|e| Problem::validation(vec![e]))?;
    let mut errs = Vec::new();
    let (mut limit, mut after) = (DEFAULT_LIMIT, None);
    for (name, value) in distinct_params(&pairs, &mut errs) {
        match name {
            "limit" => match parse_limit(value) {
                Ok(n) => limit = n,
                Err(e) => errs.push(e),
            },
            "cursor" => match canonical_account_id(value) {
                Some(id) => after = Some(id),
                None => errs.push(bad_cursor()),
            },
            _ => errs.push(FieldError::new(
                name,
                codes::UNKNOWN_FIELD,
                format!("unknown parameter {name:?}: accounts are listed by limit and cursor"),
            )),
        }
    }
    if !errs.is_empty() {
        return Err(Problem::validation(errs));
    }
    // One more than asked tells whether there is a next page.
    let mut accounts = s
        .store
        .accounts_page(after, limit + 1)
        .await
        .map_err(|e| Problem::from_port("account store", &e))?;
    let next_cursor = next_cursor(&mut accounts, limit, |a| a.id.0.to_string());
    let mut views = Vec::with_capacity(accounts.len());
    for a in &accounts {
        views.push(account_view(&s, a).await?);
    }
    Ok(Reply::json(
        StatusCode::OK,
        &json!({ "accounts": views, "nextCursor": next_cursor }),
    ))
}

/// An account id written the one way it is written back (decimal, no sign or leading zero),
/// so that one account has one path and one request fingerprint; no store holds one above
/// `i64::MAX`.
fn canonical_account_id(raw: &str) -> Option<AccountId> {
    let canonical = !raw.is_empty()
        && raw.bytes().all(|b| b.is_ascii_digit())
        && (raw == "0" || !raw.starts_with('0'));
    raw.parse::<u64>()
        .ok()
        .filter(|&id| canonical && i64::try_from(id).is_ok())
        .map(AccountId)
}

/// `GET /api/admin/accounts/{accountId}`.
pub async fn get_account(
    State(s): State<ApiState>,
    _: Operator,
    Path(account_id): Path<String>,
) -> ReplyResult {
    let account = find_account(&s, &account_id).await?;
    Ok(Reply::json(
        StatusCode::OK,
        &account_view(&s, &account).await?,
    ))
}

/// `POST /api/admin/accounts` with `{"name": "..."}`: opens an account, without funds or
/// keys (`.../api-keys` and `.../deposits` give them). Idempotent with `X-Idempotency-Key`;
/// if a process stopped between opening the account and storing the answer, the retry after
/// the key's lock finds the name taken and answers 409 naming that account.
pub async fn create_account(
    State(s): State<ApiState>,
    operator: Operator,
    headers: HeaderMap,
    body: JsonBody,
) -> Response {
    once(
        &s,
        &operator,
        &headers,
        "POST",
        "/api/admin/accounts",
        &body,
        || open_account(&s, &body),
    )
    .await
}

async fn open_account(s: &ApiState, body: &JsonBody) -> ReplyResult {
    let name = parse_account_name(&body.parse()?).map_err(|e| Problem::validation(vec![e]))?;
    // Names are how the configuration's accounts are found at start (and `fees` is the fee
    // account's), so the store keeps them unique: a name taken, even by a request racing this
    // one, is a conflict naming the account that has it.
    let (account, created) = s
        .store
        .find_or_create_account(&name, false, clock::now())
        .await
        .map_err(|e| Problem::from_port("account store", &e))?;
    if !created {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            api_codes::DUPLICATE_ACCOUNT_NAME,
            format!("an account named {name:?} exists already"),
        )
        .with_field("name")
        .with_extra("existingAccountId", json!(account.id.0)));
    }
    Ok(
        Reply::json(StatusCode::CREATED, &account_view(s, &account).await?)
            .header("location", format!("/api/admin/accounts/{}", account.id)),
    )
}

/// `POST /api/admin/accounts/{accountId}/api-keys`: a new API key for the account, shown in
/// this answer only. Refuses `X-Idempotency-Key`: replaying the answer would mean keeping the
/// key in clear in the idempotency store. A retry issues another key.
pub async fn issue_api_key(
    State(s): State<ApiState>,
    _: Operator,
    headers: HeaderMap,
    Path(account_id): Path<String>,
    body: axum::body::Bytes,
) -> ReplyResult {
    let scope = parse_key_scope(&headers, &body)?;
    if key_from_headers(&headers)?.is_some() {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            api_codes::IDEMPOTENCY_NOT_SUPPORTED,
            "an API key is shown once and never stored in clear, so this request cannot be \
             replayed: send it without X-Idempotency-Key",
        )
        .with_field("X-Idempotency-Key"));
    }
    let account = find_account(&s, &account_id).await?;
    let key = new_api_key().map_err(|e| {
        tracing::error!(error = %e, "no randomness for an API key");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            api_codes::INTERNAL_ERROR,
            "no API key could be generated",
        )
    })?;
    let key_id = hash_api_key(&key);
    s.store
        .add_api_key(account.id, &key_id, scope, clock::now())
        .await
        .map_err(|e| Problem::from_port("account store", &e))?;
    tracing::info!(account = %account.id, key = &key_id[..12], scope = scope.as_str(), "API key issued by an operator");
    Ok(Reply::json(
        StatusCode::CREATED,
        &json!({
            "accountId": account.id.0,
            "apiKey": key,
            "keyId": key_id,
            "scope": scope,
        }),
    )
    .header("cache-control", "no-store"))
}

/// `GET /api/admin/accounts/{accountId}/api-keys`: the account's keys by id (the SHA-256 of the
/// key, which is all that is stored), oldest first.
pub async fn list_api_keys(
    State(s): State<ApiState>,
    _: Operator,
    Path(account_id): Path<String>,
) -> ReplyResult {
    let account = find_account(&s, &account_id).await?;
    let keys = s
        .store
        .api_keys(account.id)
        .await
        .map_err(|e| Problem::from_port("account store", &e))?;
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| json!({ "keyId": k.key_hash, "scope": k.scope, "createdAt": format_rfc3339_millis(k.created_at) }))
        .collect();
    Ok(Reply::json(StatusCode::OK, &json!({ "apiKeys": keys })))
}

/// `DELETE /api/admin/accounts/{accountId}/api-keys/{keyId}`: revokes a key, named by its id
/// (the key's SHA-256, so a leaked key can be revoked from the key itself). This process
/// refuses it at once, other API processes within their key cache's TTL (30 s); so with the
/// sessions opened with it, which name their key.
pub async fn revoke_api_key(
    State(s): State<ApiState>,
    _: Operator,
    Path((account_id, key_id)): Path<(String, String)>,
) -> ReplyResult {
    let account = find_account(&s, &account_id).await?;
    let hash = key_id.to_ascii_lowercase();
    let revoked = s
        .store
        .revoke_api_key(account.id, &hash)
        .await
        .map_err(|e| Problem::from_port("account store", &e))?;
    if !revoked {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            api_codes::API_KEY_NOT_FOUND,
            "the account has no such key",
        )
        .with_field("keyId"));
    }
    s.keys.forget(&hash);
    tracing::info!(account = %account.id, "API key revoked by an operator");
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}

/// `POST /api/admin/accounts/{accountId}/deposits` with `{"asset", "amount", "reference"}`:
/// credits the account. The reference makes it happen once: a deposit whose reference the
/// account has had before is not credited again, whatever its amount (the ledger keeps every
/// reference). It goes on the log in the account's partition, so orders placed after the
/// answer see the funds.
pub async fn deposit(
    State(s): State<ApiState>,
    operator: Operator,
    headers: HeaderMap,
    Path(account_id): Path<String>,
    body: JsonBody,
) -> Response {
    let path = format!("/api/admin/accounts/{account_id}/deposits");
    once(&s, &operator, &headers, "POST", &path, &body, || {
        credit(&s, &account_id, &body)
    })
    .await
}

async fn credit(s: &ApiState, account_id: &str, body: &JsonBody) -> ReplyResult {
    let account = find_account(s, account_id).await?;
    let (asset, amount, reference) = parse_deposit(s, &body.parse()?)?;
    let credited = credited_otherwise(s.store.as_ref(), account.id, &reference, &asset, amount)
        .await
        .map_err(|e| Problem::from_port("order store", &e))?;
    if let Some(credited) = credited {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            api_codes::DEPOSIT_REFERENCE_REUSED,
            format!(
                "the account's deposit {reference:?} in {asset} was credited with {} already; a reference credits once",
                fmt_plain(credited)
            ),
        )
        .with_field("reference")
        .with_extra("creditedAmount", json!(fmt_plain(credited))));
    }
    let event = Event::Deposit {
        account: account.id,
        asset: asset.clone(),
        amount,
        reference: deposit_reference(&reference, &asset),
    };
    publish_order_event(s.log.as_ref(), &s.config.orders_topic, clock::now(), event)
        .await
        .map_err(|e| Problem::from_port("event log", &e))?;
    tracing::info!(account = %account.id, %asset, %amount, %reference, "deposit by an operator");
    Ok(Reply::json(
        StatusCode::ACCEPTED,
        &json!({
            "accountId": account.id.0,
            "asset": asset.as_str(),
            "amount": fmt_plain(amount),
            "reference": reference,
        }),
    ))
}

/// What the deposit `reference` in `asset` was credited with, if that is not `amount`. A
/// reference credits once: a repeat with the same amount is harmless, but one with another
/// amount would be taken and then never credited. (A repeat sent before the first is credited
/// cannot be told apart yet.)
pub async fn credited_otherwise(
    store: &dyn OrderStore,
    account: AccountId,
    reference: &str,
    asset: &Asset,
    amount: Decimal,
) -> PortResult<Option<Decimal>> {
    let recorded = store
        .deposit(account, &deposit_reference(reference, asset))
        .await?;
    Ok(recorded
        .map(|d| d.amount)
        .filter(|credited| *credited != amount))
}

/// `PUT /api/admin/accounts/{accountId}/kill-switch` with `{"enabled": bool}`: the same switch
/// as the account's own `PUT /api/accounts/me/kill-switch`, set by an operator.
pub async fn set_kill_switch(
    State(s): State<ApiState>,
    operator: Operator,
    headers: HeaderMap,
    Path(account_id): Path<String>,
    body: JsonBody,
) -> Response {
    let path = format!("/api/admin/accounts/{account_id}/kill-switch");
    once(&s, &operator, &headers, "PUT", &path, &body, || async {
        let account = find_account(&s, &account_id).await?;
        switch(&s, account.id, &body).await
    })
    .await
}

/// `PUT /api/admin/kill-switch` with `{"enabled": bool}`: the global kill switch. While it is
/// on, risk refuses every account's new orders and amends (`GLOBAL_KILL_SWITCH`); cancels
/// pass. A copy goes to each partition of `orders`, so in each partition it applies to the
/// orders placed behind it, that is to every order placed after the answer.
pub async fn set_global_kill_switch(
    State(s): State<ApiState>,
    operator: Operator,
    headers: HeaderMap,
    body: JsonBody,
) -> Response {
    once(
        &s,
        &operator,
        &headers,
        "PUT",
        "/api/admin/kill-switch",
        &body,
        || halt(&s, &body),
    )
    .await
}

async fn halt(s: &ApiState, body: &JsonBody) -> ReplyResult {
    let on = parse_switch(&body.parse()?).map_err(|e| Problem::validation(vec![e]))?;
    let change = s.ids.next_id();
    publish_to_every_partition(s.log.as_ref(), &s.config.orders_topic, clock::now(), |p| {
        Event::GlobalKillSwitchSet {
            on,
            change,
            partition: p,
        }
    })
    .await
    .map_err(|e| Problem::from_port("event log", &e))?;
    tracing::warn!(on, "global kill switch set by an operator");
    Ok(Reply::json(
        StatusCode::ACCEPTED,
        &json!({ "killSwitch": on }),
    ))
}

/// `PUT /api/admin/instruments/status` with `{"symbol": "BTC/USD", "status": "HALTED"}`: an
/// operator's trading status for one instrument, in force over its configured `status` (and
/// across restarts) until the next setting. `HALTED` refuses new orders, amends and the
/// clients' own cancels (a dead man's switch's and an operator's still go through);
/// `CANCEL_ONLY` refuses new orders and amends; `TRADING` takes everything again. Resting
/// orders stay in the book. As with the global kill switch a copy goes to each partition of
/// `orders`, so risk applies it to every order placed after the answer; risk passes it on to
/// the symbol's book, which applies it to whatever reaches the book after it.
pub async fn set_instrument_status(
    State(s): State<ApiState>,
    operator: Operator,
    headers: HeaderMap,
    body: JsonBody,
) -> Response {
    once(
        &s,
        &operator,
        &headers,
        "PUT",
        "/api/admin/instruments/status",
        &body,
        || instrument_status(&s, &body),
    )
    .await
}

async fn instrument_status(s: &ApiState, body: &JsonBody) -> ReplyResult {
    let (symbol, status) =
        parse_instrument_status(s, &body.parse()?).map_err(Problem::validation)?;
    let change = s.ids.next_id();
    publish_to_every_partition(s.log.as_ref(), &s.config.orders_topic, clock::now(), |p| {
        Event::InstrumentStatusSet {
            symbol: symbol.clone(),
            status,
            change,
            partition: p,
        }
    })
    .await
    .map_err(|e| Problem::from_port("event log", &e))?;
    tracing::warn!(%symbol, status = status.as_str(), "instrument status set by an operator");
    Ok(Reply::json(
        StatusCode::ACCEPTED,
        &json!({ "symbol": symbol.as_str(), "status": status, "change": change.to_string() }),
    ))
}

fn parse_instrument_status(
    s: &ApiState,
    body: &Value,
) -> Result<(Symbol, TradingStatus), Vec<FieldError>> {
    let fields = object(body, &["symbol", "status"]).map_err(|e| vec![e])?;
    let symbol = string_field(fields, "symbol").and_then(|name| parse_symbol(name, s));
    let statuses = TradingStatus::ALL.map(|t| (t.as_str(), t));
    let status = required_enum(fields, "status", &statuses);
    match (symbol, status) {
        (Ok(symbol), Ok(status)) => Ok((symbol, status)),
        (symbol, status) => Err(symbol.err().into_iter().chain(status.err()).collect()),
    }
}

/// `GET /api/admin/kill-switch`: the global switch as the order processor last recorded it.
pub async fn global_kill_switch(State(s): State<ApiState>, _: Operator) -> ReplyResult {
    let on = s
        .store
        .global_kill_switch()
        .await
        .map_err(|e| Problem::from_port("order store", &e))?;
    Ok(Reply::json(StatusCode::OK, &json!({ "killSwitch": on })))
}

/// `DELETE /api/admin/accounts/{accountId}/orders`: the account's `DELETE /api/orders` (same
/// filters and answer), sent by an operator. With the kill switch, it stops an account.
pub async fn cancel_all(
    State(s): State<ApiState>,
    operator: Operator,
    headers: HeaderMap,
    Path(account_id): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Bytes,
) -> Response {
    let account = match find_account(&s, &account_id).await {
        Ok(a) => a,
        Err(p) => return Reply::from(p).into_response(),
    };
    let requested = Requested {
        scope: operator.scope(),
        path: format!("/api/admin/accounts/{}/orders", account.id),
        reason: Some(CancelReason::OperatorRequested),
    };
    cancel_all_of(s, account.id, requested, headers, query, &body).await
}

/// Runs an admin request once per idempotency key of its operator.
pub(super) async fn once<F, Fut>(
    s: &ApiState,
    operator: &Operator,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    body: &JsonBody,
    run: F,
) -> Response
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ReplyResult>,
{
    run_idempotent(
        s,
        operator.scope(),
        headers,
        method,
        path,
        &body.0,
        Vec::new(),
        |_| async { run().await.unwrap_or_else(Reply::from) },
    )
    .await
    .into_response()
}

/// The account a path names; 404 for one that does not exist or is not a number.
pub(super) async fn find_account(s: &ApiState, raw: &str) -> Result<Account, Problem> {
    let not_found = || {
        Problem::new(
            StatusCode::NOT_FOUND,
            api_codes::ACCOUNT_NOT_FOUND,
            "no such account",
        )
        .with_field("accountId")
    };
    let id = canonical_account_id(raw).ok_or_else(not_found)?;
    s.store
        .account(id)
        .await
        .map_err(|e| Problem::from_port("account store", &e))?
        .ok_or_else(not_found)
}

async fn account_view(s: &ApiState, a: &Account) -> Result<Value, Problem> {
    let balances = s
        .store
        .balances(a.id)
        .await
        .map_err(|e| Problem::from_port("order store", &e))?;
    let kill_switch = s
        .store
        .kill_switch(a.id)
        .await
        .map_err(|e| Problem::from_port("order store", &e))?;
    let cancel_after = super::account::recorded_cancel_after(s, a.id).await?;
    Ok(json!({
        "accountId": a.id.0,
        "name": a.name,
        "demo": a.demo,
        "createdAt": format_rfc3339_millis(a.created_at),
        "killSwitch": kill_switch,
        "cancelAfter": cancel_after,
        "balances": balances.iter().map(BalanceView::from).collect::<Vec<_>>(),
    }))
}

/// The optional body of a key's issue, `{"scope": "TRADE" | "READ"}`: none is a trading key,
/// as every key was before keys had scopes.
fn parse_key_scope(headers: &HeaderMap, body: &[u8]) -> Result<KeyScope, Problem> {
    if body.is_empty() {
        return Ok(KeyScope::Trade);
    }
    require_json(headers)?;
    let value = parse_json(body)?;
    let one = |e: FieldError| Problem::validation(vec![e]);
    let fields = object(&value, &["scope"]).map_err(one)?;
    match fields.get("scope") {
        None | Some(Value::Null) => Ok(KeyScope::Trade),
        Some(Value::String(v)) => KeyScope::parse(v).ok_or_else(|| {
            one(FieldError::new(
                "scope",
                codes::INVALID_ENUM,
                "scope must be one of TRADE, READ",
            ))
        }),
        Some(_) => Err(one(FieldError::new(
            "scope",
            codes::INVALID_TYPE,
            "scope must be a string",
        ))),
    }
}

/// `{"name": "..."}`, its name as [`check_account_name`] takes it.
fn parse_account_name(body: &Value) -> Result<String, FieldError> {
    let fields = object(body, &["name"])?;
    check_account_name(string_field(fields, "name")?)
}

/// An account's name, for the admin API and `oms accounts create` alike: trimmed, 1 to
/// [`ACCOUNT_NAME_MAX`] characters, none of them control characters.
pub fn check_account_name(raw: &str) -> Result<String, FieldError> {
    let name = raw.trim();
    if name.is_empty()
        || name.chars().count() > ACCOUNT_NAME_MAX
        || name
            .chars()
            .any(|c| c.is_control() || is_invisible_format(c))
    {
        return Err(FieldError::new(
            "name",
            codes::INVALID_NAME,
            format!(
                "name must be 1 to {ACCOUNT_NAME_MAX} characters, none of them control, \
                 zero-width or text-direction characters"
            ),
        ));
    }
    Ok(name.to_string())
}

/// Characters that change how a name looks without being seen: a name with a right-to-left
/// override reads as another name in a listing or a log.
fn is_invisible_format(c: char) -> bool {
    // Unicode's format characters (category Cf) that show nothing.
    matches!(c,
        '\u{00AD}' // soft hyphen
        | '\u{061C}' // Arabic letter mark
        | '\u{180E}' // Mongolian vowel separator
        | '\u{200B}'..='\u{200F}' // zero-width space, joiners, direction marks
        | '\u{202A}'..='\u{202E}' // direction embeddings and overrides
        | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
        | '\u{2066}'..='\u{206F}' // direction isolates, deprecated format characters
        | '\u{FEFF}' // byte order mark
        | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation
        | '\u{E0000}'..='\u{E007F}' // tags
    )
}

/// `{"asset", "amount", "reference"}`, every field checked, each error naming its field.
pub(super) fn parse_deposit(
    s: &ApiState,
    body: &Value,
) -> Result<(Asset, Decimal, String), Problem> {
    let one = |e: FieldError| Problem::validation(vec![e]);
    let fields = object(body, &["asset", "amount", "reference"]).map_err(one)?;
    let mut errors = Vec::new();
    let asset = string_field(fields, "asset")
        .and_then(|a| check_deposit_asset(&s.instruments, a))
        .map_err(|e| errors.push(e))
        .ok();
    let amount = match decimal_field("amount", fields.get("amount").unwrap_or(&Value::Null)) {
        Ok(Some(a)) => check_deposit_amount(a).map_err(|e| errors.push(e)).ok(),
        Ok(None) => {
            errors.push(FieldError::new(
                "amount",
                codes::MISSING_FIELD,
                "amount is required",
            ));
            None
        }
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let reference = string_field(fields, "reference")
        .and_then(check_deposit_reference)
        .map_err(|e| errors.push(e))
        .ok();
    match (asset, amount, reference) {
        (Some(asset), Some(amount), Some(reference)) => Ok((asset, amount, reference)),
        _ => Err(Problem::validation(errors)),
    }
}

/// A deposit's asset, for the admin API and `oms accounts deposit` alike: one that an
/// instrument trades.
pub fn check_deposit_asset(instruments: &[Instrument], asset: &str) -> Result<Asset, FieldError> {
    if instruments
        .iter()
        .any(|i| i.base.as_str() == asset || i.quote.as_str() == asset)
    {
        Ok(Asset::new(asset))
    } else {
        Err(FieldError::new(
            "asset",
            codes::UNKNOWN_ASSET,
            format!("asset {asset:?} is not traded by any instrument"),
        ))
    }
}

/// A deposit's amount, for the admin API and `oms accounts deposit` alike: above 0, at most
/// [`DEPOSIT_MAX`] with at most [`DEPOSIT_MAX_DECIMALS`] decimals, so that every accepted
/// deposit can be credited exactly.
pub fn check_deposit_amount(amount: Decimal) -> Result<Decimal, FieldError> {
    if amount <= Decimal::ZERO {
        Err(FieldError::new(
            "amount",
            codes::NON_POSITIVE,
            "amount must be greater than 0",
        ))
    } else if amount > Decimal::from(DEPOSIT_MAX) {
        Err(FieldError::new(
            "amount",
            codes::AMOUNT_TOO_LARGE,
            format!("amount must be at most {DEPOSIT_MAX}"),
        ))
    } else if amount.normalize().scale() > DEPOSIT_MAX_DECIMALS {
        Err(FieldError::new(
            "amount",
            codes::TOO_MANY_DECIMALS,
            format!("amount must have at most {DEPOSIT_MAX_DECIMALS} decimals"),
        ))
    } else {
        Ok(amount)
    }
}

/// A deposit's reference, for the admin API and `oms accounts deposit` alike: 1 to
/// [`DEPOSIT_REFERENCE_MAX`] visible ASCII characters.
pub fn check_deposit_reference(reference: &str) -> Result<String, FieldError> {
    if !reference.is_empty()
        && reference.len() <= DEPOSIT_REFERENCE_MAX
        && reference.bytes().all(|b| b.is_ascii_graphic())
    {
        Ok(reference.to_string())
    } else {
        Err(FieldError::new(
            "reference",
            codes::INVALID_REFERENCE,
            format!("reference must be 1 to {DEPOSIT_REFERENCE_MAX} visible ASCII characters"),
        ))
    }
}
