//! Numbers for people: reports, messages and errors.

use std::fmt;

/// A number for people: at most three decimals and no trailing zeros; very large or very small
/// magnitudes in scientific notation (`1e308`, not 309 digits). Reports in every format use it,
/// so a value reads the same in Markdown, HTML and the terminal.
///
/// ```
/// assert_eq!(canary_core::format::num(99.6), "99.6");
/// assert_eq!(canary_core::format::num(1e308), "1e308");
/// ```
pub fn num(v: f64) -> String {
    Num(v).to_string()
}

/// [`num`] as a `Display` value, written straight into a message without an allocation of
/// its own (the policy formats several per evaluation).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Num(pub(crate) f64);

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if !v.is_finite() {
            return write!(f, "{v}");
        }
        let magnitude = v.abs();
        if magnitude >= 1e9 || (magnitude > 0.0 && magnitude < 5e-4) {
            let text = format!("{v:.3e}");
            let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
            let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
            return write!(f, "{mantissa}e{exponent}");
        }
        // Thousandths as an integer: exact for these magnitudes, and much faster than
        // formatting a float with a precision.
        let thousandths = (v * 1000.0).round() as i64;
        let (sign, n) = (
            if thousandths < 0 { "-" } else { "" },
            thousandths.unsigned_abs(),
        );
        let (whole, frac) = (n / 1000, n % 1000);
        match frac {
            0 => write!(f, "{sign}{whole}"),
            _ if frac % 100 == 0 => write!(f, "{sign}{whole}.{}", frac / 100),
            _ if frac % 10 == 0 => write!(f, "{sign}{whole}.{:02}", frac / 10),
            _ => write!(f, "{sign}{whole}.{frac:03}"),
        }
    }
}

/// A value with its unit, or "no data".
pub(crate) fn value_text(v: Option<f64>, unit: &str) -> String {
    ValueText(v, unit).to_string()
}

/// [`value_text`] as a `Display` value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ValueText<'a>(pub(crate) Option<f64>, pub(crate) &'a str);

impl fmt::Display for ValueText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (None, _) => f.write_str("no data"),
            (Some(v), "") => write!(f, "{}", Num(v)),
            (Some(v), "%") => write!(f, "{}%", Num(v)),
            (Some(v), unit) => write!(f, "{} {unit}", Num(v)),
        }
    }
}

/// `+87.5%`, `-4.7%`, `0%`: one decimal is enough for people.
pub(crate) fn percent_change(p: f64) -> String {
    if p.abs() >= 1e9 {
        return format!("{}%", num(p));
    }
    let text = format!("{p:+.1}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    match text {
        "+" | "-" | "+0" | "-0" => "0%".to_owned(),
        t => format!("{t}%"),
    }
}

/// A span of seconds for people: `45 s`, `6 min`, `1 h 30 min`; absurd spans in seconds via
/// [`num`].
///
/// ```
/// assert_eq!(canary_core::format::duration(360.0), "6 min");
/// assert_eq!(canary_core::format::duration(5400.0), "1 h 30 min");
/// assert_eq!(canary_core::format::duration(42.5), "42.5 s");
/// ```
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds.abs() >= 1e9 {
        return format!("{} s", num(seconds));
    }
    if seconds < 120.0 {
        return format!("{} s", num(seconds));
    }
    let minutes = (seconds / 60.0).round() as i64;
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// An instant for people, to the second: `2026-12-07 15:58:04 UTC`.
pub fn instant(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(num(1600.0), "1600");
        assert_eq!(num(1.5), "1.5");
        assert_eq!(num(0.1234), "0.123");
        assert_eq!(num(-0.0001), "-1e-4");
        assert_eq!(num(-0.0004), "-4e-4");
        assert_eq!(num(0.0), "0");
        assert_eq!(num(-1.25), "-1.25");
        assert_eq!(num(2.05), "2.05");
        assert_eq!(num(1.0999999), "1.1");
        assert_eq!(num(-0.4), "-0.4");
        assert_eq!(value_text(Some(2.5), "%"), "2.5%");
        assert_eq!(value_text(None, "ms"), "no data");
    }

    #[test]
    fn huge_numbers_are_short() {
        assert_eq!(num(1e308), "1e308");
        assert_eq!(num(-1.2345e12), "-1.234e12");
        assert_eq!(num(999_999_999.0), "999999999");
        assert!(
            percent_change(1e300).len() < 12,
            "{}",
            percent_change(1e300)
        );
        assert_eq!(percent_change(87.5), "+87.5%");
        assert_eq!(percent_change(-0.01), "0%");
    }
}
