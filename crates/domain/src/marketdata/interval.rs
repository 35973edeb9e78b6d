//! Candle intervals, aligned to UTC epoch milliseconds.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Interval {
    #[serde(rename = "1s")]
    S1,
    #[serde(rename = "1m")]
    M1,
    #[serde(rename = "5m")]
    M5,
    #[serde(rename = "15m")]
    M15,
    #[serde(rename = "1h")]
    H1,
    #[serde(rename = "1d")]
    D1,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown interval {0:?}; use one of 1s, 1m, 5m, 15m, 1h, 1d")]
pub struct ParseIntervalError(pub String);

impl Interval {
    /// Finest first; each one divides the next, so coarser candles merge from finer ones.
    pub const ALL: [Interval; 6] = [
        Interval::S1,
        Interval::M1,
        Interval::M5,
        Interval::M15,
        Interval::H1,
        Interval::D1,
    ];

    pub const fn millis(self) -> i64 {
        match self {
            Interval::S1 => 1_000,
            Interval::M1 => 60_000,
            Interval::M5 => 300_000,
            Interval::M15 => 900_000,
            Interval::H1 => 3_600_000,
            Interval::D1 => 86_400_000,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Interval::S1 => "1s",
            Interval::M1 => "1m",
            Interval::M5 => "5m",
            Interval::M15 => "15m",
            Interval::H1 => "1h",
            Interval::D1 => "1d",
        }
    }

    /// Position in [`Interval::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The open time of the bucket holding `at_ms`. Floors towards minus infinity, so times
    /// before 1970 still land in the bucket that contains them.
    pub const fn bucket(self, at_ms: i64) -> i64 {
        at_ms.div_euclid(self.millis()) * self.millis()
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Interval {
    type Err = ParseIntervalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Interval::ALL
            .into_iter()
            .find(|i| i.as_str() == s)
            .ok_or_else(|| ParseIntervalError(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_floor_to_utc_boundaries() {
        // 2025-11-25T08:00:00.000Z
        let t = 1_764_057_600_000;
        assert_eq!(Interval::D1.bucket(t + 1), 1_764_028_800_000);
        assert_eq!(Interval::H1.bucket(t + 3_599_999), t);
        assert_eq!(Interval::M15.bucket(t + 900_000), t + 900_000);
        assert_eq!(Interval::S1.bucket(-1), -1_000);
    }

    #[test]
    fn parses_and_prints_the_contract_names() {
        for i in Interval::ALL {
            assert_eq!(i.as_str().parse::<Interval>().unwrap(), i);
            assert_eq!(serde_json::to_string(&i).unwrap(), format!("\"{i}\""));
        }
        assert!("2m".parse::<Interval>().is_err());
        for w in Interval::ALL.windows(2) {
            assert_eq!(w[1].millis() % w[0].millis(), 0);
        }
    }
}
