//! `examples/analyze.rs`: a wrapper over `canary analyze` that keeps the example's flags.

use std::path::PathBuf;
use std::process::{Command, Output};

fn example() -> PathBuf {
    testkit::example_binary("analyze")
}

fn analyze(args: &[&str]) -> Output {
    Command::new(example())
        .args(args)
        .env_remove("PROMETHEUS_URL")
        .output()
        .unwrap()
}

/// The example is `canary analyze --output markdown` (decisions and outputs are tested on the
/// binary in `canary-cli/tests/cli.rs`): it forwards its arguments and the exit code.
#[test]
fn it_forwards_arguments_and_exit_codes_to_the_command() {
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

    let usage = analyze(&["--baseline", "v1", "--canary", "v2"]);
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
