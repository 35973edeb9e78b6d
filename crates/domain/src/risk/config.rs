//! Risk limits: defaults for every account, with overrides per quote asset and per account.

use crate::ids::{AccountId, Asset};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RiskConfig {
    /// Live orders one account may have at once.
    pub max_open_orders: u32,
    /// Largest price × quantity of one order, in the instrument's quote asset.
    pub max_order_notional: Decimal,
    /// Sustained new-order rate per account (token bucket refill per second).
    pub orders_per_second: u32,
    /// New orders an idle account may send at once (token bucket size).
    pub burst: u32,
    /// Notional caps for instruments quoted in a given asset: a cap in USD means nothing for
    /// an ETH/BTC order, whose notional is in BTC.
    pub max_order_notional_by_quote: BTreeMap<Asset, Decimal>,
    /// Limits that differ for single accounts.
    pub accounts: BTreeMap<AccountId, AccountLimits>,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            max_open_orders: 1_000,
            max_order_notional: Decimal::from(10_000_000),
            orders_per_second: 100,
            burst: 200,
            max_order_notional_by_quote: BTreeMap::new(),
            accounts: BTreeMap::new(),
        }
    }
}

/// One account's overrides; `None` keeps the default.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AccountLimits {
    pub max_open_orders: Option<u32>,
    /// Applies to every quote asset.
    pub max_order_notional: Option<Decimal>,
    pub orders_per_second: Option<u32>,
    pub burst: Option<u32>,
}

/// The limits in force for one account and quote asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub max_open_orders: u32,
    pub max_order_notional: Decimal,
    pub orders_per_second: u32,
    pub burst: u32,
}

impl RiskConfig {
    pub(crate) fn limits(&self, account: AccountId, quote: Option<&Asset>) -> Limits {
        let over = self.accounts.get(&account);
        let by_quote = quote.and_then(|q| self.max_order_notional_by_quote.get(q));
        Limits {
            max_open_orders: over
                .and_then(|o| o.max_open_orders)
                .unwrap_or(self.max_open_orders),
            max_order_notional: over
                .and_then(|o| o.max_order_notional)
                .or(by_quote.copied())
                .unwrap_or(self.max_order_notional),
            orders_per_second: over
                .and_then(|o| o.orders_per_second)
                .unwrap_or(self.orders_per_second),
            burst: over.and_then(|o| o.burst).unwrap_or(self.burst),
        }
    }
}
