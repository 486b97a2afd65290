//! The guide's deploy script in Rust: deploy the canary with helm, wait, analyse against
//! production in Prometheus, promote or roll back, and tell Slack.
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
//! since production cannot be asked). Exit code: 0 if the canary was promoted, 1 otherwise,
//! 2 for bad arguments.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use canary::helm::{HelmConfig, HelmDeployer};
use canary::notify::SlackNotifier;
use canary::prometheus::{PrometheusConfig, PrometheusSource};
use canary::{CanaryValidator, ValidationRequest, ValidatorConfig, Version};

const USAGE: &str = "usage: deploy --version V [--production-version V] [--release NAME] [--chart PATH] [--namespace NS] \
[--values-file FILE] [--prometheus-url URL] [--wait-minutes N] [--progressive] [--report-file FILE] [--dry-run]";

struct Args {
    version: Version,
    production: Option<Version>,
    helm: HelmConfig,
    values_file: Option<String>,
    prometheus_url: String,
    wait: Duration,
    progressive: bool,
    report_file: Option<String>,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let (mut version, mut production, mut values_file, mut report_file) = (None, None, None, None);
    let mut helm = HelmConfig {
        chart: "examples/chart".into(),
        ..Default::default()
    };
    let mut prometheus_url =
        std::env::var("PROMETHEUS_URL").unwrap_or_else(|_| "http://prometheus:9090".into());
    let (mut wait, mut progressive) = (Duration::from_secs(15 * 60), false);
    let version_of = |s: String| Version::new(s).map_err(|e| e.to_string());
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--version" => version = Some(version_of(value()?)?),
            "--production-version" => {
                let v = value()?;
                if !v.is_empty() {
                    production = Some(version_of(v)?);
                }
            }
            "--release" => helm.release = value()?,
            "--chart" => helm.chart = value()?,
            "--namespace" => helm.namespace = Some(value()?),
            "--values-file" => values_file = Some(value()?),
            "--prometheus-url" => prometheus_url = value()?,
            "--wait-minutes" => {
                let m: f64 = value()?
                    .parse()
                    .map_err(|_| "--wait-minutes takes a number".to_owned())?;
                wait = Duration::try_from_secs_f64(m * 60.0)
                    .ok()
                    .filter(|d| *d <= canary::ValidatorConfig::MAX_WARMUP)
                    .ok_or_else(|| {
                        "--wait-minutes must be a number of minutes between 0 and 10080 (a week)"
                            .to_owned()
                    })?;
            }
            "--progressive" => progressive = true,
            "--report-file" => report_file = Some(value()?),
            "--dry-run" => helm.dry_run = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let version = version.ok_or_else(|| format!("--version is required\n{USAGE}"))?;
    Ok(Args {
        version,
        production,
        helm,
        values_file,
        prometheus_url,
        wait,
        progressive,
        report_file,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    // Colour only on a terminal, and never with NO_COLOR: logs written to a file stay plain.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let setup = || -> Result<(Arc<HelmDeployer>, CanaryValidator), String> {
        let source = PrometheusSource::new(PrometheusConfig::new(&args.prometheus_url))
            .map_err(|e| e.to_string())?;
        let helm = Arc::new(HelmDeployer::new(args.helm.clone()).map_err(|e| e.to_string())?);
        let config = ValidatorConfig {
            warmup: args.wait,
            progressive_weights: if args.progressive {
                canary::DEFAULT_PROGRESSIVE_WEIGHTS.to_vec()
            } else {
                vec![]
            },
            ..Default::default()
        };
        let clock = canary::ScaledClock::from_env().map_err(|e| e.to_string())?;
        let mut validator = CanaryValidator::new(Arc::new(source), helm.clone())
            .with_config(config)
            .map_err(|e| e.to_string())?
            .with_clock(Arc::new(clock));
        if let Some(hook) = std::env::var("SLACK_WEBHOOK_URL")
            .ok()
            .filter(|h| !h.is_empty())
        {
            validator = validator.with_notifier(Arc::new(
                SlackNotifier::new(hook).map_err(|e| e.to_string())?,
            ));
        }
        Ok((helm, validator))
    };
    let (helm, validator) = match setup() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut request = ValidationRequest::new(args.version.clone());
    if let Some(p) = args.production {
        request = request.with_baseline(p);
    }
    if let Some(f) = &args.values_file {
        request = request.with_values_file(f);
    }
    let report = validator.validate(request).await;
    println!("{}", report.to_markdown());
    if args.helm.dry_run {
        println!("### helm commands (dry run, not run)\n");
        for c in helm.commands() {
            println!("helm {}", c.join(" "));
        }
    }
    if let Some(path) = &args.report_file {
        if let Err(e) = std::fs::write(path, report.to_json()) {
            eprintln!("error: cannot write {path}: {e}");
        }
    }
    if report.success {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
