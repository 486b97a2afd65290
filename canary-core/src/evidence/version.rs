//! Deployable versions: validated container image tags.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A version that is safe to hand to helm and to put into a PromQL label matcher.
///
/// It follows the OCI image tag grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`. That excludes
/// `,`, `=`, quotes, braces and white space, so `v1,canary.enabled=false` can never become a
/// second helm value.
///
/// ```
/// use canary_core::Version;
/// assert!(Version::new("v1.3.0").is_ok());
/// assert!(Version::new("v1,canary.enabled=false").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Version(String);

impl Version {
    /// The longest tag the OCI distribution spec allows.
    pub const MAX_LEN: usize = 128;

    /// What [`Version::new`] accepts, as a regular expression (the HTTP API's schema states it).
    pub const PATTERN: &'static str = "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$";

    /// Validates `tag` as an image tag.
    pub fn new(tag: impl Into<String>) -> Result<Self> {
        let tag = tag.into();
        let invalid = |reason| {
            Err(Error::InvalidVersion {
                version: tag.clone(),
                reason,
            })
        };
        let mut chars = tag.chars();
        match chars.next() {
            None => return invalid("a version must not be empty"),
            Some(c) if !(c.is_ascii_alphanumeric() || c == '_') => {
                return invalid("a version must start with a letter, digit or '_'")
            }
            Some(_) => {}
        }
        if tag.len() > Self::MAX_LEN {
            return invalid("a version is at most 128 characters long");
        }
        if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
            return invalid("a version may only contain letters, digits, '_', '.' and '-'");
        }
        Ok(Version(tag))
    }

    /// The tag as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Version {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Version::new(s)
    }
}

impl TryFrom<String> for Version {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Version::new(s)
    }
}

impl From<Version> for String {
    fn from(v: Version) -> String {
        v.0
    }
}

impl From<&Version> for String {
    fn from(v: &Version) -> String {
        v.0.clone()
    }
}

impl AsRef<str> for Version {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_tags() {
        for tag in ["latest", "v1.0.0", "1.2.3-rc.1", "_build", "sha-abc123_DEF"] {
            assert_eq!(Version::new(tag).unwrap().as_str(), tag);
        }
    }

    #[test]
    fn refuses_injection_attempts() {
        for tag in [
            "",
            "v1,canary.enabled=false",
            "v1 --set x=y",
            "v1\"} or vector(1) or {x=\"",
            "-v1",
            ".v1",
            "v1\n",
            "v1/../x",
        ] {
            let err = Version::new(tag).unwrap_err();
            assert!(matches!(err, Error::InvalidVersion { .. }), "{tag:?}");
        }
        assert!(Version::new("a".repeat(129)).is_err());
        assert!(Version::new("a".repeat(128)).is_ok());
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<Version>("\"v1,x=y\"").is_err());
        let v: Version = serde_json::from_str("\"v2\"").unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"v2\"");
    }
}
