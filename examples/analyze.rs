//! Fetch a baseline and a canary from Prometheus, evaluate them with the default policy, and
//! print the evaluation.
//!
//! ```text
//! cargo run --example analyze -- --prometheus-url URL --baseline V1 --canary V2 \
//!     [--window 5m] [--at RFC3339|unix] [--json]
//! ```
//!
//! Exit code: 0 proceed, 1 rollback_auto, 2 rollback_manual, 3 error (on stderr).

use std::process::ExitCode;
use std::time::Duration;

use canary::prometheus::{PrometheusConfig, PrometheusSource};
use canary::{fetch_pair, Arm, MetricsQuery, RollbackDecision, RollbackPolicy, Version};
use chrono::{DateTime, TimeZone, Utc};

const USAGE: &str = "usage: analyze --prometheus-url URL --baseline V1 --canary V2 [--window 5m] [--at RFC3339|unix] [--json]";

struct Args {
    url: String,
    baseline: Version,
    canary: Version,
    window: Duration,
    at: Option<DateTime<Utc>>,
    json: bool,
}

fn parse_window(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .map_err(|_| format!("--window {text:?} is not a duration like 5m"))?;
    let unit_seconds: u64 = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("--window {text:?}: use s, m or h")),
    };
    // A window longer than a year is a typo, and would overflow date arithmetic later.
    const MAX_SECONDS: u64 = 366 * 24 * 3600;
    let seconds = n
        .checked_mul(unit_seconds)
        .filter(|&s| s <= MAX_SECONDS)
        .ok_or_else(|| format!("--window {text:?} is longer than a year"))?;
    if seconds == 0 {
        return Err("--window must be positive".into());
    }
    Ok(Duration::from_secs(seconds))
}

fn parse_at(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("--at {text:?} is neither RFC 3339 nor unix seconds"))?;
    // Between 1970 and 9999: anything else is a mistake, and would saturate silently.
    if !(0.0..=253_402_300_799.0).contains(&secs) {
        return Err(format!("--at {text:?} is out of range"));
    }
    Utc.timestamp_millis_opt((secs * 1000.0) as i64)
        .single()
        .ok_or_else(|| format!("--at {text:?} is out of range"))
}

/// The same validation as every other entry point: an empty label would select series
/// without any version label.
fn version(flag: &str, text: String) -> Result<Version, String> {
    Version::new(text).map_err(|e| format!("{flag}: {e}"))
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut url, mut baseline, mut canary) = (None, None, None);
    let (mut window, mut at, mut json) = (Duration::from_secs(300), None, false);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--prometheus-url" => url = Some(value()?),
            "--baseline" => baseline = Some(version("--baseline", value()?)?),
            "--canary" => canary = Some(version("--canary", value()?)?),
            "--window" => window = parse_window(&value()?)?,
            "--at" => at = Some(parse_at(&value()?)?),
            "--json" => json = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let missing = |name: &str| format!("{name} is required\n{USAGE}");
    Ok(Args {
        url: url.ok_or_else(|| missing("--prometheus-url"))?,
        baseline: baseline.ok_or_else(|| missing("--baseline"))?,
        canary: canary.ok_or_else(|| missing("--canary"))?,
        window,
        at,
        json,
    })
}

async fn run() -> Result<RollbackDecision, String> {
    let args = parse_args()?;
    let source =
        PrometheusSource::new(PrometheusConfig::new(&args.url)).map_err(|e| e.to_string())?;
    let at = args.at.unwrap_or_else(Utc::now);
    let b = MetricsQuery::new(args.baseline, Arm::Baseline, args.window).at(at);
    let c = MetricsQuery::new(args.canary, Arm::Canary, args.window).at(at);
    let (baseline, canary) = fetch_pair(&source, &b, &c).await;
    let chain = |e: canary::Error| canary::error::chain(&e);
    let (baseline, canary) = (baseline.map_err(chain)?, canary.map_err(chain)?);
    let evaluation = RollbackPolicy::default()
        .try_evaluate(&baseline, &canary)
        .map_err(chain)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&evaluation).map_err(|e| e.to_string())?
        );
    } else {
        println!("{}", evaluation.to_markdown());
    }
    Ok(evaluation.decision)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(RollbackDecision::Proceed) => ExitCode::from(0),
        Ok(RollbackDecision::RollbackAuto) => ExitCode::from(1),
        Ok(RollbackDecision::RollbackManual) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(3)
        }
    }
}
