//! Durations and instants as operators write them: `90s`, `5m`, `1h30m`, `2d`, `2h15m30s` (a
//! bare number is seconds), the same in flags and in files; RFC 3339 or unix seconds. Shared by the `canary` command and the
//! service, so both read them the same way.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

/// The longest duration accepted: a year. Anything longer is a typo, and would overflow date
/// arithmetic later.
pub const MAX: Duration = Duration::from_secs(366 * 24 * 3600);

/// Parses `text` into a positive duration of at most [`MAX`]; the error says what is wrong.
///
/// ```
/// use std::time::Duration;
/// use canary_core::duration::parse;
/// assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
/// assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
/// assert!(parse("5 minutes").is_err());
/// ```
pub fn parse(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration like 90s, 5m, 1h30m or 2d");
    if text.is_empty() {
        return Err(bad());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return bounded(text.parse::<u64>().ok(), text);
    }
    let mut total: Option<u64> = Some(0);
    let mut rest = text;
    let mut last_unit = u64::MAX;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: Option<u64> = rest[..digits].parse().ok();
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let unit = match &rest[..unit_len] {
            "d" => 86_400,
            "h" => 3600,
            "m" => 60,
            "s" => 1,
            _ => return Err(bad()),
        };
        // Units in decreasing order, each once: `30m1h` and `5m5m` are mistakes.
        if unit >= last_unit {
            return Err(bad());
        }
        last_unit = unit;
        rest = &rest[unit_len..];
        total = total
            .zip(n.and_then(|n| n.checked_mul(unit)))
            .and_then(|(t, add)| t.checked_add(add));
    }
    bounded(total, text)
}

/// The longest analysis window: 31 days (a Prometheus range this long is already a heavy
/// query). The command, the config and the service all refuse longer ones with this message.
pub const MAX_WINDOW: Duration = Duration::from_secs(31 * 24 * 3600);

/// Parses an analysis window: [`parse`], then at most [`MAX_WINDOW`].
///
/// ```
/// use canary_core::duration::parse_window;
/// assert!(parse_window("5m").is_ok());
/// assert_eq!(parse_window("32d").unwrap_err(), "32d is longer than the longest window, 31 days (744h)");
/// assert_eq!(parse_window("745h").unwrap_err(), "745h is longer than the longest window, 31 days (744h)");
/// ```
pub fn parse_window(text: &str) -> Result<Duration, String> {
    let d = parse(text)?;
    if d > MAX_WINDOW {
        return Err(format!(
            "{text} is longer than the longest window, 31 days (744h)"
        ));
    }
    Ok(d)
}

/// Parses an instant: RFC 3339 (`2026-11-27T20:00:00Z`) or unix seconds, between 1970 and
/// 9999; the error says what is wrong.
///
/// ```
/// use canary_core::duration::instant;
/// assert_eq!(instant("1795800000").unwrap().timestamp(), 1_795_800_000);
/// assert!(instant("yesterday").is_err());
/// ```
pub fn instant(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is neither RFC 3339 nor unix seconds"))?;
    // Between 1970 and 9999: anything else is a mistake, and would saturate silently.
    if !(0.0..=253_402_300_799.0).contains(&secs) {
        return Err(format!("{text:?} is out of range"));
    }
    Utc.timestamp_millis_opt((secs * 1000.0) as i64)
        .single()
        .ok_or_else(|| format!("{text:?} is out of range"))
}

fn bounded(seconds: Option<u64>, text: &str) -> Result<Duration, String> {
    match seconds {
        Some(0) => Err(format!("{text:?}: a duration must be positive")),
        Some(s) if s <= MAX.as_secs() => Ok(Duration::from_secs(s)),
        _ => Err(format!("{text:?} is longer than a year")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_durations_parse() {
        for (text, secs) in [
            ("90s", 90),
            ("5m", 300),
            ("1h30m", 5400),
            ("2h15m30s", 8130),
            ("300", 300),
            ("1h", 3600),
            ("2d", 172_800),
            ("1d12h", 129_600),
        ] {
            assert_eq!(parse(text), Ok(Duration::from_secs(secs)), "{text}");
        }
    }

    #[test]
    fn mistakes_are_errors_never_panics() {
        for text in [
            "",
            "m",
            "5x",
            "5 m",
            "30m1h",
            "5m5m",
            "-5m",
            "1.5h",
            "0s",
            "0",
            "18446744073709551615h",
            "99999999999999999999999s",
            "367d",
        ] {
            assert!(parse(text).is_err(), "{text:?} parsed");
        }
        assert!(parse("9000h").unwrap_err().contains("longer than a year"));
    }
}
