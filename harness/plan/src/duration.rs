//! `PlanDuration`: a non-negative duration written with a unit, as in `250ms`, `5s`, `1.5s`,
//! `2m` or `1h`.
//!
//! A bare number (`5`) is rejected: the unit is never guessed. Writing one back uses the
//! largest unit that states the value exactly (`1.5s` is written `1500ms`, `90s` is `90s`,
//! `120s` is `2m`), so a written duration always reads back to the same value.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The accepted forms, for error messages.
pub const DURATION_FORMS: &str = "a number with a unit: 250ms, 5s, 1.5s, 2m or 1h";

const NANOS_PER_MS: u128 = 1_000_000;
const NANOS_PER_S: u128 = 1_000_000_000;
const NANOS_PER_M: u128 = 60 * NANOS_PER_S;
const NANOS_PER_H: u128 = 60 * NANOS_PER_M;

/// A non-negative duration read from a plan (`250ms`, `5s`, `1.5s`, `2m`, `1h`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PlanDuration(Duration);

/// Why a duration string was not accepted. Display is the whole message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DurationError(String);

impl PlanDuration {
    pub const ZERO: PlanDuration = PlanDuration(Duration::ZERO);

    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    pub const fn from_millis(millis: u64) -> Self {
        Self(Duration::from_millis(millis))
    }

    pub const fn from_duration(duration: Duration) -> Self {
        Self(duration)
    }

    pub const fn as_duration(self) -> Duration {
        self.0
    }

    pub const fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl From<Duration> for PlanDuration {
    fn from(d: Duration) -> Self {
        Self(d)
    }
}

impl From<PlanDuration> for Duration {
    fn from(d: PlanDuration) -> Self {
        d.0
    }
}

impl FromStr for PlanDuration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, DurationError> {
        parse(text).map(Self)
    }
}

fn parse(text: &str) -> Result<Duration, DurationError> {
    let invalid = || DurationError(format!("invalid duration `{text}`; write {DURATION_FORMS}"));
    if text.is_empty() {
        return Err(DurationError(format!(
            "empty duration; write {DURATION_FORMS}"
        )));
    }
    if let Some(rest) = text.strip_prefix('-') {
        if rest.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
            return Err(DurationError(format!(
                "`{text}` is a negative duration; a duration is 0s or more, written as {DURATION_FORMS}"
            )));
        }
    }
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_end);
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    let well_formed = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && fraction.is_empty() != number.contains('.');
    if !well_formed {
        return Err(invalid());
    }
    let scale = match unit {
        "ms" => NANOS_PER_MS,
        "s" => NANOS_PER_S,
        "m" => NANOS_PER_M,
        "h" => NANOS_PER_H,
        "" => {
            return Err(DurationError(format!(
                "`{text}` has no unit; write a duration as {DURATION_FORMS}"
            )))
        }
        _ => return Err(invalid()),
    };
    let too_long = || DurationError(format!("duration `{text}` is too long"));
    let whole: u128 = whole.parse().map_err(|_| too_long())?;
    let mut nanos = whole.checked_mul(scale).ok_or_else(too_long)?;
    // Digits beyond the 20th after the point are below a nanosecond for every unit.
    let fraction = &fraction[..fraction.len().min(20)];
    if !fraction.is_empty() {
        let digits: u128 = fraction.parse().map_err(|_| invalid())?;
        let denominator = 10u128.pow(fraction.len() as u32);
        // scale <= 3.6e12 and digits < 1e20, so the product fits in u128.
        nanos += digits * scale / denominator;
    }
    let secs = u64::try_from(nanos / NANOS_PER_S).map_err(|_| too_long())?;
    Ok(Duration::new(secs, (nanos % NANOS_PER_S) as u32))
}

impl fmt::Display for PlanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        for (scale, unit) in [
            (NANOS_PER_H, "h"),
            (NANOS_PER_M, "m"),
            (NANOS_PER_S, "s"),
            (NANOS_PER_MS, "ms"),
        ] {
            if nanos.is_multiple_of(scale) {
                return write!(f, "{}{unit}", nanos / scale);
            }
        }
        let fraction = format!("{:06}", nanos % NANOS_PER_MS);
        write!(
            f,
            "{}.{}ms",
            nanos / NANOS_PER_MS,
            fraction.trim_end_matches('0')
        )
    }
}

impl Serialize for PlanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PlanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = PlanDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a duration: {DURATION_FORMS}")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<PlanDuration, E> {
                v.parse().map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PlanDuration, E> {
                self.visit_str(&v.to_string())
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PlanDuration, E> {
                self.visit_str(&v.to_string())
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<PlanDuration, E> {
                self.visit_str(&v.to_string())
            }
        }

        deserializer.deserialize_str(DurationVisitor)
    }
}

impl JsonSchema for PlanDuration {
    fn schema_name() -> Cow<'static, str> {
        "PlanDuration".into()
    }

    fn schema_id() -> Cow<'static, str> {
        concat!(module_path!(), "::PlanDuration").into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A non-negative duration: a number with a unit (ms, s, m or h), e.g. 250ms, 5s, 1.5s, 2m, 1h.",
            "type": "string",
            "pattern": "^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Duration, String> {
        s.parse::<PlanDuration>()
            .map(PlanDuration::as_duration)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn accepted_forms() {
        assert_eq!(p("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(p("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(p("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(p("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(p("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(p("0s"), Ok(Duration::ZERO));
        assert_eq!(p("0.25ms"), Ok(Duration::from_micros(250)));
        assert_eq!(
            p("1.000000000000000000000001h"),
            Ok(Duration::from_secs(3600))
        );
    }

    #[test]
    fn rejected_forms() {
        assert_eq!(
            p("-5s").unwrap_err(),
            "`-5s` is a negative duration; a duration is 0s or more, written as a number with a unit: 250ms, 5s, 1.5s, 2m or 1h"
        );
        assert_eq!(
            p("5").unwrap_err(),
            "`5` has no unit; write a duration as a number with a unit: 250ms, 5s, 1.5s, 2m or 1h"
        );
        assert_eq!(
            p("5 s").unwrap_err(),
            "invalid duration `5 s`; write a number with a unit: 250ms, 5s, 1.5s, 2m or 1h"
        );
        for bad in [
            "", "s", ".5s", "5.s", "1.2.3s", "5sec", "+5s", "5d", "-", "--5s", "5S",
        ] {
            assert!(p(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            p("99999999999999999999999999999999999999999h").unwrap_err(),
            "duration `99999999999999999999999999999999999999999h` is too long"
        );
        assert!(p("18446744073709551616s").is_err());
        assert!(p("18446744073709551615s").is_ok());
    }

    #[test]
    fn display_round_trips() {
        for (text, shown) in [
            ("250ms", "250ms"),
            ("5s", "5s"),
            ("1.5s", "1500ms"),
            ("90s", "90s"),
            ("120s", "2m"),
            ("1h", "1h"),
            ("0ms", "0s"),
            ("0.0015s", "1.5ms"),
            ("0.000000001s", "0.000001ms"),
        ] {
            let d: PlanDuration = text.parse().unwrap();
            assert_eq!(d.to_string(), shown);
            assert_eq!(shown.parse::<PlanDuration>().unwrap(), d);
        }
        assert_eq!(PlanDuration::from_secs(60).to_string(), "1m");
    }
}
