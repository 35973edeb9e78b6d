//! How the WebSocket learns who a client is. The HTTP API owns API keys and sessions; `oms serve`
//! wires this hook to it, so market data never sees a key's hash or a session's secret.

use crate::api::ApiState;
use async_trait::async_trait;
use oms_domain::ids::AccountId;

/// The session cookie the API sets (`POST /api/session`); the upgrade request carries it.
pub const SESSION_COOKIE: &str = "oms_session";

/// Keys and sessions could not be checked (the account store is unreachable): not the same as
/// an unknown key, which would end a client's private access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("accounts cannot be checked right now")]
pub struct AccountsUnavailable;

/// Who a credential names: an account, no one (`Ok(None)`), or unknown for now.
pub type Resolved = Result<Option<AccountId>, AccountsUnavailable>;

#[async_trait]
pub trait AccountResolver: Send + Sync + 'static {
    /// The account an API key names, if the key is valid.
    async fn account_for_api_key(&self, key: &str) -> Resolved;
    /// The account of a live session, from the `oms_session` cookie's value.
    async fn account_for_session_cookie(&self, cookie_value: &str) -> Resolved;
}

/// Knows no one: the private `orders` channel is unavailable. For market-data-only servers.
pub struct NoAccounts;

#[async_trait]
impl AccountResolver for NoAccounts {
    async fn account_for_api_key(&self, _key: &str) -> Resolved {
        Ok(None)
    }
    async fn account_for_session_cookie(&self, _cookie_value: &str) -> Resolved {
        Ok(None)
    }
}

/// Resolves keys and sessions exactly as the HTTP API does (same key cache, same signed
/// session tokens), so `/ws` and `/api` agree on who a caller is.
#[derive(Clone)]
pub struct ApiAccounts(pub ApiState);

fn unavailable(p: crate::api::Problem) -> AccountsUnavailable {
    tracing::warn!(problem = ?p, "a WebSocket client's credential could not be checked");
    AccountsUnavailable
}

#[async_trait]
impl AccountResolver for ApiAccounts {
    async fn account_for_api_key(&self, key: &str) -> Resolved {
        crate::api::auth::account_for_api_key(&self.0, key)
            .await
            .map_err(unavailable)
    }
    async fn account_for_session_cookie(&self, cookie_value: &str) -> Resolved {
        crate::api::auth::account_for_session(&self.0, cookie_value)
            .await
            .map_err(unavailable)
    }
}

/// The value of cookie `name` in a `Cookie` header (`a=1; b=2`).
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then(|| v.trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_session_cookie() {
        assert_eq!(
            cookie_value("a=1; oms_session=xyz; b=2", SESSION_COOKIE),
            Some("xyz")
        );
        assert_eq!(cookie_value("oms_session=\"q\"", SESSION_COOKIE), Some("q"));
        assert_eq!(cookie_value("xoms_session=1", SESSION_COOKIE), None);
        assert_eq!(cookie_value("", SESSION_COOKIE), None);
    }
}
