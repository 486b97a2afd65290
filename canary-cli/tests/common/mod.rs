//! What the binary's tests share: a real Prometheus holding 20 minutes of production (`v1`), a
//! healthy canary (`v2`) and one failing 8 % of its requests (`v3`).

// Each test binary uses some of these, none uses all.
#![allow(dead_code)]

use std::process::{Command, Output};

use testkit::services::Service;
use testkit::traffic::{now_secs, openmetrics, production_and_two_canaries};

/// The Prometheus and the instant its data ends (unix seconds).
pub(crate) fn prometheus() -> (Service, i64) {
    let end = now_secs() - 3;
    let data = openmetrics(&production_and_two_canaries(), 1200, 15, end);
    (testkit::services::prometheus(&data), end)
}

/// `canary serve`'s answer on `port` for `canary` against `v1` at `end`, as JSON; panics unless
/// the service answered 200.
pub(crate) fn analysis(port: u16, canary: &str, end: i64) -> serde_json::Value {
    let (status, body) = testkit::services::get(
        port,
        &format!("/v1/analysis?baseline=v1&canary={canary}&at={end}"),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let body = body.split("\r\n\r\n").last().unwrap();
    serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The `canary` binary with none of the user's environment that would change what it does:
/// no Prometheus, Slack or token from the environment, no colour.
pub(crate) fn command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_canary"));
    c.env_remove("PROMETHEUS_URL")
        .env_remove("SLACK_WEBHOOK_URL")
        .env_remove("CANARY_AUTH_TOKEN")
        .env("NO_COLOR", "1");
    c
}

/// Runs `canary` with `args` (see [`command`]).
pub(crate) fn canary(args: &[&str]) -> Output {
    command().args(args).output().unwrap()
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
