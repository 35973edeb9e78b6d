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
        self.last.or_else(|| match (self.best_bid, self.best_ask) {
            (Some(b), Some(a)) => Some((b + a) / Decimal::TWO),
            _ => None,
        })
    }
}

/// Prices allowed around a reference: `reference × (1 ± band)`, bounds included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
pub fn trading(status: TradingStatus) -> Result<(), RejectReason> {
    match status {
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
    } else if !is_multiple(q, inst.step_size) {
        Err(RejectReason::QuantityOffStep)
    } else {
        Ok(())
    }
}

pub fn price(inst: &Instrument, p: Decimal) -> Result<(), RejectReason> {
    if p <= Decimal::ZERO {
        // No band admits a price of zero or less, reference or not.
        Err(RejectReason::PriceOutOfBand)
    } else if !is_multiple(p, inst.tick_size) {
        Err(RejectReason::PriceOffTick)
    } else {
        Ok(())
    }
}

/// Whether `value` is a whole multiple of `unit` (what `Instrument::is_on_tick` and
/// `is_on_step` answer), on the raw mantissas when they fit an `i128`: decimal remainder is
/// several times slower and this runs on every order.
pub fn is_multiple(value: Decimal, unit: Decimal) -> bool {
    if unit <= Decimal::ZERO {
        return false;
    }
    // value = m / 10^s and unit = u / 10^t, so value / unit = m · 10^t / (u · 10^s).
    let (m, s) = (value.mantissa(), value.scale());
    let (u, t) = (unit.mantissa(), unit.scale());
    let fast = if t >= s {
        10i128
            .checked_pow(t - s)
            .and_then(|p| m.checked_mul(p))
            .map(|n| n % u == 0)
    } else {
        10i128
            .checked_pow(s - t)
            .and_then(|p| u.checked_mul(p))
            .map(|den| m % den == 0)
    };
    fast.unwrap_or_else(|| (value % unit).is_zero())
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
    fn multiples_agree_with_decimal_remainder() {
        let units = [d(1, 2), d(5, 1), d(25, 1), d(1, 8), d(3, 0), d(1, 0)];
        let values = [
            d(4500001, 2),
            d(45000001, 3),
            d(15, 1),
            d(10, 0),
            d(11, 0),
            d(-25, 1),
            d(0, 0),
            d(123456789, 8),
            Decimal::MAX,
            Decimal::from_i128_with_scale(79_228_162_514_264_337_593_543_950_335, 28),
        ];
        for u in units {
            for v in values {
                assert_eq!(is_multiple(v, u), (v % u).is_zero(), "{v} on {u}");
            }
        }
        assert!(!is_multiple(d(1, 0), Decimal::ZERO));
    }

    #[test]
    fn rounding_to_tick_stays_inside() {
        assert_eq!(floor_to_tick(d(10055, 3), d(1, 2)), d(1005, 2));
        assert_eq!(ceil_to_tick(d(10055, 3), d(1, 2)), d(1006, 2));
        assert_eq!(floor_to_tick(d(1005, 2), d(1, 2)), d(1005, 2));
        assert_eq!(ceil_to_tick(d(1005, 2), d(5, 2)), d(1005, 2));
    }
}
