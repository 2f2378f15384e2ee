//! Durations and sizes written the way people write them: `30s`, `5MB`.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration such as `250ms`, `30s`, `5m`, `1h30m` or `2d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

/// The pattern every duration matches (kept in the JSON Schema).
const DURATION_PATTERN: &str = r"^\s*([0-9]+(\.[0-9]+)?\s*(ms|s|m|h|d)\s*)+$";

impl HumanDuration {
    /// Parses `text`, or says what a duration looks like.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid duration '{text}': expected a number and a unit (ms, s, m, h, d), e.g. 30s, 500ms or 1h30m"
            )
        };
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(bad());
        }
        let mut total = 0.0f64;
        while !rest.is_empty() {
            let number_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(bad)?;
            if number_len == 0 {
                return Err(bad());
            }
            let number: f64 = rest[..number_len].parse().map_err(|_| bad())?;
            rest = rest[number_len..].trim_start();
            let unit_len = rest
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(rest.len());
            let seconds = match &rest[..unit_len] {
                "ms" => 0.001,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                "d" => 86_400.0,
                _ => return Err(bad()),
            };
            total += number * seconds;
            rest = rest[unit_len..].trim_start();
        }
        Duration::try_from_secs_f64(total)
            .map(HumanDuration)
            .map_err(|_| bad())
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms % 1000 != 0 {
            write!(f, "{ms}ms")
        } else if ms % 60_000 != 0 || ms == 0 {
            write!(f, "{}s", ms / 1000)
        } else if ms % 3_600_000 != 0 {
            write!(f, "{}m", ms / 60_000)
        } else {
            write!(f, "{}h", ms / 3_600_000)
        }
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        HumanDuration::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl JsonSchema for HumanDuration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "A duration: a number and a unit (ms, s, m, h, d), e.g. 30s, 500ms, 1h30m.",
            "examples": ["30s", "500ms", "5m"]
        })
    }
}

/// A size in bytes such as `512KB`, `5MB` or `1GiB` (or a plain number of bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

const SIZE_PATTERN: &str = r"^\s*[0-9]+(\.[0-9]+)?\s*([kKmMgG]i?[bB]|[bB])?\s*$";

impl ByteSize {
    /// Parses `text`, or says what a size looks like.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid size '{text}': expected a number and a unit (B, KB, MB, GB, KiB, MiB, GiB), e.g. 5MB"
            )
        };
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        if split == 0 {
            return Err(bad());
        }
        let number: f64 = t[..split].parse().map_err(|_| bad())?;
        let factor: f64 = match t[split..].trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "kb" => 1e3,
            "mb" => 1e6,
            "gb" => 1e9,
            "kib" => 1024.0,
            "mib" => 1024.0 * 1024.0,
            "gib" => 1024.0 * 1024.0 * 1024.0,
            _ => return Err(bad()),
        };
        let bytes = number * factor;
        if !bytes.is_finite() || bytes > u64::MAX as f64 {
            return Err(bad());
        }
        // Rounded and range-checked above.
        Ok(ByteSize(bytes.round() as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        if b != 0 && b % 1_000_000_000 == 0 {
            write!(f, "{}GB", b / 1_000_000_000)
        } else if b != 0 && b % 1_000_000 == 0 {
            write!(f, "{}MB", b / 1_000_000)
        } else if b != 0 && b % 1000 == 0 {
            write!(f, "{}KB", b / 1000)
        } else {
            write!(f, "{b}B")
        }
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw<'a> {
            Bytes(u64),
            #[serde(borrow)]
            Text(Cow<'a, str>),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Bytes(n) => Ok(ByteSize(n)),
            Raw::Text(t) => ByteSize::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> Cow<'static, str> {
        "ByteSize".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                {"type": "string", "pattern": SIZE_PATTERN},
                {"type": "integer", "minimum": 0}
            ],
            "description": "A size: a number of bytes or a number and a unit (B, KB, MB, GB, KiB, MiB, GiB), e.g. 5MB.",
            "examples": ["5MB", "512KB"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let d = |t: &str| HumanDuration::parse(t).map(|d| d.0.as_millis());
        assert_eq!(d("30s"), Ok(30_000));
        assert_eq!(d("500ms"), Ok(500));
        assert_eq!(d("1h30m"), Ok(5_400_000));
        assert_eq!(d("1.5s"), Ok(1500));
        assert_eq!(d("2d"), Ok(172_800_000));
        for bad in ["", "30", "3x", "s", "1.2.3s", "-1s"] {
            let e = HumanDuration::parse(bad).expect_err(bad);
            assert!(e.contains("invalid duration"), "{e}");
        }
        assert_eq!(HumanDuration(Duration::from_secs(90)).to_string(), "90s");
        assert_eq!(HumanDuration(Duration::from_secs(120)).to_string(), "2m");
    }

    #[test]
    fn duration_pattern_agrees_with_parser() {
        let re = regex_lite(DURATION_PATTERN);
        for t in ["30s", "1h30m", "1.5s", "500 ms"] {
            assert!(re(t) && HumanDuration::parse(t).is_ok(), "{t}");
        }
        for t in ["30", "3x", ""] {
            assert!(!re(t) && HumanDuration::parse(t).is_err(), "{t}");
        }
    }

    /// A tiny matcher for the two patterns (the crate has no regex dependency).
    fn regex_lite(pattern: &str) -> impl Fn(&str) -> bool {
        let schema = serde_json::json!({"type": "string", "pattern": pattern});
        let validator = jsonschema::validator_for(&schema).expect("valid pattern");
        move |t| validator.is_valid(&serde_json::json!(t))
    }

    #[test]
    fn sizes() {
        let s = |t: &str| ByteSize::parse(t).map(|b| b.0);
        assert_eq!(s("5MB"), Ok(5_000_000));
        assert_eq!(s("1KiB"), Ok(1024));
        assert_eq!(s("10"), Ok(10));
        assert!(s("5XB").expect_err("bad").contains("invalid size"));
        let re = regex_lite(SIZE_PATTERN);
        assert!(re("5MB") && re("1 GiB") && !re("5XB"));
        assert_eq!(ByteSize(5_000_000).to_string(), "5MB");
    }
}
