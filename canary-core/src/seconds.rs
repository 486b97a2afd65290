//! Serde for `Duration` as fractional seconds, so every configuration file (the validator's
//! and each adapter's) reads durations the same way:
//! `#[serde(with = "canary_core::seconds")]`.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Writes the duration as seconds.
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Reads seconds; negative, non-finite or absurdly large values are errors.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let secs = f64::deserialize(d)?;
    Duration::try_from_secs_f64(secs).map_err(|_| {
        serde::de::Error::custom(format_args!(
            "{} is not a number of seconds >= 0",
            crate::format::Num(secs)
        ))
    })
}
