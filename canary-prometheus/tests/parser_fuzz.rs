//! The response parser never panics, whatever the bytes, and never turns garbage into a value.

use canary_prometheus::response::{parse_instant, parse_range};
use proptest::prelude::*;

/// JSON that looks like a Prometheus answer, with every part allowed to be wrong.
fn near_miss() -> impl Strategy<Value = String> {
    let status = prop_oneof![
        Just("\"success\""),
        Just("\"error\""),
        Just("null"),
        Just("1"),
        Just("\"\"")
    ];
    let kind = prop_oneof![
        Just("\"vector\""),
        Just("\"scalar\""),
        Just("\"matrix\""),
        Just("\"string\""),
        Just("7")
    ];
    let sample = prop_oneof![
        Just("\"1.5\"".to_owned()),
        Just("\"NaN\"".to_owned()),
        Just("\"+Inf\"".to_owned()),
        Just("\"-Inf\"".to_owned()),
        Just("1.5".to_owned()),
        Just("null".to_owned()),
        "\"[a-z0-9.e+-]{0,8}\"".prop_map(|s| s),
    ];
    let result = prop_oneof![
        Just("[]".to_owned()),
        sample.clone().prop_map(|v| format!("[{{\"metric\":{{}},\"value\":[1,{v}]}}]")),
        sample.clone().prop_map(|v| format!("[1,{v}]")),
        sample.clone().prop_map(|v| format!("[{{\"metric\":{{}},\"values\":[[1,{v}],[2,{v}]]}}]")),
        sample.prop_map(|v| format!("[{{\"metric\":{{\"a\":\"b\"}},\"value\":[1,{v}]}},{{\"metric\":{{}},\"value\":[1,{v}]}}]")),
        Just("{}".to_owned()),
    ];
    (status, kind, result, 0usize..200).prop_map(|(s, k, r, cut)| {
        let full = format!(
            r#"{{"status":{s},"warnings":["w"],"data":{{"resultType":{k},"result":{r}}}}}"#
        );
        // Sometimes cut short, like a dropped connection.
        if cut < full.len() && cut % 3 == 0 {
            full[..cut].to_owned()
        } else {
            full
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Invariant: arbitrary bytes never panic the parser, and are never a value.
    #[test]
    fn arbitrary_bytes_never_panic(status in 0u16..600, body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let a = parse_instant("m", "q", status, &body);
        prop_assert!(a.is_err() || a.unwrap().value.is_none() || serde_json::from_slice::<serde_json::Value>(&body).is_ok());
        let _ = parse_range("m", "q", status, &body);
    }

    /// Invariant: near-valid answers never panic; any value that comes out is finite.
    #[test]
    fn near_misses_never_panic(status in prop_oneof![Just(200u16), Just(400), Just(503)], body in near_miss()) {
        if let Ok(a) = parse_instant("m", "q", status, body.as_bytes()) {
            prop_assert!(status == 200);
            prop_assert!(a.value.is_none_or(f64::is_finite));
            prop_assert!(a.value.is_some() != a.no_data.is_some());
        }
        if let Ok(r) = parse_range("m", "q", status, body.as_bytes()) {
            prop_assert!(r.points.iter().all(|(_, v)| v.is_none_or(f64::is_finite)));
        }
    }
}
