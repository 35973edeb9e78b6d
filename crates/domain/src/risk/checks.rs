//! The instrument filters and the price band: pure functions, one reject code each.

use crate::instrument::{Instrument, TradingStatus};
use crate::order::RejectReason;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// What the engine knows of a symbol's market, for price bands and market-order protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarketRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_bid: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_ask: Option<Decimal>,
}

impl MarketRef {
    /// The last trade price, else the mid of a two-sided book, else nothing.
    pub fn reference(&self) -> Option<Decimal> {
        self.last.or(match (self.best_bid, self.best_ask) {
            (Some(b), Some(a)) => Some((b + a) / Decimal::TWO),
            _ => None,
        })
    }
}

/// Prices allowed around a reference: `reference × (1 ± band)`, bounds included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Band {
    pub low: Decimal,
    pub high: Decimal,
}

impl Band {
    pub fn around(reference: Decimal, band: Decimal) -> Band {
        Band {
            low: (reference * (Decimal::ONE - band)).max(Decimal::ZERO),
            high: reference * (Decimal::ONE + band),
        }
    }

    pub fn check(&self, price: Decimal) -> Result<(), RejectReason> {
        if price < self.low || price > self.high {
            Err(RejectReason::PriceOutOfBand)
        } else {
            Ok(())
        }
    }
}

/// New orders and amends need a trading instrument.
pub fn trading(inst: &Instrument) -> Result<(), RejectReason> {
    match inst.status {
        TradingStatus::Trading => Ok(()),
        TradingStatus::CancelOnly => Err(RejectReason::InstrumentCancelOnly),
        TradingStatus::Halted => Err(RejectReason::InstrumentHalted),
    }
}

pub fn quantity(inst: &Instrument, q: Decimal) -> Result<(), RejectReason> {
    if q <= Decimal::ZERO || q < inst.min_quantity {
        Err(RejectReason::QuantityBelowMin)
    } else if q > inst.max_quantity {
        Err(RejectReason::QuantityAboveMax)
    } else if !inst.is_on_step(q) {
        Err(RejectReason::QuantityOffStep)
    } else {
        Ok(())
    }
}

pub fn price(inst: &Instrument, p: Decimal) -> Result<(), RejectReason> {
    if p <= Decimal::ZERO {
        // No band admits a price of zero or less, reference or not.
        Err(RejectReason::PriceOutOfBand)
    } else if !inst.is_on_tick(p) {
        Err(RejectReason::PriceOffTick)
    } else {
        Ok(())
    }
}

/// `price × quantity` inside `[min_notional, max]`; an overflow is above any maximum.
pub fn notional(
    inst: &Instrument,
    price: Decimal,
    quantity: Decimal,
    max: Decimal,
) -> Result<Decimal, RejectReason> {
    let n = price
        .checked_mul(quantity)
        .ok_or(RejectReason::NotionalAboveMax)?;
    if n < inst.min_notional {
        Err(RejectReason::NotionalBelowMin)
    } else if n > max {
        Err(RejectReason::NotionalAboveMax)
    } else {
        Ok(n)
    }
}

/// The largest tick price not above `value`.
pub fn floor_to_tick(value: Decimal, tick: Decimal) -> Decimal {
    if tick <= Decimal::ZERO {
        return value;
    }
    (value / tick).floor() * tick
}

/// The smallest tick price not below `value`.
pub fn ceil_to_tick(value: Decimal, tick: Decimal) -> Decimal {
    if tick <= Decimal::ZERO {
        return value;
    }
    (value / tick).ceil() * tick
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(m: i64, s: u32) -> Decimal {
        Decimal::new(m, s)
    }

    #[test]
    fn reference_prefers_last_then_mid() {
        let mut m = MarketRef::default();
        assert_eq!(m.reference(), None);
        m.best_bid = Some(d(100, 0));
        assert_eq!(m.reference(), None, "one side is no mid");
        m.best_ask = Some(d(101, 0));
        assert_eq!(m.reference(), Some(d(1005, 1)));
        m.last = Some(d(99, 0));
        assert_eq!(m.reference(), Some(d(99, 0)));
    }

    #[test]
    fn band_bounds_are_inclusive() {
        let b = Band::around(d(100, 0), d(1, 1));
        assert_eq!(b.check(d(90, 0)), Ok(()));
        assert_eq!(b.check(d(110, 0)), Ok(()));
        assert_eq!(b.check(d(8999, 2)), Err(RejectReason::PriceOutOfBand));
        assert_eq!(b.check(d(11001, 2)), Err(RejectReason::PriceOutOfBand));
    }

    #[test]
    fn rounding_to_tick_stays_inside() {
        assert_eq!(floor_to_tick(d(10055, 3), d(1, 2)), d(1005, 2));
        assert_eq!(ceil_to_tick(d(10055, 3), d(1, 2)), d(1006, 2));
        assert_eq!(floor_to_tick(d(1005, 2), d(1, 2)), d(1005, 2));
        assert_eq!(ceil_to_tick(d(1005, 2), d(5, 2)), d(1005, 2));
    }
}
