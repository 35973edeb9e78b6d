//! Request limits shared by every instance of the API: an account's requests per second,
//! counted wherever they land, so that scaling ingestion out does not multiply the limit.

use crate::PortResult;
use async_trait::async_trait;
use oms_domain::ids::AccountId;

/// An allowance of `per_second` requests on average and `burst` at once (both above 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub per_second: u32,
    pub burst: u32,
}

#[async_trait]
pub trait RequestLimits: Send + Sync {
    /// Takes `n` requests' worth of `account`'s allowance, or nothing: `false` when that
    /// much is not left. Every caller sharing the store draws on one allowance per account.
    async fn admit(&self, account: AccountId, n: u32, allowance: Allowance) -> PortResult<bool>;
}
