//! Percentages (`10%`) and bit rates (`10mbit`) as plans write them.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// A percentage as written: `10%`, `0.5%` or a bare number (`10`). Range is checked by
/// validation so the error can point at the value.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Percent(pub f64);

impl Percent {
    /// As a probability, 0.0..=1.0.
    pub fn fraction(self) -> f64 {
        self.0 / 100.0
    }
}

impl FromStr for Percent {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let number = s.trim().strip_suffix('%').unwrap_or(s.trim()).trim();
        match number.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Percent(v)),
            _ => Err(format!(
                "invalid percentage `{s}`; write it like 10% or 0.5%"
            )),
        }
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(v) => Ok(Percent(v)),
            Raw::Text(t) => t.parse().map_err(de::Error::custom),
        }
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for Percent {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Percent".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A percentage from 0 to 100: `10%`, `0.5%` or a number",
            "anyOf": [
                { "type": "string", "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*%?\s*$" },
                { "type": "number", "minimum": 0, "maximum": 100 }
            ]
        })
    }
}

/// A bit rate: `500kbit`, `10mbit`, `1gbit` (SI units, as tc writes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub bits_per_second: u64,
}

const RATE_FORMS: &str = "write a rate like 800kbit, 10mbit or 1gbit";

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        let (number, scale) = [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)]
            .iter()
            .find_map(|(unit, scale)| t.strip_suffix(unit).map(|n| (n.trim(), *scale)))
            .ok_or_else(|| format!("invalid rate `{s}`; {RATE_FORMS}"))?;
        match number.parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 && v * scale >= 1.0 && v * scale < 1e15 => Ok(Rate {
                bits_per_second: (v * scale) as u64,
            }),
            _ => Err(format!("invalid rate `{s}`; {RATE_FORMS} (more than 0)")),
        }
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.bits_per_second;
        match b {
            _ if b.is_multiple_of(1_000_000_000) => write!(f, "{}gbit", b / 1_000_000_000),
            _ if b.is_multiple_of(1_000_000) => write!(f, "{}mbit", b / 1_000_000),
            _ if b.is_multiple_of(1_000) => write!(f, "{}kbit", b / 1_000),
            _ => write!(f, "{b}bit"),
        }
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(de::Error::custom)
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for Rate {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Rate".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A bit rate: 800kbit, 10mbit, 1gbit",
            "type": "string",
            "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*([kmg]?bit)\s*$"
        })
    }
}

/// A size in bytes as written: `200MiB`, `1GiB`, `64KiB`, `500MB` (powers of 1000), `512B`
/// or a bare number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

const SIZE_FORMS: &str = "write a size like 200MiB, 1GiB, 500MB or a number of bytes";

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        let units: [(&str, f64); 9] = [
            ("kib", 1024.0),
            ("mib", 1024.0 * 1024.0),
            ("gib", 1024.0 * 1024.0 * 1024.0),
            ("tib", 1024.0 * 1024.0 * 1024.0 * 1024.0),
            ("kb", 1e3),
            ("mb", 1e6),
            ("gb", 1e9),
            ("tb", 1e12),
            ("b", 1.0),
        ];
        let (number, scale) = units
            .iter()
            .find_map(|(unit, scale)| t.strip_suffix(unit).map(|n| (n.trim(), *scale)))
            .unwrap_or((t.as_str(), 1.0));
        match number.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 && v * scale < 1.8e19 => {
                Ok(ByteSize((v * scale) as u64))
            }
            _ => Err(format!("invalid size `{s}`; {SIZE_FORMS}")),
        }
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        const K: u64 = 1024;
        match b {
            0 => write!(f, "0B"),
            _ if b.is_multiple_of(K * K * K) => write!(f, "{}GiB", b / (K * K * K)),
            _ if b.is_multiple_of(K * K) => write!(f, "{}MiB", b / (K * K)),
            _ if b.is_multiple_of(K) => write!(f, "{}KiB", b / K),
            _ => write!(f, "{b}B"),
        }
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(v) => Ok(ByteSize(v)),
            Raw::Text(t) => t.parse().map_err(de::Error::custom),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ByteSize".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A size: 200MiB, 1GiB, 500MB (powers of 1000), 512B or a number of bytes",
            "anyOf": [
                { "type": "string", "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*([kKmMgGtT][iI]?)?[bB]?\s*$" },
                { "type": "integer", "minimum": 0 }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        assert_eq!("10%".parse::<Percent>().unwrap(), Percent(10.0));
        assert_eq!("0.5".parse::<Percent>().unwrap(), Percent(0.5));
        assert!("ten%".parse::<Percent>().is_err());
        assert_eq!(
            "10mbit".parse::<Rate>().unwrap().bits_per_second,
            10_000_000
        );
        assert_eq!("1.5gbit".parse::<Rate>().unwrap().to_string(), "1500mbit");
        assert!("10 MB/s".parse::<Rate>().unwrap_err().contains("10mbit"));
        assert!("0kbit".parse::<Rate>().is_err());
        assert_eq!("200MiB".parse::<ByteSize>().unwrap().0, 200 << 20);
        assert_eq!(
            "1.5 GiB".parse::<ByteSize>().unwrap().to_string(),
            "1536MiB"
        );
        assert_eq!("500MB".parse::<ByteSize>().unwrap().0, 500_000_000);
        assert_eq!("4096".parse::<ByteSize>().unwrap().0, 4096);
        assert!("lots".parse::<ByteSize>().unwrap_err().contains("200MiB"));
        assert!("-1MiB".parse::<ByteSize>().is_err());
    }
}
