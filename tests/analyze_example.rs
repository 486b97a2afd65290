//! `examples/analyze.rs` against a real Prometheus: output and exit codes.

use std::path::PathBuf;
use std::process::{Command, Output};

use testkit::traffic::{now_secs, openmetrics, Traffic};

fn example() -> PathBuf {
    testkit::example_binary("analyze")
}

fn analyze(args: &[&str]) -> Output {
    Command::new(example()).args(args).output().unwrap()
}

#[test]
fn exit_codes_follow_the_decision() {
    let end = now_secs() - 3;
    let data = openmetrics(
        &[
            Traffic::healthy("v1", 50.0),
            Traffic::healthy("v2", 10.0),
            Traffic {
                error_ratio: 0.08,
                ..Traffic::healthy("v3", 10.0)
            },
        ],
        1200,
        15,
        end,
    );
    let prometheus = testkit::services::prometheus(&data);
    let url = prometheus.url.as_str();
    let at = end.to_string();

    let ok = analyze(&[
        "--prometheus-url",
        url,
        "--baseline",
        "v1",
        "--canary",
        "v2",
        "--at",
        &at,
        "--json",
    ]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&ok.stdout).expect("--json prints the Evaluation");
    assert_eq!(json["decision"], "proceed");
    assert_eq!(json["canary_version"], "v2");

    let bad = analyze(&[
        "--prometheus-url",
        url,
        "--baseline",
        "v1",
        "--canary",
        "v3",
        "--window",
        "5m",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    let text = String::from_utf8_lossy(&bad.stdout);
    assert!(text.starts_with("## v3 vs v1: ROLLBACK_AUTO"), "{text}");
    assert!(text.contains("| error_rate | 1% | 8% | 8× |"), "{text}");

    let missing = analyze(&[
        "--prometheus-url",
        url,
        "--baseline",
        "v1",
        "--canary",
        "v9",
        "--at",
        &at,
    ]);
    assert_eq!(missing.status.code(), Some(2));

    let down = analyze(&[
        "--prometheus-url",
        "http://127.0.0.1:9",
        "--baseline",
        "v1",
        "--canary",
        "v2",
    ]);
    assert_eq!(down.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&down.stderr).starts_with("error: could not fetch metrics"));

    let usage = analyze(&["--baseline", "v1"]);
    assert_eq!(usage.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&usage.stderr);
    assert!(
        stderr.contains("required") && stderr.contains("--prometheus-url"),
        "{stderr}"
    );
}

#[test]
fn blank_versions_and_overflowing_arguments_are_errors_never_a_decision() {
    // Nothing listens: a version check must fail before any query would.
    let base = ["--prometheus-url", "http://127.0.0.1:9"];
    for (flag, value) in [
        ("--canary", ""),
        ("--canary", " "),
        ("--baseline", ""),
        ("--canary", "v1\"} or vector(1) or {x=\""),
    ] {
        let mut args = base.to_vec();
        args.extend(["--baseline", "v1", "--canary", "v2"]);
        let i = args.iter().position(|a| *a == flag).unwrap();
        args[i + 1] = value;
        let out = analyze(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{value:?}: {stderr}");
        assert!(
            stderr.contains(flag) && stderr.contains("invalid version"),
            "{stderr}"
        );
    }
    // Nothing listens on port 9, so any decision would have to come from the arguments.
    let offline = |flag: &str, value: &str| {
        let base = [
            "--prometheus-url",
            "http://127.0.0.1:9",
            "--baseline",
            "v1",
            "--canary",
            "v2",
        ];
        analyze(&[&base[..], &[flag, value]].concat())
    };
    for window in ["18446744073709551615h", "99999999999999999999s", "5000000h"] {
        let out = offline("--window", window);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{window}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stderr.contains("--window"), "{stderr}");
    }
    let out = offline("--at", "1e300");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("out of range"));
}
