//! [`Fixed6`]: a non-negative decimal carried as integer millionths, [`Probability`]: a
//! probability carried as an integer count of 10^-15, and [`Decimal9`]: a signed decimal
//! carried as integer billionths (the input transform's centres and scales).
//!
//! Genesis hyper-parameters such as the learning rate are written by people as decimals
//! (`learning_rate = 0.05`) but enter the chain id as integers, so no float formatting or
//! rounding mode can ever split two nodes. Human-readable formats read and write the decimal;
//! the binary encoding carries the `u64` count of millionths.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative decimal with six fractional digits, stored as millionths.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fixed6(pub u64);

impl Fixed6 {
    /// Millionths in one unit.
    pub const SCALE: u64 = 1_000_000;

    /// Converts from a float, rounding to the nearest millionth. Refuses negatives, NaN and
    /// values beyond 10^12.
    pub fn from_f64(v: f64) -> Result<Self, String> {
        if !v.is_finite() || !(0.0..=1e12).contains(&v) {
            return Err(format!("{v} is not a non-negative decimal below 10^12"));
        }
        Ok(Fixed6((v * Self::SCALE as f64).round() as u64))
    }

    /// The value as a float (for local training only).
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / Self::SCALE as f64
    }
}

impl fmt::Debug for Fixed6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Fixed6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let int = self.0 / Self::SCALE;
        let frac = self.0 % Self::SCALE;
        if frac == 0 {
            write!(f, "{int}")
        } else {
            let s = format!("{frac:06}");
            write!(f, "{int}.{}", s.trim_end_matches('0'))
        }
    }
}

impl Serialize for Fixed6 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_f64(self.to_f64())
        } else {
            s.serialize_u64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Fixed6 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            #[derive(Deserialize)]
            #[serde(untagged)]
            enum Num {
                I(u64),
                F(f64),
            }
            match Num::deserialize(d)? {
                Num::I(i) => i
                    .checked_mul(Self::SCALE)
                    .map(Fixed6)
                    .ok_or_else(|| serde::de::Error::custom("value too large")),
                Num::F(f) => Fixed6::from_f64(f).map_err(serde::de::Error::custom),
            }
        } else {
            Ok(Fixed6(u64::deserialize(d)?))
        }
    }
}

/// A probability in `[0, 1]`, carried as an integer count of 10^-15 ("femto").
///
/// Made for `δ` of `(ε, δ)`-differential privacy, which people write as `1e-5` or `1e-9` and
/// which [`Fixed6`] cannot hold. Human-readable formats read and write a float; every count
/// up to 10^15 survives the float round trip exactly (the count is below 2^53, and dividing
/// then multiplying by 10^15 moves it by less than half a unit before rounding), so a
/// genesis written and read back keeps its chain id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Probability(pub u64);

impl Probability {
    /// Counts in one (probability 1).
    pub const SCALE: u64 = 1_000_000_000_000_000;

    /// Converts from a float, rounding to the nearest 10^-15. Refuses NaN and values outside
    /// `[0, 1]`.
    pub fn from_f64(v: f64) -> Result<Self, String> {
        if !(0.0..=1.0).contains(&v) {
            return Err(format!("{v} is not a probability in [0, 1]"));
        }
        Ok(Probability((v * Self::SCALE as f64).round() as u64))
    }

    /// The value as a float.
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / Self::SCALE as f64
    }
}

impl fmt::Debug for Probability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Probability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:e}", self.to_f64())
    }
}

impl Serialize for Probability {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_f64(self.to_f64())
        } else {
            s.serialize_u64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Probability {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            #[derive(Deserialize)]
            #[serde(untagged)]
            enum Num {
                I(u64),
                F(f64),
            }
            let v = match Num::deserialize(d)? {
                Num::I(i) => i as f64,
                Num::F(f) => f,
            };
            Probability::from_f64(v).map_err(serde::de::Error::custom)
        } else {
            let v = u64::deserialize(d)?;
            if v > Self::SCALE {
                return Err(serde::de::Error::custom("probability above 1"));
            }
            Ok(Probability(v))
        }
    }
}

/// A signed decimal with nine fractional digits, stored as billionths (`|value| < 9.2·10^9`).
///
/// Made for the input transform of a model (a feature's centre and scale), which people
/// write as `14.127` or `0.0026` and which [`Fixed6`] can neither sign nor resolve. Like
/// [`Probability`], human-readable formats carry a float: every count below 2^53 survives
/// the round trip exactly, so a genesis written and read back keeps its chain id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Decimal9(pub i64);

impl Decimal9 {
    /// Billionths in one unit.
    pub const SCALE: i64 = 1_000_000_000;
    /// Largest magnitude accepted from a float: 2^53 billionths (about 9·10^6), so the float
    /// round trip is exact.
    pub const MAX_ABS: f64 = 9_007_199.254_740_992;

    /// Converts from a float, rounding to the nearest billionth. Refuses NaN, infinities and
    /// magnitudes above [`Decimal9::MAX_ABS`].
    pub fn from_f64(v: f64) -> Result<Self, String> {
        if !v.is_finite() || v.abs() > Self::MAX_ABS {
            return Err(format!("{v} is not a decimal of magnitude at most {}", Self::MAX_ABS));
        }
        Ok(Decimal9((v * Self::SCALE as f64).round() as i64))
    }

    /// The value as a float (for local training and prediction only).
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / Self::SCALE as f64
    }
}

impl fmt::Debug for Decimal9 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Decimal9 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_f64())
    }
}

impl Serialize for Decimal9 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_f64(self.to_f64())
        } else {
            s.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Decimal9 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            #[derive(Deserialize)]
            #[serde(untagged)]
            enum Num {
                I(i64),
                F(f64),
            }
            let v = match Num::deserialize(d)? {
                Num::I(i) => i as f64,
                Num::F(f) => f,
            };
            Decimal9::from_f64(v).map_err(serde::de::Error::custom)
        } else {
            Ok(Decimal9(i64::deserialize(d)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse() {
        assert_eq!(Fixed6::from_f64(0.05).map(|f| f.0), Ok(50_000));
        assert_eq!(Fixed6(1_250_000).to_string(), "1.25");
        assert_eq!(Fixed6(3_000_000).to_string(), "3");
        assert!(Fixed6::from_f64(-1.0).is_err());
        assert!(Fixed6::from_f64(f64::NAN).is_err());
    }

    #[test]
    fn probability_round_trips_through_float() {
        assert_eq!(Probability::from_f64(1e-5).map(|p| p.0), Ok(10_000_000_000));
        assert!(Probability::from_f64(1.5).is_err());
        assert!(Probability::from_f64(f64::NAN).is_err());
        assert!(Probability::from_f64(-1e-9).is_err());
        for count in [0, 1, 7, 10_000_000_000, 123_456_789_012_345, Probability::SCALE - 1, Probability::SCALE] {
            let back = Probability::from_f64(Probability(count).to_f64()).expect("in range");
            assert_eq!(back.0, count);
        }
        assert_eq!(Probability(10_000_000_000).to_string(), "1e-5");
    }

    #[test]
    fn decimal9_round_trips_through_float() {
        assert_eq!(Decimal9::from_f64(-14.127).map(|d| d.0), Ok(-14_127_000_000));
        assert_eq!(Decimal9::from_f64(0.0026).map(|d| d.0), Ok(2_600_000));
        assert!(Decimal9::from_f64(f64::NAN).is_err());
        assert!(Decimal9::from_f64(1e7).is_err());
        for count in [0, 1, -1, 2_600_000, -123_456_789_012_345, (1i64 << 53) - 1, -(1i64 << 53)] {
            let back = Decimal9::from_f64(Decimal9(count).to_f64()).expect("in range");
            assert_eq!(back.0, count);
        }
    }
}
