//! Fetch a baseline and a canary from Prometheus, evaluate them with the default policy, and
//! print the evaluation: `canary analyze` with Markdown output, kept so that scripts written
//! against the example carry over (the `canary` command is the real thing).
//!
//! ```text
//! cargo run --example analyze -- --prometheus-url URL --baseline V1 --canary V2 \
//!     [--window 5m] [--at RFC3339|unix] [--json]
//! ```
//!
//! Exit code: 0 proceed, 1 rollback_auto, 2 rollback_manual, 3 error (on stderr).

fn main() {
    let args = ["canary", "analyze", "--output", "markdown"]
        .into_iter()
        .map(std::ffi::OsString::from)
        .chain(std::env::args_os().skip(1));
    std::process::exit(canary_cli::run(args));
}
