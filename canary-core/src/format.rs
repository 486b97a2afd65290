//! Numbers for people: reports, messages and errors.

/// A number for people: at most three decimals and no trailing zeros; very large or very small
/// magnitudes in scientific notation (`1e308`, not 309 digits).
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let magnitude = v.abs();
    if magnitude >= 1e9 || (magnitude > 0.0 && magnitude < 5e-4) {
        let text = format!("{v:.3e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        return format!("{mantissa}e{exponent}");
    }
    let text = format!("{v:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// A value with its unit, or "no data".
pub fn value_text(v: Option<f64>, unit: &str) -> String {
    match v {
        None => "no data".to_owned(),
        Some(v) if unit.is_empty() => num(v),
        Some(v) if unit == "%" => format!("{}%", num(v)),
        Some(v) => format!("{} {unit}", num(v)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(num(1600.0), "1600");
        assert_eq!(num(1.5), "1.5");
        assert_eq!(num(0.1234), "0.123");
        assert_eq!(num(-0.0001), "-1e-4");
        assert_eq!(num(0.0), "0");
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
