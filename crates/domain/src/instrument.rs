//! Instruments: what can be traded and the filters every order must pass.

use crate::ids::{Asset, Symbol};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TradingStatus {
    Trading,
    /// Only cancels are accepted; new orders and amends are rejected.
    CancelOnly,
    Halted,
}

impl TradingStatus {
    pub const ALL: [TradingStatus; 3] = [
        TradingStatus::Trading,
        TradingStatus::CancelOnly,
        TradingStatus::Halted,
    ];

    /// The name on the wire and in the stores (`CANCEL_ONLY`).
    pub fn as_str(self) -> &'static str {
        match self {
            TradingStatus::Trading => "TRADING",
            TradingStatus::CancelOnly => "CANCEL_ONLY",
            TradingStatus::Halted => "HALTED",
        }
    }

    pub fn parse(name: &str) -> Option<TradingStatus> {
        TradingStatus::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// An operator's trading status for an instrument, in force over the configured `status`
/// until a setting with a higher `change` replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusSet {
    pub status: TradingStatus,
    pub change: u64,
}

impl StatusSet {
    /// Keeps the newer of `held` and this setting; true when this one is kept. A copy of the
    /// setting held (the same `change`) is kept too, which changes nothing.
    pub fn replace(self, held: &mut Option<StatusSet>) -> bool {
        if held.is_some_and(|h| h.change > self.change) {
            return false;
        }
        *held = Some(self);
        true
    }

    /// The status in force: the operator's when one was set, else the configured one.
    pub fn effective(held: Option<StatusSet>, configured: TradingStatus) -> TradingStatus {
        held.map_or(configured, |h| h.status)
    }
}

/// What to do when an incoming order would trade against a resting order of the same account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SelfTradePrevention {
    /// Cancel the resting order and keep matching the incoming one.
    #[default]
    CancelResting,
    /// Cancel the rest of the incoming order.
    CancelIncoming,
    /// Cancel both.
    CancelBoth,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Instrument {
    pub symbol: Symbol,
    pub base: Asset,
    pub quote: Asset,
    pub tick_size: Decimal,
    pub step_size: Decimal,
    pub min_quantity: Decimal,
    pub max_quantity: Decimal,
    /// price × quantity must be at least this, in quote.
    pub min_notional: Decimal,
    pub status: TradingStatus,
    /// Fee rates as fractions of the quote notional (0.001 = 10 bps).
    pub maker_fee: Decimal,
    pub taker_fee: Decimal,
    /// Limit prices must lie within reference × (1 ± band); market orders fill only inside it.
    pub price_band: Decimal,
    #[serde(default)]
    pub self_trade_prevention: SelfTradePrevention,
}

impl Instrument {
    /// A spot instrument with common defaults: ±10% band, 10/20 bps maker/taker.
    pub fn spot(symbol: &str, tick_size: Decimal, step_size: Decimal) -> Self {
        let (base, quote) = symbol.split_once('/').unwrap_or((symbol, ""));
        Instrument {
            symbol: Symbol::new(symbol),
            base: Asset::new(base),
            quote: Asset::new(quote),
            tick_size,
            step_size,
            min_quantity: step_size,
            max_quantity: Decimal::from(1_000_000),
            min_notional: Decimal::ZERO,
            status: TradingStatus::Trading,
            maker_fee: Decimal::new(1, 3),
            taker_fee: Decimal::new(2, 3),
            price_band: Decimal::new(1, 1),
            self_trade_prevention: SelfTradePrevention::CancelResting,
        }
    }

    pub fn is_on_tick(&self, price: Decimal) -> bool {
        is_multiple(price, self.tick_size)
    }

    pub fn is_on_step(&self, quantity: Decimal) -> bool {
        is_multiple(quantity, self.step_size)
    }

    /// The largest fee rate an order can pay, used to reserve buying power up front.
    pub fn max_fee_rate(&self) -> Decimal {
        self.maker_fee.max(self.taker_fee)
    }
}

fn is_multiple(value: Decimal, unit: Decimal) -> bool {
    !unit.is_zero() && (value % unit).is_zero()
}

/// The four instruments `oms serve` starts with unless configured otherwise.
pub fn default_instruments() -> Vec<Instrument> {
    let d = |m: i64, s: u32| Decimal::new(m, s);
    let mut btc = Instrument::spot("BTC/USD", d(1, 2), d(1, 5));
    btc.min_notional = d(1, 0);
    btc.max_quantity = d(1000, 0);
    let mut eth = Instrument::spot("ETH/USD", d(1, 2), d(1, 4));
    eth.min_notional = d(1, 0);
    eth.max_quantity = d(10_000, 0);
    let mut ethbtc = Instrument::spot("ETH/BTC", d(1, 5), d(1, 4));
    ethbtc.min_notional = d(1, 4);
    ethbtc.max_quantity = d(10_000, 0);
    let mut sol = Instrument::spot("SOL/USD", d(1, 3), d(1, 2));
    sol.min_notional = d(1, 0);
    sol.max_quantity = d(1_000_000, 0);
    vec![btc, eth, ethbtc, sol]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trading_status_names_are_those_of_serde() {
        for s in TradingStatus::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert_eq!(TradingStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(TradingStatus::parse("halted"), None);
    }

    #[test]
    fn tick_and_step_are_exact() {
        let btc = &default_instruments()[0];
        assert!(btc.is_on_tick(Decimal::new(4500001, 2)));
        assert!(!btc.is_on_tick(Decimal::new(45000001, 3)));
        assert!(btc.is_on_step(Decimal::new(1, 1)));
        assert!(!btc.is_on_step(Decimal::new(1, 6)));
    }

    #[test]
    fn spot_splits_base_and_quote() {
        let i = Instrument::spot("ETH/BTC", Decimal::ONE, Decimal::ONE);
        assert_eq!(i.base.as_str(), "ETH");
        assert_eq!(i.quote.as_str(), "BTC");
    }
}
