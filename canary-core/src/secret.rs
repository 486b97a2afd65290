//! Secrets — tokens, passwords, webhook URLs — that never show in `Debug`, logs or errors.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret string. `Debug` and `Display` print `[redacted]`; only [`Secret::expose`] reads it.
///
/// It deserializes from a plain string, so it can live in YAML or TOML configuration, and it
/// serializes as `[redacted]`, so a serialized configuration never leaks it.
///
/// ```
/// use canary_core::Secret;
/// let url = Secret::new("https://hooks.slack.com/services/T000/B000/XXXX");
/// assert_eq!(format!("{url:?}"), "[redacted]");
/// assert!(url.expose().starts_with("https://"));
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// What every secret prints as.
    pub const REDACTED: &'static str = "[redacted]";

    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value. Call it only where the value is sent, never to log or format.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Removes every occurrence of this secret from `text` (e.g. an error message from a
    /// library that echoes the URL it was given).
    pub fn scrub(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_owned()
        } else {
            text.replace(&self.0, Self::REDACTED)
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::REDACTED)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(Self::REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(
            format!("{s:?} {s} {:?}", Some(&s)),
            "[redacted] [redacted] Some([redacted])"
        );
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"[redacted]\"");
        let back: Secret = serde_json::from_str("\"hunter2\"").unwrap();
        assert_eq!(back.expose(), "hunter2");
    }

    #[test]
    fn scrubs_itself_from_text() {
        let s = Secret::new("https://hooks.example/T1/B2/X3");
        assert_eq!(
            s.scrub("error sending request for url (https://hooks.example/T1/B2/X3)"),
            "error sending request for url ([redacted])"
        );
        assert_eq!(Secret::default().scrub("text"), "text");
    }
}
