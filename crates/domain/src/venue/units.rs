//! Exact conversion between decimal prices/quantities and the book's integer ticks and lots.
//!
//! The book works in whole multiples of the instrument's tick and step so that matching is
//! integer arithmetic; every conversion here either is exact or says it is not. Nothing rounds
//! silently: rounding exists only for bounds (a protection price), where the caller picks the
//! direction that stays inside the bound.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

/// `value / unit` when `value` is an exact multiple of `unit` that fits an `i64`.
pub fn to_units(value: Decimal, unit: Decimal) -> Option<i64> {
    if unit <= Decimal::ZERO {
        return None;
    }
    // Fast path on the raw mantissas: value = m / 10^s, unit = u / 10^t, so
    // value / unit = m · 10^t / (u · 10^s). Overflow falls back to decimal arithmetic.
    let (m, s) = (value.mantissa(), value.scale());
    let (u, t) = (unit.mantissa(), unit.scale());
    let exact = if t >= s {
        pow10(t - s)
            .and_then(|p| m.checked_mul(p))
            .map(|num| (num, u))
    } else {
        pow10(s - t)
            .and_then(|p| u.checked_mul(p))
            .map(|den| (m, den))
    };
    match exact {
        // 64-bit division is several times cheaper than 128-bit; prices and quantities
        // almost always fit.
        Some((num, den)) => match (i64::try_from(num), i64::try_from(den)) {
            (Ok(num), Ok(den)) => (num % den == 0).then_some(num / den),
            _ => {
                if num % den != 0 {
                    return None;
                }
                i64::try_from(num / den).ok()
            }
        },
        None => {
            if !value.checked_rem(unit)?.is_zero() {
                return None;
            }
            value.checked_div(unit)?.to_i64()
        }
    }
}

/// The largest whole number of units not above `value` (saturating at the `i64` range).
pub fn floor_units(value: Decimal, unit: Decimal) -> i64 {
    saturate(value.checked_div(unit).map(|q| q.floor()), value)
}

/// The smallest whole number of units not below `value` (saturating at the `i64` range).
pub fn ceil_units(value: Decimal, unit: Decimal) -> i64 {
    saturate(value.checked_div(unit).map(|q| q.ceil()), value)
}

/// `units × unit`, exactly.
pub fn from_units(units: i64, unit: Decimal) -> Decimal {
    Decimal::from(units) * unit
}

/// A unit (tick or step) kept as mantissa and scale, so that turning a count of units back
/// into a decimal is one integer multiplication. The result equals `Decimal::from(n) * unit`,
/// scale included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    unit: Decimal,
    mantissa: i64,
    scale: u32,
}

impl Unit {
    pub fn new(unit: Decimal) -> Self {
        Unit {
            unit,
            mantissa: i64::try_from(unit.mantissa()).unwrap_or(0),
            scale: unit.scale(),
        }
    }

    pub fn decimal(&self) -> Decimal {
        self.unit
    }

    #[inline]
    pub fn times(&self, n: i64) -> Decimal {
        if self.mantissa != 0 {
            if let Some(m) = n.checked_mul(self.mantissa) {
                return Decimal::from_i128_with_scale(i128::from(m), self.scale);
            }
        }
        Decimal::from(n) * self.unit
    }

    #[inline]
    pub fn times_u64(&self, n: u64) -> Decimal {
        match i64::try_from(n) {
            Ok(n) => self.times(n),
            Err(_) => Decimal::from(n) * self.unit,
        }
    }
}

/// Units are positive, so an out-of-range quotient saturates on the side of `value`'s sign.
fn saturate(quotient: Option<Decimal>, value: Decimal) -> i64 {
    quotient
        .and_then(|q| q.to_i64())
        .unwrap_or(if value.is_sign_negative() {
            i64::MIN
        } else {
            i64::MAX
        })
}

fn pow10(e: u32) -> Option<i128> {
    10i128.checked_pow(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(m: i64, s: u32) -> Decimal {
        Decimal::new(m, s)
    }

    #[test]
    fn exact_multiples_convert_both_ways() {
        assert_eq!(to_units(d(4500001, 2), d(1, 2)), Some(4500001));
        assert_eq!(to_units(d(45000, 0), d(1, 2)), Some(4500000));
        assert_eq!(to_units(d(15, 1), d(5, 1)), Some(3));
        assert_eq!(to_units(d(10, 0), d(25, 1)), Some(4));
        assert_eq!(from_units(4500001, d(1, 2)), d(4500001, 2));
    }

    #[test]
    fn off_grid_values_are_refused_not_rounded() {
        assert_eq!(to_units(d(45000001, 3), d(1, 2)), None);
        assert_eq!(to_units(d(11, 0), d(25, 1)), None);
        assert_eq!(to_units(d(1, 0), Decimal::ZERO), None);
    }

    #[test]
    fn bounds_round_towards_the_inside() {
        assert_eq!(floor_units(d(10055, 3), d(1, 2)), 1005);
        assert_eq!(ceil_units(d(10055, 3), d(1, 2)), 1006);
        assert_eq!(floor_units(d(1005, 2), d(1, 2)), 1005);
    }

    #[test]
    fn a_unit_multiplies_like_decimal_multiplication() {
        for unit in [d(1, 2), d(5, 1), d(25, 0), d(1, 8), d(1, 0)] {
            let u = Unit::new(unit);
            for n in [0i64, 1, 7, 4_500_001, -3, i64::MAX] {
                let want = Decimal::from(n).checked_mul(unit);
                if let Some(want) = want {
                    let got = u.times(n);
                    assert_eq!(got, want);
                    // Decimal multiplication drops the scale of a zero product; a unit keeps
                    // it, so that a zero quantity still reads at the instrument's precision.
                    assert_eq!(
                        got.scale(),
                        if n == 0 { unit.scale() } else { want.scale() }
                    );
                }
            }
        }
    }

    #[test]
    fn huge_values_fall_back_without_overflow() {
        let big = Decimal::from_i128_with_scale(79_228_162_514_264_337_593_543_950_335, 0);
        assert_eq!(to_units(big, d(1, 28)), None);
        assert_eq!(to_units(d(5, 0), d(1, 27)), None); // 5e27 does not fit an i64
    }
}
