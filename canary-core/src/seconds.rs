//! Serde for `Duration` as fractional seconds, so every configuration file (the validator's
//! and each adapter's) reads durations the same way:
//! `#[serde(with = "canary_core::seconds")]`.

use std::time::Duration;

use serde::{Deserializer, Serializer};

/// Writes the duration as seconds.
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Reads a number of seconds (`30`, `0.5`) or a duration as operators write it (`"30s"`,
/// `"5m"`, `"1h30m"`, `"2d"`, the grammar of [`crate::duration::parse`]; `"0s"` too); negative,
/// non-finite or absurdly large values are errors that say what is expected.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(Seconds)
}

struct Seconds;

impl serde::de::Visitor<'_> for Seconds {
    type Value = Duration;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a duration: a number of seconds, or text like 90s, 5m, 1h30m or 2d")
    }

    fn visit_f64<E: serde::de::Error>(self, secs: f64) -> Result<Duration, E> {
        Duration::try_from_secs_f64(secs).map_err(|_| {
            E::custom(format_args!(
                "{} is not a duration: a number of seconds >= 0, or text like 90s, 5m or 2d",
                crate::format::Num(secs)
            ))
        })
    }

    fn visit_i64<E: serde::de::Error>(self, secs: i64) -> Result<Duration, E> {
        self.visit_f64(secs as f64)
    }

    fn visit_u64<E: serde::de::Error>(self, secs: u64) -> Result<Duration, E> {
        self.visit_f64(secs as f64)
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Duration, E> {
        if text
            .trim_end_matches(['d', 'h', 'm', 's'])
            .bytes()
            .all(|b| b == b'0')
            && text.bytes().any(|b| b.is_ascii_alphabetic())
            && text.len() >= 2
        {
            return Ok(Duration::ZERO);
        }
        crate::duration::parse(text).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[derive(serde::Deserialize)]
    struct T {
        #[serde(with = "super")]
        d: Duration,
    }

    fn read(json: &str) -> Result<Duration, String> {
        serde_json::from_str::<T>(json)
            .map(|t| t.d)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn numbers_and_operators_durations_read_alike() {
        assert_eq!(read(r#"{"d": 30}"#), Ok(Duration::from_secs(30)));
        assert_eq!(read(r#"{"d": 0.5}"#), Ok(Duration::from_millis(500)));
        assert_eq!(read(r#"{"d": "30s"}"#), Ok(Duration::from_secs(30)));
        assert_eq!(read(r#"{"d": "2d"}"#), Ok(Duration::from_secs(2 * 86_400)));
        assert_eq!(read(r#"{"d": "1h30m"}"#), Ok(Duration::from_secs(5400)));
        assert_eq!(read(r#"{"d": "0s"}"#), Ok(Duration::ZERO));
    }

    #[test]
    fn mistakes_say_what_is_expected_in_the_users_words() {
        for (json, says) in [
            (r#"{"d": "30 seconds"}"#, "is not a duration like 90s"),
            (r#"{"d": -1}"#, "number of seconds >= 0"),
            (r#"{"d": true}"#, "a number of seconds, or text like 90s"),
        ] {
            let e = read(json).unwrap_err();
            assert!(e.contains(says), "{json}: {e}");
            assert!(!e.contains("f64"), "{json}: {e}");
        }
    }
}

/// The JSON Schema of a duration field: a number of seconds, or text like `90s` or `2d`
/// (`#[schemars(with = "canary_core::seconds::Schema")]`).
#[cfg(feature = "schema")]
#[derive(Debug)]
pub struct Schema;

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Schema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A duration: a number of seconds, or text like 90s, 5m, 1h30m or 2d.",
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": "^([0-9]+|([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?)$"}
            ]
        })
    }
}
