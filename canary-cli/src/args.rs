//! The command line's types: what each subcommand accepts, and the parsers of its values.
//! Nothing here runs anything; [`crate::commands`] does.

use std::path::PathBuf;
use std::time::Duration;

use canary_core::{duration, ValidatorConfig, Version};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};

use canary_core::backtest::Injection;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "canary",
    version,
    about = "Decide whether a canary deployment may be promoted, and say why.",
    after_help = concat!(
        "Exit codes: analyze: 0 proceed, 1 rollback_auto, 2 rollback_manual, 3 error,\n",
        "4 continue (--judge only: not decided yet, ask again later);\n",
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
    /// Compare the canary with production from Prometheus and print the decision: the guide's
    /// policy over one window, or (--judge) a judge over the canary's run so far.
    #[command(after_help = concat!(
        "Without --judge: the guide's threshold policy, one look at the window (--window, --at).\n",
        "With --judge: the canary's run replayed through that judge from --since to --until.\n\n",
        "Examples:\n",
        "  export PROMETHEUS_URL=http://prometheus:9090\n",
        "  canary analyze --baseline v1.2.0 --canary v1.3.0\n",
        "  canary analyze --baseline v1 --canary v2 --window 10m --output json\n",
        "  canary analyze --baseline v1 --canary v2 --at 2026-11-28T12:00:00Z\n",
        "  canary analyze --baseline v1 --canary v2 --judge sequential \\\n",
        "      --since 2026-11-28T11:00:00Z --until 2026-11-28T12:00:00Z\n\n",
        "Exit codes: 0 proceed, 1 rollback_auto, 2 rollback_manual, 3 error,\n",
        "4 continue (--judge only: the judge has not decided yet; ask again later)."
    ))]
    Analyze(AnalyzeArgs),
    /// The guide's whole flow: deploy the canary, warm up, analyse, promote or roll back,
    /// notify, write the report.
    #[command(after_help = concat!(
        "Examples:\n",
        "  canary run --version v1.3.0 --chart ./chart --values-file values-canary.yaml\n",
        "  canary run --version v1.3.0 --progressive --report-file report.json \\\n",
        "      --summary-file \"$GITHUB_STEP_SUMMARY\"\n",
        "  canary run --version v1.3.0 --production-version v1.2.0 --dry-run\n",
        "      (prints the helm commands it would run; deploys nothing)\n",
        "  canary run --version v1.3.0 --judge threshold\n",
        "      (the guide's single look after the warm-up)\n\n",
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
        "/v1/flagger/rollback, /metrics, /healthz, /readyz, /openapi.json (the API's contract).\n",
        "CANARY_AUTH_TOKEN (or serve.auth_token)\n",
        "requires a bearer token.\n\n",
        "Exit codes: 0 stopped by SIGTERM, SIGHUP or Ctrl-C (requests in flight finished), 3 error."
    ))]
    Serve(ServeArgs),
    /// Measure the judges on production's own history: pseudo-canary runs of its pods (A/A),
    /// injected regressions, a CI gate, and calibration.
    #[command(after_help = concat!(
        "Examples:\n",
        "  canary backtest --config canary.yaml --version v1.2.0 --since 14d\n",
        "  canary backtest --config canary.yaml --version v1.2.0 --since 14d \\\n",
        "      --judge sequential,threshold --inject latency+10%,errors*2 \\\n",
        "      --max-false-rollback 0.05\n",
        "  canary backtest --config canary.yaml --version v1.2.0 --since 28d \\\n",
        "      --calibrate 0.01 --output markdown\n\n",
        "Each run takes --canary-pods of the pods running then (seeded) as the canary and the rest as\n",
        "the baseline, and judges it as `canary run` would (warm-up, steps, validator.max_duration).\n",
        "Exit codes: 0 done (and within --max-false-rollback), 1 the configured judge's false-rollback\n",
        "upper bound is above --max-false-rollback, 3 error (too little history, one pod, Prometheus)."
    ))]
    Backtest(BacktestArgs),
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
    /// Write the man pages: canary(1) and one per subcommand (canary-run(1), ...).
    #[command(after_help = concat!(
        "Examples:\n",
        "  canary man --out /usr/local/share/man/man1 && man canary-run"
    ))]
    Man {
        /// The directory to write them into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: std::path::PathBuf,
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
        "  # then, as the first line of canary.yaml:\n",
        "  # yaml-language-server: $schema=canary.schema.json"
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
    /// Judge the canary's run with this judge instead of the policy's one look at the window
    /// (the default, without --judge): replayed from `--since` (default: where the canary's
    /// series begin in `serve.start_lookback`) to `--until` or the validator's maximum
    /// duration, whichever is first.
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
    /// The guide's policy: one decision over the analysis window once the warm-up is over
    /// (the Python API's default, as the guide says).
    Threshold,
    /// The sequential, anytime-valid judge, deciding at any scrape (the default of `run`,
    /// `serve` and a config file; see the book's "Which judge, and why").
    #[default]
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
    /// The judge (default: the config's, else the sequential judge; `threshold` is the guide's
    /// single look).
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
    /// Which judge decides (default: the config's, else `sequential`; `threshold` is the
    /// guide's single look after the warm-up).
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

pub(crate) fn version(text: &str) -> Result<Version, String> {
    Version::new(text).map_err(|e| e.to_string())
}

pub(crate) fn instant(text: &str) -> Result<DateTime<Utc>, String> {
    duration::instant(text)
}

/// `--wait-minutes`: a number of minutes (fractions allowed) up to the validator's longest
/// warm-up. The error quotes the text as typed: a parsed `1e308` would print 309 digits.
pub(crate) fn minutes(text: &str) -> Result<Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(|m| Duration::try_from_secs_f64(m * 60.0).ok())
        .filter(|d| *d <= ValidatorConfig::MAX_WARMUP)
        .ok_or_else(|| format!("{text:?} is not a number of minutes between 0 and 10080 (a week)"))
}

/// `canary backtest`.
#[derive(Debug, clap::Args)]
pub struct BacktestArgs {
    /// The config file (`canary.yaml`): Prometheus, queries, thresholds, judge, validator.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Prometheus's base URL (default: the config file's `prometheus.url`).
    #[arg(long, env = "PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,
    /// The production version whose history is replayed (its pods' version label).
    #[arg(long, value_parser = version)]
    pub version: Version,
    /// The start of the history: a span back from `--until` (14d, 36h, 90m) or an instant
    /// (RFC 3339 or unix seconds).
    #[arg(long)]
    pub since: String,
    /// The end of the history: RFC 3339 or unix seconds (default: now).
    #[arg(long, value_parser = instant)]
    pub until: Option<DateTime<Utc>>,
    /// The judges to measure, comma-separated (default: all five). The config's judge is the
    /// one `--max-false-rollback` gates; if the list leaves it out, the first listed stands
    /// for it.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub judge: Vec<JudgeName>,
    /// Pods taken as the pseudo-canary in each run (the others are the baseline).
    #[arg(long, default_value_t = 1)]
    pub canary_pods: usize,
    /// Pseudo-canary runs per judge, spread over the period.
    #[arg(long, default_value_t = 500)]
    pub runs: usize,
    /// The seed of the pods' choice: the same seed, the same runs.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Synthetic regressions applied to the pseudo-canary, comma-separated: latency+25%,
    /// latency*1.25, tail+20%, errors*2, errors+1%, confidence-0.05, confidence*0.9.
    #[arg(long, value_parser = injections)]
    pub inject: Option<Injections>,
    /// Calibrate each judge to at most this false-rollback rate (e.g. 0.01) on the first half
    /// of the history, report it on the second, and print the config to use.
    #[arg(long, value_parser = rate_in_open_unit)]
    pub calibrate: Option<f64>,
    /// Exit 1 when the configured judge's false-rollback rate's 95 % upper bound is above
    /// this (e.g. 0.05).
    #[arg(long, value_parser = rate_in_unit)]
    pub max_false_rollback: Option<f64>,
    /// How to print the result.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// `--inject`'s list.
#[derive(Clone, Debug)]
pub struct Injections(pub Vec<Injection>);

fn injections(text: &str) -> Result<Injections, String> {
    Injection::parse_list(text)
        .map(Injections)
        .map_err(|e| e.to_string())
}

pub(crate) fn rate_in_unit(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|r| (0.0..=1.0).contains(r))
        .ok_or_else(|| format!("{text:?} is not a rate between 0 and 1, e.g. 0.05"))
}

pub(crate) fn rate_in_open_unit(text: &str) -> Result<f64, String> {
    rate_in_unit(text)
        .ok()
        .filter(|r| *r > 0.0 && *r < 1.0)
        .ok_or_else(|| format!("{text:?} is not a rate strictly between 0 and 1, e.g. 0.01"))
}
