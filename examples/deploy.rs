//! The guide's deploy script in Rust: deploy the canary with helm, wait, analyse against
//! production in Prometheus, promote or roll back, and tell Slack. It is `canary run` (the
//! `canary` command's flow) with the guide's judge (the threshold policy's single look, unless
//! `--judge` or `--config` chooses), kept so that scripts written against the example carry over.
//!
//! ```text
//! cargo run --example deploy -- --version v1.3.0 [--production-version v1.2.0]
//!     [--release apex-inference] [--chart examples/chart] [--namespace NS]
//!     [--values-file examples/chart/values-canary.yaml] [--prometheus-url URL]
//!     [--wait-minutes 15] [--progressive] [--report-file report.json] [--dry-run]
//! ```
//!
//! `PROMETHEUS_URL` and `SLACK_WEBHOOK_URL` are read from the environment, as in the guide;
//! `CANARY_TIME_SCALE` multiplies every wait (0: no waiting, for tests and dry runs).
//! With `--dry-run` the helm commands are printed, not run (pass `--production-version`,
//! since production cannot be asked). Exit code: 0 promoted, 1 rolled back, 2 held for manual
//! review, 3 error (the canary rolled back where it had been deployed), 130/143 cancelled.

fn main() {
    // The example has always printed the Markdown report; `--output` still overrides it.
    let given: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let given_flag = |flag: &str| given.iter().any(|a| a.to_string_lossy().starts_with(flag));
    let markdown = !given_flag("--output");
    // The guide's script looks once after the warm-up: the threshold policy, unless `--judge`
    // (or a config file) says otherwise. `canary run` itself defaults to the sequential judge.
    let guide_judge = !given_flag("--judge") && !given_flag("--config");
    let args = ["canary", "run"]
        .into_iter()
        .chain(
            markdown
                .then_some(["--output", "markdown"])
                .into_iter()
                .flatten(),
        )
        .chain(
            guide_judge
                .then_some(["--judge", "threshold"])
                .into_iter()
                .flatten(),
        )
        .map(std::ffi::OsString::from)
        .chain(given);
    std::process::exit(canary_cli::run(args));
}
