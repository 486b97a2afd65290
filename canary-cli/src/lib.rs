//! The `canary` command: decide from the terminal or a CI job whether a canary may be promoted.
//!
//! The binary is a thin `main` over [`run`], so the same code serves `cargo install
//! canary-cli`, the workspace's examples and tests.
//!
//! ```no_run
//! // What `canary analyze --prometheus-url http://prometheus:9090 --baseline v1 --canary v2` does:
//! let code = canary_cli::run(["canary", "analyze", "--prometheus-url", "http://prometheus:9090",
//!     "--baseline", "v1", "--canary", "v2"]);
//! std::process::exit(code);
//! ```
//!
//! | exit code | `analyze` | `run` |
//! |---|---|---|
//! | 0 | proceed | promoted |
//! | 1 | rollback_auto | rolled back |
//! | 2 | rollback_manual (a person decides) | held for manual review |
//! | 3 | error: bad invocation, unreachable Prometheus, invalid data | failed (the canary rolled back where it had been deployed) |
//! | 130 / 143 | | cancelled by Ctrl-C / SIGTERM (the canary rolled back) |

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use canary_core::judge::{
    ArgoParameters, FlaggerParameters, JudgeFactory, KayentaParameters, SequentialParameters,
};
use canary_core::report::{comparison_cells, SeriesPair};
use canary_core::{
    fetch_pair, Arm, BaselineArm, CanaryValidator, Evaluation, MetricsQuery, Outcome, Region,
    RollbackDecision, ScaledClock, ValidationReport, ValidationRequest, ValidatorConfig, Version,
};
use canary_helm::{HelmConfig, HelmDeployer};
use canary_notify::SlackNotifier;
use canary_prometheus::{PrometheusConfig, PrometheusSource};
use chrono::{DateTime, Utc};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

pub mod backtest;
pub mod config;
pub use canary_core::duration;
pub mod html;
pub mod progress;
pub mod retrospective;

/// Exit code: promote.
pub const EXIT_PROCEED: i32 = 0;
/// Exit code: roll back.
pub const EXIT_ROLLBACK: i32 = 1;
/// Exit code: a person decides.
pub const EXIT_MANUAL: i32 = 2;
/// Exit code: something went wrong before a decision.
pub const EXIT_ERROR: i32 = 3;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "canary",
    version,
    about = "Decide whether a canary deployment may be promoted, and say why.",
    after_help = concat!(
        "Exit codes: analyze: 0 proceed, 1 rollback_auto, 2 rollback_manual, 3 error;\n",
        "run: 0 promoted, 1 rolled back, 2 held for review, 3 error, 130/143 cancelled.\n",
        "Each subcommand's --help has examples."
    )
)]
pub struct Cli {
    /// More log output on stderr (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compare the canary with production once, from Prometheus, and print the decision.
    #[command(after_help = concat!(
        "Examples:\n",
        "  canary analyze --prometheus-url http://prometheus:9090 --baseline v1.2.0 --canary v1.3.0\n",
        "  canary analyze --prometheus-url $PROMETHEUS_URL --baseline v1 --canary v2 --window 10m --output json\n",
        "  canary analyze ... --at 2026-11-28T12:00:00Z   (judge a past window)\n",
        "  canary analyze ... --judge sequential --since 2026-11-28T11:00:00Z --until 2026-11-28T12:00:00Z\n",
        "      (replay a past canary run through any judge, as Kayenta's retrospective analysis)\n\n",
        "Exit codes: 0 proceed, 1 rollback_auto, 2 rollback_manual, 3 error."
    ))]
    Analyze(AnalyzeArgs),
    /// The guide's whole flow: deploy the canary, warm up, analyse, promote or roll back,
    /// notify, write the report.
    #[command(after_help = concat!(
        "Examples:\n",
        "  canary run --version v1.3.0 --chart ./chart --values-file values-canary.yaml\n",
        "  canary run --version v1.3.0 --progressive --report-file report.json --summary-file \"$GITHUB_STEP_SUMMARY\"\n",
        "  canary run --version v1.3.0 --production-version v1.2.0 --dry-run   (print the helm commands)\n",
        "  canary run --version v1.3.0 --judge sequential   (judge at every scrape; decide as soon as certain)\n\n",
        "Environment: PROMETHEUS_URL, SLACK_WEBHOOK_URL, CANARY_TIME_SCALE (multiplies every wait; 0 for none).\n",
        "Exit codes: 0 promoted, 1 rolled back, 2 held for manual review, 3 error (the canary rolled back\n",
        "where it had been deployed), 130/143 cancelled by Ctrl-C/SIGTERM (the canary rolled back)."
    ))]
    Run(RunArgs),
    /// Render a saved report (the JSON written by `--report-file`).
    #[command(after_help = concat!(
        "Examples:\n",
        "  canary report canary-report.json --format markdown >> \"$GITHUB_STEP_SUMMARY\"\n",
        "  canary report canary-report.json --format json --out report.json\n\n",
        "Exit codes: 0 rendered, 3 error."
    ))]
    Report(ReportArgs),
    /// Check the config file, print a commented example, or print its JSON Schema.
    #[command(after_help = concat!(
        "Examples:\n",
        "  canary config check canary.yaml\n",
        "  canary config example > canary.yaml\n",
        "  canary config schema > canary.schema.json\n\n",
        "Exit codes: 0 valid, 3 invalid (one line: the file, line and column, what is wrong)."
    ))]
    Config {
        /// What to do with it.
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Serve the judge over HTTP: Argo Rollouts' web metrics and Flagger's webhooks ask it.
    #[command(after_help = concat!(
        "Examples:\n",
        "  canary serve --config canary.yaml --listen 0.0.0.0:8080\n",
        "  canary serve --prometheus-url http://prometheus:9090 --listen 127.0.0.1:8080\n",
        "  curl 'http://127.0.0.1:8080/v1/analysis?baseline=v1.2.0&canary=v1.3.0'\n\n",
        "Routes: /v1/analysis (GET or POST), /v1/flagger/gate, /v1/flagger/confirm-promotion,\n",
        "/v1/flagger/rollback, /metrics, /healthz, /readyz. CANARY_AUTH_TOKEN (or serve.auth_token)\n",
        "requires a bearer token.\n\n",
        "Exit codes: 0 stopped by SIGTERM, SIGHUP or Ctrl-C (requests in flight finished), 3 error."
    ))]
    Serve(ServeArgs),
    /// Measure the judges on production's own history: pseudo-canary runs of its pods (A/A),
    /// injected regressions, a CI gate, and calibration.
    #[command(after_help = concat!(
        "Examples:\n",
        "  canary backtest --config canary.yaml --version v1.2.0 --since 14d\n",
        "  canary backtest --config canary.yaml --version v1.2.0 --since 14d --judge sequential,threshold \\\n",
        "      --inject latency+10%,errors*2 --max-false-rollback 0.05\n",
        "  canary backtest --config canary.yaml --version v1.2.0 --since 28d --calibrate 0.01 --output markdown\n\n",
        "Each run takes --canary-pods of the pods running then (seeded) as the canary and the rest as\n",
        "the baseline, and judges it as `canary run` would (warm-up, steps, validator.max_duration).\n",
        "Exit codes: 0 done (and within --max-false-rollback), 1 the configured judge's false-rollback\n",
        "upper bound is above --max-false-rollback, 3 error (too little history, one pod, Prometheus)."
    ))]
    Backtest(backtest::BacktestArgs),
    /// Print a shell completion script.
    #[command(after_help = concat!(
        "Examples:\n",
        "  canary completions bash > /etc/bash_completion.d/canary\n",
        "  canary completions zsh > \"${fpath[1]}/_canary\"\n",
        "  canary completions fish > ~/.config/fish/completions/canary.fish"
    ))]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `canary config`.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Check a config file: unknown keys, wrong types, missing variables and secret files.
    #[command(after_help = concat!(
        "Examples:\n",
        "  canary config check canary.yaml\n",
        "  TENANT=team-a canary config check examples/canary.yaml\n\n",
        "Exit codes: 0 valid, 3 invalid (one line: the file, line and column, what is wrong)."
    ))]
    Check {
        /// The file.
        file: PathBuf,
    },
    /// Print the commented example (the guide's setup).
    #[command(after_help = concat!(
        "Examples:\n",
        "  canary config example > canary.yaml\n",
        "  canary config example | diff - canary.yaml"
    ))]
    Example,
    /// Print the config's JSON Schema (for editors: e.g. `# yaml-language-server: $schema=...`).
    #[command(after_help = concat!(
        "Examples:\n",
        "  canary config schema > canary.schema.json\n",
        "  # then, first line of canary.yaml: # yaml-language-server: $schema=canary.schema.json"
    ))]
    Schema,
}

/// How to print a result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// An aligned table for terminals (coloured on a TTY unless `NO_COLOR` is set).
    Table,
    /// The whole evidence as JSON.
    Json,
    /// Markdown, for job summaries and pull-request comments.
    Markdown,
    /// One self-contained HTML page with a chart per metric (no JavaScript, works offline).
    Html,
}

/// `canary analyze`.
#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// The config file (`canary.yaml`); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Prometheus's base URL (default: the config file's `prometheus.url`).
    #[arg(long, env = "PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,
    /// Production's version label.
    #[arg(long, value_parser = version)]
    pub baseline: Version,
    /// The canary's version label.
    #[arg(long, value_parser = version)]
    pub canary: Version,
    /// The window rates and quantiles are taken over: 90s, 5m, 1h30m (default: the config
    /// file's `validator.analysis_window`, else 5m).
    #[arg(long, value_parser = duration::parse_window)]
    pub window: Option<Duration>,
    /// The end of the window: RFC 3339 or unix seconds (default: now).
    #[arg(long, value_parser = instant)]
    pub at: Option<DateTime<Utc>>,
    /// Judge the canary's run with this judge instead of one look at the window: replayed
    /// from `--since` (default: where the canary's series begin in `serve.start_lookback`)
    /// to `--until` or the validator's maximum duration.
    #[arg(long, value_enum, conflicts_with = "window")]
    pub judge: Option<JudgeName>,
    /// The canary run's start, for `--judge` (RFC 3339 or unix seconds).
    #[arg(long, value_parser = instant, requires = "judge")]
    pub since: Option<DateTime<Utc>>,
    /// The last instant judged, for `--judge` (default: `--at`, else now).
    #[arg(long, value_parser = instant, requires = "judge", conflicts_with = "at")]
    pub until: Option<DateTime<Utc>>,
    /// How to print the evaluation.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Shorthand for `--output json` (it wins over `--output`).
    #[arg(long)]
    pub json: bool,
}

/// Which judge decides.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum JudgeName {
    /// The guide's policy, one look after the warm-up (the default).
    #[default]
    Threshold,
    /// The sequential, anytime-valid judge, at every scrape.
    Sequential,
    /// Flagger's analysis.
    Flagger,
    /// An Argo Rollouts analysis.
    Argo,
    /// Kayenta's NetflixACAJudge.
    Kayenta,
}

/// `canary serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The config file (`canary.yaml`): Prometheus, queries, thresholds, judge, and its
    /// `serve` section; flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Prometheus (or Thanos, Mimir); required without a config file.
    #[arg(long, env = "PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,
    /// Where to listen (default: the config's, else 0.0.0.0:8080).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// The judge (default: the config's, else the guide's threshold policy).
    #[arg(long, value_enum)]
    pub judge: Option<JudgeName>,
}

/// `canary run`: the deploy example's flags, unchanged.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The canary's version.
    #[arg(long, value_parser = version)]
    pub version: Version,
    /// Production's version (default: asked from helm). Required with `--dry-run`.
    #[arg(long, value_parser = optional_version)]
    pub production_version: Option<OptionalVersion>,
    /// The config file (`canary.yaml`); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The helm release (default: the config's, else `apex-inference`).
    #[arg(long)]
    pub release: Option<String>,
    /// The chart (default: the config's, else `examples/chart`).
    #[arg(long)]
    pub chart: Option<String>,
    /// The namespace.
    #[arg(long)]
    pub namespace: Option<String>,
    /// A values file for the canary (the guide's `values-canary.yaml`).
    #[arg(long)]
    pub values_file: Option<String>,
    /// Prometheus's base URL (default: the config's, else `http://prometheus:9090`).
    #[arg(long, env = "PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,
    /// The warm-up before the analysis, in minutes (default: the config's, else the deploy
    /// script's 15).
    #[arg(long, value_parser = minutes)]
    pub wait_minutes: Option<Duration>,
    /// Progressive traffic: 5, 10, 25, 50 %.
    #[arg(long)]
    pub progressive: bool,
    /// Which judge decides (default: the config's, else `threshold`).
    #[arg(long, value_enum)]
    pub judge: Option<JudgeName>,
    /// Write the report as JSON here.
    #[arg(long)]
    pub report_file: Option<PathBuf>,
    /// Append the Markdown report here (e.g. `$GITHUB_STEP_SUMMARY`).
    #[arg(long)]
    pub summary_file: Option<PathBuf>,
    /// How to print the report on stdout: a table per step for terminals, the Markdown report,
    /// JSON, or one HTML page with charts.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Print the helm commands instead of running them (no waiting).
    #[arg(long)]
    pub dry_run: bool,
    /// What the canary is compared with: `production` (the guide's) or a `deployed` baseline
    /// (`<release>-baseline`: production's version at the canary's size and weight, removed at
    /// the end). Overrides the file's `validator.baseline`.
    #[arg(long, value_enum)]
    pub baseline: Option<BaselineChoice>,
}

/// A version that may be given empty (the deploy script passes `""` for "ask helm").
#[derive(Clone, Debug)]
pub struct OptionalVersion(pub Option<Version>);

/// `--baseline`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BaselineChoice {
    /// Production's pods.
    Production,
    /// A baseline deployed for the run.
    Deployed,
}

fn optional_version(text: &str) -> Result<OptionalVersion, String> {
    if text.is_empty() {
        Ok(OptionalVersion(None))
    } else {
        version(text).map(|v| OptionalVersion(Some(v)))
    }
}

/// `canary report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The saved report (JSON).
    pub report: PathBuf,
    /// How to render it.
    #[arg(long, value_enum, default_value_t = ReportFormat::Markdown)]
    pub format: ReportFormat,
    /// Write here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// How to render a saved report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Markdown.
    Markdown,
    /// JSON, as saved (normalised).
    Json,
    /// One self-contained HTML page with a chart per metric.
    Html,
}

fn version(text: &str) -> Result<Version, String> {
    Version::new(text).map_err(|e| e.to_string())
}

fn instant(text: &str) -> Result<DateTime<Utc>, String> {
    duration::instant(text)
}

/// Runs the command line `args` (the first is the program's name) and returns the exit code.
/// Data goes to stdout, errors to stderr as one line.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version are answers, not errors; any other parse failure is exit 3,
            // never clap's 2 (which means manual review here).
            if !e.use_stderr() {
                let _ = e.print();
                return 0;
            }
            // One line naming what is wrong, and where to look.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("error: invalid arguments");
            let detail: Vec<&str> = text
                .lines()
                .skip(1)
                .map(str::trim)
                .take_while(|l| !l.is_empty())
                .collect();
            if detail.is_empty() {
                eprintln!("{first} (try --help)");
            } else {
                eprintln!("{first} {} (try --help)", detail.join(", "));
            }
            return EXIT_ERROR;
        }
    };
    match execute(cli) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            EXIT_ERROR
        }
    }
}

fn execute(cli: Cli) -> Result<i32, String> {
    match cli.command {
        Command::Analyze(args) => analyze(args),
        Command::Run(args) => {
            // A dry run never waits; otherwise waits last CANARY_TIME_SCALE times as long.
            let factor = if args.dry_run {
                0.0
            } else {
                ScaledClock::from_env().map_or(1.0, |c| c.factor())
            };
            let display = (!cli.quiet).then(|| progress::Display::new(factor));
            logging(
                cli.verbose,
                cli.quiet,
                display.as_ref().map(|d| d.log_writer()),
            );
            run_flow(args, display)
        }
        Command::Report(args) => report(args),
        Command::Backtest(args) => {
            logging(cli.verbose, cli.quiet, None);
            backtest::run(args)
        }
        Command::Serve(args) => {
            logging(cli.verbose, cli.quiet, None);
            serve(args)
        }
        Command::Config { action } => match action {
            ConfigAction::Check { file } => {
                config::load(&file)?;
                println!("{}: ok", file.display());
                Ok(0)
            }
            ConfigAction::Example => {
                print(config::EXAMPLE)?;
                Ok(0)
            }
            ConfigAction::Schema => {
                let text = serde_json::to_string_pretty(&config::schema())
                    .map_err(|e| format!("cannot write the schema: {e}"))?;
                print(&format!("{text}\n"))?;
                Ok(0)
            }
        },
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "canary", &mut std::io::stdout());
            Ok(0)
        }
    }
}

fn analyze(args: AnalyzeArgs) -> Result<i32, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let chain = |e: canary_core::Error| canary_core::error::chain(&e);
    let file = args.config.as_deref().map(config::load).transpose()?;
    let prometheus = required_prometheus(file.as_ref(), args.prometheus_url.as_deref())?;
    let policy = config::policy(file.as_ref())?;
    let window = args
        .window
        .or(file.as_ref().map(|f| f.validator.analysis_window))
        .unwrap_or(ValidatorConfig::default().analysis_window);
    let output = if args.json { Output::Json } else { args.output };
    if let Some(judge) = args.judge {
        return retrospective(&runtime, file.as_ref(), prometheus, judge, &args, output);
    }
    let (evaluation, series) = runtime.block_on(async {
        let source =
            PrometheusSource::new(prometheus).map_err(|e| canary_core::error::chain(&e))?;
        let at = args.at.unwrap_or_else(Utc::now);
        let b = MetricsQuery::new(args.baseline.clone(), Arm::Baseline, window).at(at);
        let c = MetricsQuery::new(args.canary.clone(), Arm::Canary, window).at(at);
        let (baseline, canary) = fetch_pair(&source, &b, &c).await;
        let (baseline, canary) = (baseline.map_err(chain)?, canary.map_err(chain)?);
        let evaluation = policy.try_evaluate(&baseline, &canary).map_err(chain)?;
        // Only a page with charts needs the series; a chart is never evidence.
        let series = if output == Output::Html {
            let scrape = ValidatorConfig::default().judge_step;
            SeriesPair::fetch(&source, &b, &c, scrape)
                .await
                .unwrap_or_else(|e| {
                    eprintln!("warning: no charts: {}", chain(e));
                    Vec::new()
                })
        } else {
            Vec::new()
        };
        Ok::<_, String>((evaluation, series))
    })?;
    let text = match output {
        Output::Json => serde_json::to_string_pretty(&evaluation).map_err(|e| e.to_string())?,
        Output::Markdown => evaluation.to_markdown(),
        Output::Table => table(&evaluation, colour()),
        Output::Html => html::evaluation(&evaluation, &series),
    };
    print(&text)?;
    Ok(exit_code(evaluation.decision))
}

/// `canary analyze --judge`: see [`retrospective`](crate::retrospective).
fn retrospective(
    runtime: &tokio::runtime::Runtime,
    file: Option<&config::CanaryConfig>,
    prometheus: PrometheusConfig,
    judge: JudgeName,
    args: &AnalyzeArgs,
    output: Output,
) -> Result<i32, String> {
    let until = args.until.or(args.at).unwrap_or_else(Utc::now);
    let (r, series) = runtime.block_on(async {
        let source =
            PrometheusSource::new(prometheus).map_err(|e| canary_core::error::chain(&e))?;
        let r = retrospective::judge_run(
            &source,
            file,
            judge,
            &args.baseline,
            &args.canary,
            args.since,
            until,
        )
        .await
        .map_err(|e| canary_core::error::chain(&e))?;
        let series = if output == Output::Html {
            retrospective::series(&source, &r, &args.baseline, &args.canary).await
        } else {
            Vec::new()
        };
        Ok::<_, String>((r, series))
    })?;
    let heading = format!(
        "{} judge over {} to {} ({} looks)",
        r.judge,
        r.start.format("%Y-%m-%d %H:%M:%S UTC"),
        r.end.format("%Y-%m-%d %H:%M:%S UTC"),
        r.looks
    );
    let undecided = || {
        format!(
            "{}: {}",
            RollbackDecision::RollbackManual.as_str(),
            r.reason.as_deref().unwrap_or("undecided")
        )
    };
    let text = match output {
        Output::Json => {
            serde_json::to_string_pretty(&retrospective::to_json(&r)?).map_err(|e| e.to_string())?
        }
        Output::Markdown => match &r.evaluation {
            Some(e) => format!("_{heading}_\n\n{}", e.to_markdown()),
            None => format!("_{heading}_\n\n**{}**\n", undecided()),
        },
        Output::Table => match &r.evaluation {
            Some(e) => format!("{heading}\n{}", table(e, colour())),
            None => format!("{heading}\n{}\n", undecided()),
        },
        Output::Html => html::retrospective(&r, &series),
    };
    print(&text)?;
    Ok(exit_code(r.decision()))
}

/// `text` in the ANSI style `code` when `colour` is on.
fn paint(text: &str, code: &str, colour: bool) -> String {
    if colour {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// A whole run for a terminal: the outcome, each step's table, the actions.
pub fn run_table(r: &ValidationReport, colour: bool) -> String {
    let paint = |text: &str, code: &str| paint(text, code, colour);
    let outcome = r.outcome.as_str().replace('_', " ").to_uppercase();
    let code = match r.outcome {
        Outcome::Promoted => "1;32",
        Outcome::RolledBack => "1;31",
        Outcome::HeldForReview => "1;33",
        _ => "1",
    };
    let mut out = format!(
        "canary {} vs {}: {}\n{}\n",
        r.version,
        r.baseline_version.as_deref().unwrap_or("unknown baseline"),
        paint(&outcome, code),
        r.reason
    );
    for s in &r.steps {
        let mut title = format!("step {}", s.step);
        if let Some(region) = &s.region {
            title = format!("{region}, {title}");
        }
        if let Some(w) = s.weight {
            title.push_str(&format!(" at {w}%"));
        }
        out.push_str(&format!("\n── {title} ──\n"));
        out.push_str(&table(&s.evaluation, colour));
    }
    if !r.actions.is_empty() {
        out.push_str("\nactions:\n");
        for a in &r.actions {
            let region = a
                .region
                .as_deref()
                .map(|g| format!("[{g}] "))
                .unwrap_or_default();
            let result = match &a.error {
                None => "ok".to_owned(),
                Some(e) => paint(&format!("FAILED: {e}"), "31"),
            };
            out.push_str(&format!(
                "  {} {region}{} — {result}\n",
                a.at.format("%H:%M:%S"),
                a.action.describe()
            ));
        }
    }
    for n in &r.notifications {
        out.push_str(&match &n.error {
            None => format!("notified {}\n", n.notifier),
            Some(e) => format!("NOT notified {}: {e}\n", n.notifier),
        });
    }
    out
}

/// The exit code a decision maps to.
pub fn exit_code(decision: RollbackDecision) -> i32 {
    match decision {
        RollbackDecision::Proceed => EXIT_PROCEED,
        RollbackDecision::RollbackAuto => EXIT_ROLLBACK,
        RollbackDecision::RollbackManual => EXIT_MANUAL,
    }
}

fn report(args: ReportArgs) -> Result<i32, String> {
    let text = config::read_limited(&args.report, config::MAX_REPORT_BYTES, "the report")?;
    let report: ValidationReport = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{} is not a canary report: {e} (line {}, column {})",
            args.report.display(),
            e.line(),
            e.column()
        )
    })?;
    let rendered = match args.format {
        ReportFormat::Markdown => report.to_markdown(),
        ReportFormat::Json => report.to_json(),
        ReportFormat::Html => html::report(&report),
    };
    match args.out {
        Some(path) => std::fs::write(&path, rendered)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        None => print(&rendered)?,
    }
    Ok(0)
}

fn print(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{}", text.trim_end()) {
        // A reader that stopped early (`| head`) is not an error worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.map_err(|e| format!("cannot write to stdout: {e}")),
    }
}

/// Colour only on a terminal, and never with `NO_COLOR` set (<https://no-color.org>).
fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The evaluation as an aligned terminal table: the decision and reason first, then one row
/// per metric, then what fired.
pub fn table(e: &Evaluation, colour: bool) -> String {
    let paint = |text: &str, code: &str| paint(text, code, colour);
    let decision = e.decision.as_str().to_uppercase();
    let banner = match e.decision {
        RollbackDecision::Proceed => paint(&decision, "1;32"),
        RollbackDecision::RollbackAuto => paint(&decision, "1;31"),
        RollbackDecision::RollbackManual => paint(&decision, "1;33"),
    };
    let mut out = format!(
        "{} vs {}: {banner}\n{}\n\n",
        e.canary_version, e.baseline_version, e.primary_reason
    );
    let header = [
        "metric",
        "baseline",
        "canary",
        "ratio",
        "change",
        "threshold",
        "status",
    ];
    let rows: Vec<[String; 7]> = e
        .comparisons
        .iter()
        .map(|c| comparison_cells(c).map(|cell| cell.replace("**", "")))
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    out += &line(&header.map(String::from));
    out.push('\n');
    for r in &rows {
        let text = line(r);
        let text = match r[6].as_str() {
            "degraded" => paint(&text, "31"),
            "no data" => paint(&text, "33"),
            _ => text,
        };
        out += &text;
        out.push('\n');
    }
    let samples = |v: Option<f64>| v.map_or_else(|| "no data".to_owned(), canary_core::format::num);
    out += &format!(
        "\nsamples: baseline {}, canary {} (minimum {})\n",
        samples(e.baseline_samples),
        samples(e.canary_samples),
        canary_core::format::num(e.min_sample_count)
    );
    for c in &e.triggered_conditions {
        out += &format!("- {}\n", c.message);
    }
    out += &format!("\n{}\n", e.recommendation);
    out
}

/// Logs on stderr: `RUST_LOG` if set, else `canary=info` (`-v`: debug, `-vv`: trace, `-q`:
/// errors only); colour only on a terminal without `NO_COLOR`.
fn logging(verbose: u8, quiet: bool, writer: Option<progress::LogWriter>) {
    use tracing_subscriber::EnvFilter;
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "canary=info,canary_core=info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour);
    let _ = match writer {
        Some(w) => builder.with_writer(OneLine(w)).try_init(),
        None => builder.with_writer(OneLine(std::io::stderr)).try_init(),
    };
}

/// Every log event on one line, whatever its fields hold: a line break inside an event (a
/// client's value, a server's error body) is written as `\n`, so nothing can forge a line.
struct OneLine<M>(M);

impl<'a, M: tracing_subscriber::fmt::MakeWriter<'a>> tracing_subscriber::fmt::MakeWriter<'a>
    for OneLine<M>
{
    type Writer = OneLineWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        OneLineWriter(self.0.make_writer())
    }
}

/// The writer of [`OneLine`]: the formatter writes each event whole, ending in its newline.
struct OneLineWriter<W>(W);

impl<W: std::io::Write> std::io::Write for OneLineWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (body, end) = match buf.strip_suffix(b"\n") {
            Some(body) => (body, &b"\n"[..]),
            None => (buf, &b""[..]),
        };
        if !body.iter().any(|b| matches!(b, b'\n' | b'\r')) {
            self.0.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut escaped = Vec::with_capacity(buf.len() + 8);
        for &b in body {
            match b {
                b'\n' => escaped.extend_from_slice(b"\\n"),
                b'\r' => escaped.extend_from_slice(b"\\r"),
                b => escaped.push(b),
            }
        }
        escaped.extend_from_slice(end);
        self.0.write_all(&escaped)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// The judge factory for `--judge`, with the config's parameters where it has them; `None` is
/// the guide's single look.
fn judge_factory(
    name: JudgeName,
    file: Option<&config::CanaryConfig>,
) -> Option<Arc<dyn JudgeFactory>> {
    match name {
        JudgeName::Threshold => None,
        JudgeName::Sequential => Some(Arc::new(
            file.map_or_else(SequentialParameters::default, |f| f.sequential.clone()),
        )),
        JudgeName::Flagger => Some(Arc::new(
            file.map_or_else(FlaggerParameters::default, |f| f.flagger.clone()),
        )),
        JudgeName::Argo => Some(Arc::new(
            file.map_or_else(ArgoParameters::default, |f| f.argo.clone()),
        )),
        JudgeName::Kayenta => Some(Arc::new(
            file.map_or_else(KayentaParameters::default, |f| f.kayenta.clone()),
        )),
    }
}

/// Which signal cancelled the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signal {
    Interrupt,
    Terminate,
}

/// Completes on Ctrl-C or SIGTERM, saying which.
async fn cancelled(which: Arc<std::sync::Mutex<Option<Signal>>>) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    let signal = tokio::select! {
        _ = interrupt => Signal::Interrupt,
        () = terminate => Signal::Terminate,
    };
    if let Ok(mut w) = which.lock() {
        *w = Some(signal);
    }
}

/// Completes on Ctrl-C, SIGTERM or SIGHUP: the service drains on each.
async fn cancelled_or_hangup(which: Arc<std::sync::Mutex<Option<Signal>>>) {
    #[cfg(unix)]
    let hangup = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let hangup = std::future::pending::<()>();
    tokio::select! {
        () = cancelled(which) => {}
        () = hangup => tracing::info!("SIGHUP: draining as for SIGTERM"),
    }
}

/// `canary serve`: the judge over HTTP until SIGTERM, SIGHUP or Ctrl-C.
fn serve(args: ServeArgs) -> Result<i32, String> {
    let file = args.config.as_deref().map(config::load).transpose()?;
    let prometheus = required_prometheus(file.as_ref(), args.prometheus_url.as_deref())?;
    let mut settings = file.as_ref().map(|f| f.serve.clone()).unwrap_or_default();
    if let Some(listen) = args.listen {
        settings.listen = listen;
    }
    if let Some(token) = std::env::var("CANARY_AUTH_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
    {
        settings.auth_token = Some(canary_core::Secret::new(token));
    }
    if let Some(f) = &file {
        settings.default_window = f.validator.analysis_window;
    }
    let judge = args
        .judge
        .or(file.as_ref().map(|f| f.judge))
        .unwrap_or_default();
    let policy = config::policy(file.as_ref())?;
    let validator = file
        .as_ref()
        .map_or_else(ValidatorConfig::default, |f| f.validator.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        let source =
            Arc::new(PrometheusSource::new(prometheus).map_err(|e| canary_core::error::chain(&e))?);
        let judging = canary_serve::Judging {
            source,
            policy,
            judge: judge_factory(judge, file.as_ref()),
            judge_step: validator.judge_step,
            max_duration: validator.max_duration,
        };
        let server = canary_serve::serve(settings, judging).await?;
        let which = Arc::new(std::sync::Mutex::new(None));
        // SIGHUP (a closed terminal, a supervisor's reload) drains like SIGTERM: no request in
        // flight is dropped.
        server.run(cancelled_or_hangup(which)).await
    })?;
    Ok(0)
}

/// Slack (`SLACK_WEBHOOK_URL` over the file's), the file's webhooks and Alertmanager.
fn notifiers(
    file: Option<&config::CanaryConfig>,
) -> Result<Vec<Arc<dyn canary_core::Notifier>>, String> {
    let chain = |e: &(dyn std::error::Error + 'static)| canary_core::error::chain(e);
    let mut out: Vec<Arc<dyn canary_core::Notifier>> = Vec::new();
    if let Some(hook) = config::slack_webhook(file) {
        out.push(Arc::new(SlackNotifier::new(hook).map_err(|e| chain(&e))?));
    }
    if let Some(file) = file {
        out.extend(file.notifiers()?);
    }
    Ok(out)
}

/// The file's Prometheus settings (or the defaults) with the URL the flags give.
/// The matchers that select a deployed baseline's series: the configured
/// `prometheus.baseline_matchers`, or else helm's `baseline_values` (the example chart turns
/// `track: baseline` into the pods' label of that name). Without either, the baseline could
/// not be told from production: an error.
fn deployed_baseline_matchers(
    prometheus: &PrometheusConfig,
    helm: &HelmConfig,
) -> Result<std::collections::BTreeMap<String, String>, String> {
    if !prometheus.baseline_matchers.is_empty() {
        return Ok(prometheus.baseline_matchers.clone());
    }
    if helm.baseline_values.is_empty() {
        return Err("validator.baseline is deployed, but neither prometheus.baseline_matchers nor helm.baseline_values says how to tell its pods from production's".into());
    }
    Ok(helm.baseline_values.clone())
}

fn prometheus_config(file: Option<&config::CanaryConfig>, url: Option<&str>) -> PrometheusConfig {
    let mut p = file.map(|f| f.prometheus.clone()).unwrap_or_default();
    if let Some(url) = url {
        p.url = url.to_owned();
    }
    p
}

/// As [`prometheus_config`], for commands that must be told where Prometheus is (the URL or a
/// config file): the deploy script's default URL would be a guess.
fn required_prometheus(
    file: Option<&config::CanaryConfig>,
    url: Option<&str>,
) -> Result<PrometheusConfig, String> {
    if url.is_none() && file.is_none() {
        return Err("--prometheus-url (or PROMETHEUS_URL, or a --config file) is required".into());
    }
    Ok(prometheus_config(file, url))
}

/// `--wait-minutes`: a number of minutes (fractions allowed) up to the validator's longest
/// warm-up. The error quotes the text as typed: a parsed `1e308` would print 309 digits.
fn minutes(text: &str) -> Result<Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(|m| Duration::try_from_secs_f64(m * 60.0).ok())
        .filter(|d| *d <= ValidatorConfig::MAX_WARMUP)
        .ok_or_else(|| format!("{text:?} is not a number of minutes between 0 and 10080 (a week)"))
}

fn run_flow(args: RunArgs, display: Option<Arc<progress::Display>>) -> Result<i32, String> {
    let file = args.config.as_deref().map(config::load).transpose()?;
    let mut validator_config = file
        .as_ref()
        .map(|f| f.validator.clone())
        .unwrap_or_default();
    validator_config.warmup = match (args.wait_minutes, &file) {
        (Some(d), _) => d,
        (None, Some(f)) => f.validator.warmup,
        (None, None) => Duration::from_secs(15 * 60),
    };
    if args.progressive {
        validator_config.progressive_weights = canary_core::DEFAULT_PROGRESSIVE_WEIGHTS.to_vec();
    }
    match args.baseline {
        Some(BaselineChoice::Production) => validator_config.baseline = BaselineArm::Production,
        Some(BaselineChoice::Deployed) => validator_config.baseline = BaselineArm::Deployed,
        None => {}
    }
    let policy = config::policy(file.as_ref())?;
    let judge = args
        .judge
        .or(file.as_ref().map(|f| f.judge))
        .unwrap_or_default();
    let prometheus = prometheus_config(file.as_ref(), args.prometheus_url.as_deref());
    let production = args.production_version.clone().and_then(|p| p.0);
    if args.dry_run && production.is_none() {
        return Err(
            "--dry-run needs --production-version: production cannot be asked without running helm"
                .into(),
        );
    }
    let mut helm_config = file.as_ref().map(|f| f.helm.clone()).unwrap_or_default();
    if file.is_none() {
        // The deploy script's defaults.
        helm_config.release = "apex-inference".into();
        helm_config.chart = "examples/chart".into();
    }
    if let Some(r) = &args.release {
        helm_config.release.clone_from(r);
    }
    if let Some(c) = &args.chart {
        helm_config.chart.clone_from(c);
    }
    if args.namespace.is_some() {
        helm_config.namespace.clone_from(&args.namespace);
    }
    helm_config.dry_run = args.dry_run;
    let mut prometheus = prometheus;
    if validator_config.baseline == BaselineArm::Deployed {
        prometheus.baseline_matchers = deployed_baseline_matchers(&prometheus, &helm_config)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let which = Arc::new(std::sync::Mutex::new(None));
    let (report, helms) = runtime.block_on(async {
        let chain = |e: &(dyn std::error::Error + 'static)| canary_core::error::chain(e);
        // A dry run never waits: there is nothing deployed to watch.
        let clock = if args.dry_run {
            ScaledClock::new(0.0)
        } else {
            ScaledClock::from_env()
        }
        .map_err(|e| chain(&e))?;
        let region = |name: Option<String>, prometheus: PrometheusConfig, helm: HelmConfig| {
            let source = Arc::new(PrometheusSource::new(prometheus).map_err(|e| chain(&e))?);
            let helm = Arc::new(HelmDeployer::new(helm).map_err(|e| chain(&e))?);
            Ok::<_, String>((
                Region {
                    name,
                    source: source.clone(),
                    deployer: helm.clone(),
                    observations: Some(source),
                },
                helm,
            ))
        };
        let regions = file.as_ref().map_or(&[][..], |f| &f.regions[..]);
        let (mut validator, helms) = if regions.is_empty() {
            let (r, helm) = region(None, prometheus, helm_config)?;
            (CanaryValidator::for_region(r), vec![helm])
        } else {
            let mut built = Vec::new();
            let mut helms = Vec::new();
            for r in regions {
                let mut p = prometheus.clone();
                if let (Some(url), None) = (&r.prometheus_url, &args.prometheus_url) {
                    p.url.clone_from(url);
                }
                let mut h = helm_config.clone();
                if r.kube_context.is_some() {
                    h.kube_context.clone_from(&r.kube_context);
                }
                if r.kubeconfig.is_some() {
                    h.kubeconfig.clone_from(&r.kubeconfig);
                }
                if r.namespace.is_some() && args.namespace.is_none() {
                    h.namespace.clone_from(&r.namespace);
                }
                let (region, helm) = region(Some(r.name.clone()), p, h)?;
                built.push(region);
                helms.push(helm);
            }
            (
                CanaryValidator::multi_region(built).map_err(|e| chain(&e))?,
                helms,
            )
        };
        validator = validator
            .with_config(validator_config)
            .map_err(|e| chain(&e))?
            .with_policy(policy)
            .map_err(|e| chain(&e))?
            .with_clock(Arc::new(clock));
        if let Some(factory) = judge_factory(judge, file.as_ref()) {
            validator = validator.with_judge(factory);
        }
        for notifier in notifiers(file.as_ref())? {
            validator = validator.with_notifier(notifier);
        }
        if let Some(d) = display {
            validator = validator.with_progress(d);
        }
        let mut request = ValidationRequest::new(args.version.clone());
        if let Some(p) = production {
            request = request.with_baseline(p);
        }
        if let Some(f) = &args.values_file {
            request = request.with_values_file(f);
        }
        let report = validator
            .validate_until(request, cancelled(which.clone()))
            .await;
        Ok::<_, String>((report, helms))
    })?;
    let mut text = match args.output {
        Output::Json => report.to_json(),
        Output::Markdown => report.to_markdown(),
        Output::Table => run_table(&report, colour()),
        Output::Html => html::report(&report),
    };
    if args.dry_run && matches!(args.output, Output::Markdown | Output::Table) {
        text.push_str(if args.output == Output::Markdown {
            "\n### helm commands (dry run, not run)\n\n"
        } else {
            "\nhelm commands (dry run, not run):\n"
        });
        for c in helms.iter().flat_map(|h| h.commands()) {
            text.push_str(&format!("helm {}\n", c.join(" ")));
        }
    }
    print(&text)?;
    if let Some(path) = &args.report_file {
        std::fs::write(path, report.to_json())
            .map_err(|e| format!("cannot write the report to {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.summary_file {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        writeln!(f, "{}", report.to_markdown())
            .map_err(|e| format!("cannot write to {}: {e}", path.display()))?;
    }
    let signal = which.lock().ok().and_then(|w| *w);
    Ok(match (report.outcome, signal) {
        (Outcome::Cancelled, Some(Signal::Terminate)) => 143,
        (Outcome::Cancelled, _) => 130,
        (Outcome::Promoted, _) => 0,
        (Outcome::RolledBack, _) => 1,
        (Outcome::HeldForReview, _) => 2,
        (_, _) => EXIT_ERROR,
    })
}
