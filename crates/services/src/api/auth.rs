//! Who is calling: an `X-API-Key` (stored as its SHA-256) or the `oms_session` cookie.
//!
//! The session cookie is `accountId.keyHash.expiry.nonce.signature`: the account, the SHA-256
//! of the API key it was opened with, expiry in Unix seconds, 16 random bytes in hex, and
//! HMAC-SHA256 over the rest with the configured secret, base64url without padding. Any
//! instance with the same secret accepts it, while its key still names the account and it was
//! not signed out: revoking the key, or signing out (the token's hash is kept in the store's
//! ended sessions until its expiry), ends it (HTTP requests at once, an open WebSocket's
//! private channel at its next check). A session can do what its key may ([`KeyScope`]): a
//! read-only key's session only reads.

use super::problem::{api_codes, Problem};
use super::state::ApiState;
use crate::ingestion::clock;
use axum::extract::FromRef;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use oms_domain::ids::{AccountId, Timestamp};
use oms_ports::order_store::KeyScope;
use oms_ports::PortError;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const API_KEY_HEADER: &str = "x-api-key";
/// The admin API's credential, apart from `X-API-Key` so that no trading key is ever taken
/// for an operator's.
pub const ADMIN_KEY_HEADER: &str = "x-admin-key";
pub const SESSION_COOKIE: &str = "oms_session";
/// Keys longer than this are refused before hashing.
const MAX_API_KEY_LEN: usize = 512;
/// Bound on remembered keys, so a flood of distinct keys cannot grow memory.
const KEY_CACHE_MAX: usize = 10_000;
/// How long a key the store does not know is answered 401 without asking it again: a client
/// retrying a revoked or mistyped key in a loop costs the store one read per this, not one per
/// request. Short, since a key written to the store by another process (`oms accounts`, a
/// configured key at an instance's start) works here only after it.
const UNKNOWN_KEY_TTL: Duration = Duration::from_secs(2);

/// Lower-case hex SHA-256 of an API key: what the order store keeps.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new random API key: `oms_` and 32 bytes from the OS's generator in hex. Only its hash
/// is stored, so it is shown once.
pub fn new_api_key() -> Result<String, getrandom::Error> {
    random_key("oms_")
}

/// A new operator key of the admin API: `oms_admin_` and 32 random bytes in hex, so that a
/// leaked one is told apart from a trading key at a glance (and by secret scanners).
pub fn new_admin_key() -> Result<String, getrandom::Error> {
    random_key("oms_admin_")
}

/// A session's random nonce: 16 bytes in hex. Two sign-ins in the same second get different
/// tokens, so signing out of one never ends the other.
pub fn new_session_nonce() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

fn random_key(prefix: &str) -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

/// Briefly remembers what the store said of key hashes, so each request does not hit it:
/// found keys for the cache's TTL, unknown ones for [`UNKNOWN_KEY_TTL`]. The two are kept
/// apart, so a flood of made-up keys cannot push out the keys in use.
pub struct KeyCache {
    ttl: Duration,
    found: Mutex<HashMap<String, (Grant, Instant)>>,
    unknown: Mutex<HashMap<String, Instant>>,
    /// Counts revocations, so a lookup that read the store before one cannot put the revoked
    /// key back after it.
    revocations: AtomicU64,
}

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        KeyCache {
            ttl,
            found: Mutex::new(HashMap::new()),
            unknown: Mutex::new(HashMap::new()),
            revocations: AtomicU64::new(0),
        }
    }

    /// What the store said of the key, while that is fresh: `Some(None)` for no such key.
    fn get(&self, hash: &str) -> Option<Option<Grant>> {
        let found = self.found.lock().expect("lock");
        if let Some((g, at)) = found.get(hash) {
            return (at.elapsed() < self.ttl).then_some(Some(*g));
        }
        drop(found);
        let unknown = self.unknown.lock().expect("lock");
        unknown
            .get(hash)
            .filter(|at| at.elapsed() < UNKNOWN_KEY_TTL)
            .map(|_| None)
    }

    /// Drops a revoked key at once in this process; other processes keep it for up to the
    /// cache's TTL.
    pub fn forget(&self, hash: &str) {
        let mut found = self.found.lock().expect("lock");
        self.revocations.fetch_add(1, Ordering::SeqCst);
        found.remove(hash);
    }

    /// Where a lookup starts: pass it to [`KeyCache::put`] with what the store answered.
    fn epoch(&self) -> u64 {
        self.revocations.load(Ordering::SeqCst)
    }

    /// Remembers what the store said of a key (`None`: unknown), unless a key was revoked
    /// since the lookup began.
    fn put(&self, hash: String, grant: Option<Grant>, epoch: u64) {
        let Some(grant) = grant else {
            let mut unknown = self.unknown.lock().expect("lock");
            if unknown.len() >= KEY_CACHE_MAX {
                unknown.clear();
            }
            unknown.insert(hash, Instant::now());
            return;
        };
        let mut found = self.found.lock().expect("lock");
        if self.revocations.load(Ordering::SeqCst) != epoch {
            return;
        }
        if found.len() >= KEY_CACHE_MAX {
            found.clear();
        }
        found.insert(hash, (grant, Instant::now()));
    }
}

/// Who a key or session acts for, and what it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub account: AccountId,
    pub scope: KeyScope,
}

/// The account an API key names, if any.
pub async fn account_for_api_key(
    state: &ApiState,
    key: &str,
) -> Result<Option<AccountId>, Problem> {
    Ok(grant_for_api_key(state, key).await?.map(|g| g.account))
}

/// The account of a live session: well signed, unexpired, and its key still the account's.
pub async fn account_for_session(
    state: &ApiState,
    token: &str,
) -> Result<Option<AccountId>, Problem> {
    Ok(grant_for_session(state, token).await?.map(|g| g.account))
}

/// What an API key grants, if it is one.
pub async fn grant_for_api_key(state: &ApiState, key: &str) -> Result<Option<Grant>, Problem> {
    if key.is_empty() || key.len() > MAX_API_KEY_LEN {
        return Ok(None);
    }
    grant_for_key_hash(state, hash_api_key(key)).await
}

/// What a live session grants: its key's account and scope, while the key names the account.
pub async fn grant_for_session(state: &ApiState, token: &str) -> Result<Option<Grant>, Problem> {
    let now_secs = clock::now().millis() / 1000;
    let Some((account, key_hash)) = verify_session(&state.config.session_secret, token, now_secs)
    else {
        return Ok(None);
    };
    // Signed out: the cookie still verifies until its expiry, but the session is over.
    let ended = state
        .store
        .session_ended(&session_hash(token))
        .await
        .map_err(|e| Problem::from_port("account store", &e))?;
    if ended {
        return Ok(None);
    }
    Ok(grant_for_key_hash(state, key_hash)
        .await?
        .filter(|g| g.account == account))
}

/// What an ended session is stored by: the token's SHA-256 (the token itself grants access
/// until it expires).
fn session_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Ends the session of the request's cookie, if it has a valid one, until the cookie would
/// have expired. It counts against the account's request rate, and ending a session again
/// costs a read, not a write.
pub async fn end_session(state: &ApiState, headers: &HeaderMap) -> Result<(), Problem> {
    let Some(token) = session_cookie(headers) else {
        return Ok(());
    };
    let now_secs = clock::now().millis() / 1000;
    let Some((account, _, expiry)) = verified(&state.config.session_secret, token, now_secs) else {
        return Ok(());
    };
    let rate = state.config.request_rate;
    if !state.limiter.admit(account, rate, 1).await {
        return Err(rate_limited(rate));
    }
    let hash = session_hash(token);
    let unavailable = |e: PortError| Problem::from_port("account store", &e);
    if state
        .store
        .session_ended(&hash)
        .await
        .map_err(unavailable)?
    {
        return Ok(());
    }
    state
        .store
        .end_session(&hash, Timestamp(expiry.saturating_mul(1000)))
        .await
        .map_err(unavailable)
}

/// What the key with this hash grants, through the cache.
async fn grant_for_key_hash(state: &ApiState, hash: String) -> Result<Option<Grant>, Problem> {
    if let Some(known) = state.keys.get(&hash) {
        return Ok(known);
    }
    let epoch = state.keys.epoch();
    let found = state
        .store
        .account_for_key(&hash)
        .await
        .map_err(|e| Problem::from_port("account store", &e))?
        .map(|(account, scope)| Grant { account, scope });
    state.keys.put(hash, found, epoch);
    Ok(found)
}

/// Authenticates a request from its headers: the API key if one is given, else the cookie.
pub async fn authenticate(state: &ApiState, headers: &HeaderMap) -> Result<Grant, Problem> {
    let mut keys = headers.get_all(API_KEY_HEADER).iter();
    if let Some(v) = keys.next() {
        if keys.next().is_some() {
            return Err(
                Problem::unauthorized("X-API-Key is given more than once: send one key")
                    .with_field("X-API-Key"),
            );
        }
        let key = v.to_str().unwrap_or_default();
        return grant_for_api_key(state, key)
            .await?
            .ok_or_else(|| Problem::unauthorized("unknown API key").with_field("X-API-Key"));
    }
    if let Some(token) = session_cookie(headers) {
        return grant_for_session(state, token).await?.ok_or_else(|| {
            Problem::unauthorized("the session has expired or is invalid; sign in again")
                .with_field(SESSION_COOKIE)
        });
    }
    Err(
        Problem::unauthorized("authenticate with the X-API-Key header or the oms_session cookie")
            .with_field("X-API-Key"),
    )
}

/// The authenticated account of a request. Use it as an extractor in any router whose state
/// gives an [`ApiState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub account: AccountId,
    /// What the key (or the session's key) may do; routes that change anything take a
    /// [`Trader`] instead.
    pub scope: KeyScope,
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    ApiState: FromRef<S>,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = ApiState::from_ref(state);
        let Grant { account, scope } = authenticate(&state, &parts.headers).await?;
        let rate = state.config.request_rate;
        if !state.limiter.admit(account, rate, 1).await {
            return Err(rate_limited(rate));
        }
        Ok(Caller { account, scope })
    }
}

/// `429 RATE_LIMITED`: the account's requests in this instance are over `rate`.
pub fn rate_limited(rate: super::rate_limit::RequestRate) -> Problem {
    Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        api_codes::RATE_LIMITED,
        format!(
            "more than {} requests per second (bursts of {}) for this account; retry shortly",
            rate.per_second, rate.burst
        ),
    )
    .retry_after(1)
}

/// A [`Caller`] whose key may trade: the extractor of every route that places, changes or
/// cancels orders or sets the kill switch or the dead man's switch. A read-only key gets
/// `403 READ_ONLY_KEY`, after authentication and before anything else is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trader {
    pub account: AccountId,
}

impl<S> FromRequestParts<S> for Trader
where
    S: Send + Sync,
    ApiState: FromRef<S>,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        match caller.scope {
            KeyScope::Trade => Ok(Trader {
                account: caller.account,
            }),
            KeyScope::Read => Err(Problem::new(
                StatusCode::FORBIDDEN,
                api_codes::READ_ONLY_KEY,
                "this API key (or the key the session was opened with) may only read: placing, \
                 amending or cancelling orders and the kill switch need a trading key",
            )
            .with_field("X-API-Key")),
        }
    }
}

/// An operator of the admin API (`/api/admin/...`), authenticated by an `X-Admin-Key` whose
/// SHA-256 is configured ([`super::ApiConfig::operator_key_hashes`]). Operators act on any
/// account; API keys and sessions never reach these routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// The first 12 hex digits of the key's SHA-256: names the operator in logs, and scopes
    /// its idempotency keys, so one operator's key never replays another's response.
    pub id: String,
}

impl Operator {
    /// The scope of this operator's idempotency keys: not a number, so it meets no account's.
    pub fn scope(&self) -> String {
        format!("operator:{}", self.id)
    }
}

impl<S> FromRequestParts<S> for Operator
where
    S: Send + Sync,
    ApiState: FromRef<S>,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = ApiState::from_ref(state);
        let hashes = &state.config.operator_key_hashes;
        if hashes.is_empty() {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                api_codes::ADMIN_DISABLED,
                "the admin API is off: configure admin.keySha256 to enable it",
            ));
        }
        let mut given = parts.headers.get_all(ADMIN_KEY_HEADER).iter();
        let Some(key) = given.next() else {
            return Err(
                Problem::unauthorized("the admin API needs an X-Admin-Key header")
                    .with_field("X-Admin-Key"),
            );
        };
        if given.next().is_some() {
            return Err(
                Problem::unauthorized("X-Admin-Key is given more than once: send one key")
                    .with_field("X-Admin-Key"),
            );
        }
        let key = key.to_str().unwrap_or_default();
        let hash = hash_api_key(key);
        if key.is_empty() || key.len() > MAX_API_KEY_LEN || !hashes.contains(&hash) {
            tracing::warn!(
                method = %parts.method,
                path = %parts.uri.path(),
                "admin request with an unknown key"
            );
            return Err(Problem::unauthorized("unknown admin key").with_field("X-Admin-Key"));
        }
        // The audit trail: which operator key did what. The request id on this line ties it
        // to the handler's own lines.
        let id = hash[..12].to_string();
        tracing::info!(
            operator = %id,
            method = %parts.method,
            path = %parts.uri.path(),
            "admin request"
        );
        Ok(Operator { id })
    }
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

fn sign(secret: &[u8], payload: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(payload.as_bytes());
    mac
}

/// A session token for `account`, opened with the key of hash `key_hash`, valid until
/// `expiry_secs` (Unix seconds); `nonce` (see [`new_session_nonce`]) makes it unique.
pub fn issue_session(
    secret: &[u8],
    account: AccountId,
    key_hash: &str,
    expiry_secs: i64,
    nonce: &str,
) -> String {
    let payload = format!("{account}.{key_hash}.{expiry_secs}.{nonce}");
    let sig = URL_SAFE_NO_PAD.encode(sign(secret, &payload).finalize().into_bytes());
    format!("{payload}.{sig}")
}

/// The account and key hash of a well-signed, unexpired token. Whether the key still names
/// the account is [`account_for_session`]'s to check.
pub fn verify_session(secret: &[u8], token: &str, now_secs: i64) -> Option<(AccountId, String)> {
    verified(secret, token, now_secs).map(|(account, key_hash, _)| (account, key_hash))
}

/// The account, key hash and expiry (Unix seconds) of a well-signed, unexpired token.
fn verified(secret: &[u8], token: &str, now_secs: i64) -> Option<(AccountId, String, i64)> {
    let (payload, sig) = token.rsplit_once('.')?;
    let mut parts = payload.split('.');
    let (account, key_hash, expiry) = (parts.next()?, parts.next()?, parts.next()?);
    // The nonce only makes the token unique; any signed value will do.
    parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let account: u64 = account.parse().ok()?;
    let expiry: i64 = expiry.parse().ok()?;
    let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
    // Constant-time comparison.
    sign(secret, payload).verify_slice(&sig).ok()?;
    (expiry > now_secs).then(|| (AccountId(account), key_hash.to_string(), expiry))
}

/// `Set-Cookie` value that installs a session.
pub fn session_set_cookie(token: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` value that removes the session.
pub fn session_clear_cookie(secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const SECRET: &[u8] = b"test-secret";

    #[test]
    fn a_lookup_that_began_before_a_revocation_does_not_cache_its_answer() {
        let cache = KeyCache::new(Duration::from_secs(30));
        let grant = Grant {
            account: AccountId(7),
            scope: KeyScope::Read,
        };
        let before = cache.epoch();
        cache.forget("revoked-hash");
        cache.put("revoked-hash".into(), Some(grant), before);
        assert_eq!(cache.get("revoked-hash"), None);
        cache.put("revoked-hash".into(), Some(grant), cache.epoch());
        assert_eq!(cache.get("revoked-hash"), Some(Some(grant)));
        cache.forget("revoked-hash");
        assert_eq!(cache.get("revoked-hash"), None);
    }

    #[test]
    fn an_unknown_key_is_remembered_briefly() {
        let cache = KeyCache::new(Duration::from_secs(30));
        cache.put("unknown-hash".into(), None, cache.epoch());
        assert_eq!(
            cache.get("unknown-hash"),
            Some(None),
            "no second read of the store"
        );
        // Aged past its shorter time to live, it is asked for again.
        let aged = Instant::now() - UNKNOWN_KEY_TTL;
        *cache
            .unknown
            .lock()
            .unwrap()
            .get_mut("unknown-hash")
            .unwrap() = aged;
        assert_eq!(cache.get("unknown-hash"), None);
        // A found key of the same age is still fresh.
        let grant = Grant {
            account: AccountId(7),
            scope: KeyScope::Trade,
        };
        cache.put("found-hash".into(), Some(grant), cache.epoch());
        cache.found.lock().unwrap().get_mut("found-hash").unwrap().1 = aged;
        assert_eq!(cache.get("found-hash"), Some(Some(grant)));
        // A flood of made-up keys does not push it out.
        for i in 0..=KEY_CACHE_MAX {
            cache.put(format!("made-up-{i}"), None, cache.epoch());
        }
        assert_eq!(cache.get("found-hash"), Some(Some(grant)));
    }

    #[test]
    fn operator_and_trading_keys_look_different() {
        let (op, trading) = (new_admin_key().unwrap(), new_api_key().unwrap());
        assert!(op.starts_with("oms_admin_") && op.len() == 74, "{op}");
        assert!(trading.starts_with("oms_") && !trading.starts_with("oms_admin_"));
        assert_ne!(new_admin_key().unwrap(), op);
    }

    #[test]
    fn api_key_hash_is_sha256_hex() {
        assert_eq!(
            hash_api_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn session_round_trip_and_expiry() {
        let t = issue_session(SECRET, AccountId(7), "abc", 1000, "n1");
        assert_ne!(t, issue_session(SECRET, AccountId(7), "abc", 1000, "n2"));
        assert_eq!(
            verify_session(SECRET, &t, 999),
            Some((AccountId(7), "abc".to_string()))
        );
        assert_eq!(verify_session(SECRET, &t, 1000), None, "expired");
        assert_eq!(verify_session(b"other", &t, 0), None, "wrong secret");
    }

    #[test]
    fn tampered_sessions_are_refused() {
        let t = issue_session(SECRET, AccountId(7), "abc", 1000, "n1");
        let (_, sig) = t.rsplit_once('.').unwrap();
        assert!(verify_session(SECRET, &format!("7.abc.1000.n1.{sig}"), 0).is_some());
        for forged in [
            "8.abc.1000.n1",
            "7.abd.1000.n1",
            "7.abc.99999.n1",
            "7.abc.1000.n2",
            "7.abc.1000.n1.x",
            "7.abc.1000",
        ] {
            assert_eq!(
                verify_session(SECRET, &format!("{forged}.{sig}"), 0),
                None,
                "{forged}"
            );
        }
        // Tokens of earlier forms, without the key or the nonce, are no longer sessions.
        let no_nonce = format!(
            "7.abc.1000.{}",
            URL_SAFE_NO_PAD.encode(sign(SECRET, "7.abc.1000").finalize().into_bytes())
        );
        assert_eq!(verify_session(SECRET, &no_nonce, 0), None);
        // Nor is a well-signed token with a part too many.
        let extra = format!(
            "7.abc.1000.n1.x.{}",
            URL_SAFE_NO_PAD.encode(sign(SECRET, "7.abc.1000.n1.x").finalize().into_bytes())
        );
        assert_eq!(verify_session(SECRET, &extra, 0), None);
        let old = format!(
            "7.1000.{}",
            URL_SAFE_NO_PAD.encode(sign(SECRET, "7.1000").finalize().into_bytes())
        );
        assert_eq!(verify_session(SECRET, &old, 0), None);
        assert_eq!(verify_session(SECRET, "7.1000", 0), None);
        assert_eq!(verify_session(SECRET, "garbage", 0), None);
        assert_eq!(verify_session(SECRET, "", 0), None);
    }

    #[test]
    fn cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            "cookie",
            HeaderValue::from_static("a=1; oms_session=tok.en; b=2"),
        );
        assert_eq!(session_cookie(&h), Some("tok.en"));
        let set = session_set_cookie("x", Duration::from_secs(43_200), false);
        assert_eq!(
            set,
            "oms_session=x; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200"
        );
        assert!(session_clear_cookie(true).ends_with("Max-Age=0; Secure"));
    }
}
