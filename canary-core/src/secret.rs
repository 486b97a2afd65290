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
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(transparent)
)]
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

/// Removes a set of secrets from any text, in every form a server may echo them back: as
/// given, percent-encoded, and, for basic auth, as the base64 `user:password` of the
/// `Authorization` header.
///
/// Adapters build one from their configuration and pass every error message, warning and
/// response excerpt through it before it reaches an error, a log line, a report or a
/// notification, whatever its origin.
///
/// ```
/// use canary_core::{Redactor, Secret};
/// let mut r = Redactor::default();
/// r.add(&Secret::new("tok-123"));
/// r.add_basic_auth("admin", &Secret::new("p@ss"));
/// let echoed = "denied: Authorization: Basic YWRtaW46cEBzcw== (Bearer tok-123, p%40ss)";
/// assert_eq!(r.scrub(echoed), "denied: Authorization: Basic [redacted] (Bearer [redacted], [redacted])");
/// ```
#[derive(Clone, Default)]
pub struct Redactor {
    needles: Vec<String>,
}

impl Redactor {
    /// Adds a secret, in its plain and percent-encoded forms.
    pub fn add(&mut self, secret: &Secret) {
        self.add_text(secret.expose());
    }

    /// Adds basic-auth credentials: the password (plain and percent-encoded) and the base64
    /// `user:password` that travels in the `Authorization` header.
    pub fn add_basic_auth(&mut self, username: &str, password: &Secret) {
        use base64::Engine as _;
        self.add(password);
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{username}:{}", password.expose()));
        self.push(token);
    }

    /// Adds a secret URL (a webhook): the whole URL, and its path with the query, which is
    /// what a receiver or proxy echoes in a request line (`POST /services/T0/B0/XXXX`).
    pub fn add_url(&mut self, url: &Secret) {
        let text = url.expose();
        self.add_text(text);
        self.add_url_credentials(text);
        if let Some((_, rest)) = text.split_once("://") {
            if let Some(i) = rest.find('/') {
                let path = &rest[i..];
                // A bare "/" or a short path is not a secret worth blanking everywhere.
                if path.len() > 8 {
                    self.add_text(path);
                }
            }
        }
    }

    /// Adds the `user:password@` of a URL that is not itself secret (a Prometheus or proxy
    /// URL): the password as written and percent-decoded, and the base64 `user:password` of
    /// the basic-auth header it travels as. A URL without credentials adds nothing.
    pub fn add_url_credentials(&mut self, url: &str) {
        let Some((_, rest)) = url.split_once("://") else {
            return;
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let Some((userinfo, _)) = authority.rsplit_once('@') else {
            return;
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        self.add_text(password);
        self.add_basic_auth(&decode(user), &Secret::new(decode(password)));
    }

    /// Adds a secret given as plain text, with its percent-encoded and JSON-escaped forms.
    pub fn add_text(&mut self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let encoded =
            percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let json = serde_json::to_string(secret).unwrap_or_default();
        let json = json.trim_matches('"').to_owned();
        self.push(json.replace('/', "\\/"));
        self.push(json);
        self.push(secret.to_owned());
        self.push(encoded);
    }

    fn push(&mut self, needle: String) {
        if !needle.is_empty() && !self.needles.contains(&needle) {
            self.needles.push(needle);
            // Longest first, so a secret that contains another is removed whole.
            self.needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        }
    }

    /// Whether there is nothing to remove.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every form of every secret replaced by `[redacted]`.
    ///
    /// A server may percent-encode a secret its own way (lower case, only some characters,
    /// `+` for spaces). If the decoded text still holds a secret, the decoded text is returned,
    /// scrubbed: readable, and without the secret in any encoding.
    pub fn scrub(&self, text: &str) -> String {
        let out = self.replace_all(text);
        if self.needles.is_empty() || !out.contains(['%', '+']) {
            return out;
        }
        let decoded = percent_encoding::percent_decode_str(&out.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned();
        let scrubbed = self.replace_all(&decoded);
        if scrubbed != decoded {
            scrubbed
        } else {
            out
        }
    }

    fn replace_all(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), Secret::REDACTED);
            }
        }
        out
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} forms of secrets)", self.needles.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redactor_removes_every_form_a_server_may_echo() {
        let mut r = Redactor::default();
        r.add(&Secret::new("tenant/a b"));
        r.add_basic_auth("u", &Secret::new("pw"));
        let text = "tenant/a b | tenant%2Fa%20b | Basic dTpwdw== | pw";
        let out = r.scrub(text);
        for leaked in ["tenant", "dTpwdw", "pw"] {
            assert!(!out.contains(leaked), "{leaked} in {out}");
        }
        assert!(!format!("{r:?}").contains("tenant"));
        let mut r = Redactor::default();
        r.add_url(&Secret::new("https://hooks.example/services/T0/B0/XYZ"));
        assert_eq!(
            r.scrub("POST /services/T0/B0/XYZ HTTP/1.1"),
            "POST [redacted] HTTP/1.1"
        );
        assert_eq!(Redactor::default().scrub("as is"), "as is");
    }

    #[test]
    fn secrets_in_another_encoding_are_found_too() {
        let mut r = Redactor::default();
        r.add(&Secret::new("ten/ant a"));
        for echoed in [
            "x-scope-orgid: ten%2fant%20a", // lower-case escapes
            "x-scope-orgid: ten/ant%20a",   // only some characters escaped
            "x-scope-orgid: ten%2Fant+a",   // a form-encoded space
            r#"{"org":"ten\/ant a"}"#,      // JSON with an escaped slash
        ] {
            let out = r.scrub(echoed);
            assert!(out.contains("[redacted]"), "{echoed} -> {out}");
            assert!(!out.contains("ant"), "{echoed} -> {out}");
        }
        // Text without a secret keeps its own encoding.
        assert_eq!(r.scrub("a%20b"), "a%20b");
    }

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
