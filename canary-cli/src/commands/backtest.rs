//! `canary backtest`: every judge replayed over pseudo-canary runs cut from production's own
//! history (A/A: both arms are the same version), with injected regressions for power, a CI
//! gate on the configured judge's false-rollback rate, and held-out calibration that prints
//! the config to use.

use std::io::IsTerminal;
use std::time::Duration;

use canary_core::backtest::{
    backtest, calibrate, BacktestConfig, BacktestReport, Contender, History, Injection, Tunable,
};
use canary_core::judge::ThresholdParameters;
use canary_core::ValidatorConfig;
use canary_prometheus::PrometheusSource;
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::args::{rate_in_open_unit, rate_in_unit};
use crate::output::{html, print};
use crate::wiring::required_prometheus;
use crate::{config, BacktestArgs, JudgeName, Output};

/// The longest history a backtest reads: 90 days.
pub const MAX_PERIOD: Duration = Duration::from_secs(90 * 24 * 3600);

/// The injections measured with `--calibrate` when `--inject` gives none: the power a
/// calibration keeps is part of its answer.
pub const DEFAULT_CALIBRATION_INJECTIONS: &str = "latency+25%,errors*2";

/// `--since`: a span back from `until` (`14d`, `36h`, `1h30m`) or an instant.
pub fn since(text: &str, until: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let span = match text.strip_suffix('d') {
        Some(days) if !days.is_empty() && days.bytes().all(|b| b.is_ascii_digit()) => days
            .parse::<u64>()
            .ok()
            .and_then(|d| d.checked_mul(86_400))
            .map(Duration::from_secs),
        _ => canary_core::duration::parse(text).ok(),
    };
    let start = match span {
        Some(span) if span > MAX_PERIOD => {
            return Err(format!(
                "--since {text} is longer than the longest history a backtest reads (90d)"
            ))
        }
        Some(span) => chrono::Duration::from_std(span)
            .ok()
            .and_then(|s| until.checked_sub_signed(s)),
        None => Some(canary_core::duration::instant(text).map_err(|_| {
            format!("--since {text:?} is neither a span like 14d or 36h nor an instant (RFC 3339 or unix seconds)")
        })?),
    }
    .ok_or_else(|| format!("--since {text}: before the start of time"))?;
    if start >= until {
        return Err(format!(
            "--since {start} is not before --until {until}: the period is empty"
        ));
    }
    if (until - start).to_std().unwrap_or(Duration::MAX) > MAX_PERIOD {
        return Err(format!(
            "the period {start} to {until} is longer than the longest history a backtest reads (90d)"
        ));
    }
    Ok(start)
}

/// The parameters each judge runs with: the config's, as `canary run` would use them.
pub fn tunable(
    name: JudgeName,
    file: Option<&config::CanaryConfig>,
    policy: &canary_core::RollbackPolicy,
    validator: &ValidatorConfig,
) -> Tunable {
    match name {
        JudgeName::Threshold => Tunable::Threshold(ThresholdParameters {
            policy: policy.clone(),
            warmup: validator.warmup,
            window: validator.analysis_window,
        }),
        JudgeName::Sequential => {
            Tunable::Sequential(file.map(|f| f.sequential.clone()).unwrap_or_default())
        }
        JudgeName::Flagger => Tunable::Flagger(file.map(|f| f.flagger.clone()).unwrap_or_default()),
        JudgeName::Argo => Tunable::Argo(file.map(|f| f.argo.clone()).unwrap_or_default()),
        JudgeName::Kayenta => Tunable::Kayenta(file.map(|f| f.kayenta.clone()).unwrap_or_default()),
    }
}

/// The config file's lines that select `t`: `judge:` and the judge's own section.
pub fn snippet(t: &Tunable) -> Result<String, String> {
    fn section<T: Serialize>(judge: &str, key: &str, value: &T) -> Result<String, String> {
        #[derive(Serialize)]
        struct Snippet<'a, T> {
            judge: &'a str,
            #[serde(flatten)]
            section: std::collections::BTreeMap<&'a str, &'a T>,
        }
        let s = Snippet {
            judge,
            section: [(key, value)].into_iter().collect(),
        };
        serde_yaml::to_string(&s).map_err(|e| format!("cannot write the config snippet: {e}"))
    }
    match t {
        Tunable::Threshold(p) => section("threshold", "thresholds", p.policy.thresholds()),
        Tunable::Sequential(p) => {
            // The run's maximum duration is the validator's, not the judge's to set.
            let mut v = serde_yaml::to_value(p)
                .map_err(|e| format!("cannot write the config snippet: {e}"))?;
            if let Some(m) = v.as_mapping_mut() {
                m.remove("max_duration");
            }
            section("sequential", "sequential", &v)
        }
        Tunable::Flagger(p) => section("flagger", "flagger", p),
        Tunable::Argo(p) => section("argo", "argo", p),
        Tunable::Kayenta(p) => section("kayenta", "kayenta", p),
    }
}

/// A backtest's whole answer: the report, and per calibration the config to use.
#[derive(Debug, Serialize)]
pub struct Answer {
    /// The report.
    #[serde(flatten)]
    pub report: BacktestReport,
    /// Per calibrated judge, the YAML to put in `canary.yaml`.
    pub config_snippets: std::collections::BTreeMap<String, String>,
    /// The CI gate, when `--max-false-rollback` was given.
    pub gate: Option<Gate>,
}

/// `--max-false-rollback`'s verdict.
#[derive(Debug, Serialize)]
pub struct Gate {
    /// The judge it checks.
    pub judge: String,
    /// The limit.
    pub max_false_rollback: f64,
    /// The judge's false-rollback rate's 95 % upper bound.
    pub upper_bound: f64,
    /// Whether the judge is within the limit.
    pub passed: bool,
}

/// A progress bar on a terminal; nothing elsewhere (CI logs get the result).
fn bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{msg:24} [{bar:40}] {pos}/{len} ({eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// What to measure: the judges, which one the gate checks, and how.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Each judge with its parameters (the config's).
    pub judges: Vec<(JudgeName, Tunable)>,
    /// The judge `max_false_rollback` checks.
    pub gated: JudgeName,
    /// Runs, pods, seed, maximum duration, injections.
    pub settings: BacktestConfig,
    /// Calibrate every judge to this false-rollback rate.
    pub calibrate: Option<f64>,
    /// The gate's limit on the checked judge's upper bound.
    pub max_false_rollback: Option<f64>,
}

/// Every judge (the default of `--judge`).
pub const ALL_JUDGES: [JudgeName; 5] = [
    JudgeName::Threshold,
    JudgeName::Sequential,
    JudgeName::Flagger,
    JudgeName::Argo,
    JudgeName::Kayenta,
];

impl Setup {
    /// `judges` (empty: all five) with the config's parameters; the config's judge is gated,
    /// or the first listed when the list leaves it out. Without `injections`, a calibration
    /// measures [`DEFAULT_CALIBRATION_INJECTIONS`].
    pub fn new(
        file: Option<&config::CanaryConfig>,
        judges: &[JudgeName],
        mut settings: BacktestConfig,
        calibrate: Option<f64>,
        max_false_rollback: Option<f64>,
    ) -> Result<Setup, String> {
        // Checked before any history is fetched: a mistake costs no query.
        if settings.runs == 0 {
            return Err("runs must be at least 1 (--runs)".into());
        }
        if settings.canary_pods == 0 {
            return Err("canary pods must be at least 1 (--canary-pods)".into());
        }
        if let Some(r) = calibrate {
            rate_in_open_unit(&r.to_string()).map_err(|e| format!("calibrate: {e}"))?;
        }
        if let Some(r) = max_false_rollback {
            rate_in_unit(&r.to_string()).map_err(|e| format!("max_false_rollback: {e}"))?;
        }
        let policy = config::policy(file)?;
        let validator = file.map_or_else(ValidatorConfig::default, |f| f.validator.clone());
        let mut names: Vec<JudgeName> = Vec::new();
        for n in if judges.is_empty() {
            &ALL_JUDGES[..]
        } else {
            judges
        } {
            if !names.contains(n) {
                names.push(*n);
            }
        }
        let configured = file.map(|f| f.judge()).unwrap_or_default();
        let gated = if names.contains(&configured) {
            configured
        } else {
            names[0]
        };
        if settings.injections.is_empty() && calibrate.is_some() {
            settings.injections =
                Injection::parse_list(DEFAULT_CALIBRATION_INJECTIONS).map_err(|e| e.to_string())?;
        }
        settings.max_duration = validator.max_duration;
        Ok(Setup {
            judges: names
                .iter()
                .map(|&n| (n, tunable(n, file, &policy, &validator)))
                .collect(),
            gated,
            settings,
            calibrate,
            max_false_rollback,
        })
    }
}

/// Where a failed run's link points: the pseudo-canary's pods from its start to its decision.
pub type Linker<'a> =
    &'a dyn Fn(&[String], Option<&str>, DateTime<Utc>, DateTime<Utc>) -> Option<String>;

/// Measures `setup`'s judges over `history`: the backtest, the calibrations with their config
/// snippets, the links and the gate. `progress(what, done, total)`.
pub fn measure(
    history: &History,
    setup: &Setup,
    link: Linker<'_>,
    progress: &(dyn Fn(&str, usize, usize) + Sync),
) -> canary_core::Result<Answer> {
    let contenders: Vec<Contender> = setup
        .judges
        .iter()
        .map(|(n, t)| Contender {
            name: t.name().to_owned(),
            factory: t.factory(),
            configured: *n == setup.gated,
        })
        .collect();
    let mut report = backtest(history, &contenders, &setup.settings, &|d, t| {
        progress("judging", d, t)
    })?;
    let mut snippets = std::collections::BTreeMap::new();
    if let Some(target) = setup.calibrate {
        for (_, t) in &setup.judges {
            let what = format!("calibrating {}", t.name());
            let c = calibrate(history, t, target, &setup.settings, &|d, n| {
                progress(&what, d, n)
            })?;
            let yaml =
                snippet(&c.parameters).map_err(|reason| canary_core::Error::InvalidConfig {
                    field: "calibrate".into(),
                    reason,
                })?;
            snippets.insert(c.judge.clone(), yaml);
            report.calibrations.push(c);
        }
    }
    let runs = report.judges.iter_mut().chain(
        report
            .calibrations
            .iter_mut()
            .flat_map(|c| [&mut c.native, &mut c.calibrated]),
    );
    for j in runs {
        for f in &mut j.failures {
            f.link = link(&f.canary_pods, f.metric.as_deref(), f.start, f.decided_at);
        }
    }
    let gate = setup.max_false_rollback.and_then(|max| {
        report.configured().map(|j| Gate {
            judge: j.judge.clone(),
            max_false_rollback: max,
            upper_bound: j.healthy.false_rollback.high,
            passed: j.healthy.false_rollback.high <= max,
        })
    });
    Ok(Answer {
        report,
        config_snippets: snippets,
        gate,
    })
}

/// Runs `canary backtest`.
pub fn run(args: BacktestArgs) -> Result<i32, String> {
    let file = args.config.as_deref().map(config::load).transpose()?;
    let prometheus = required_prometheus(file.as_ref(), args.prometheus_url.as_deref())?;
    let until = args.until.unwrap_or_else(Utc::now);
    let since = since(&args.since, until)?;
    let settings = BacktestConfig {
        runs: args.runs,
        canary_pods: args.canary_pods,
        seed: args.seed,
        injections: args.inject.map(|i| i.0).unwrap_or_default(),
        ..BacktestConfig::default()
    };
    let setup = Setup::new(
        file.as_ref(),
        &args.judge,
        settings,
        args.calibrate,
        args.max_false_rollback,
    )?;
    let step = file
        .as_ref()
        .map_or_else(ValidatorConfig::default, |f| f.validator.clone())
        .judge_step;
    let chain = |e: &(dyn std::error::Error + 'static)| canary_core::error::chain(e);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let source = PrometheusSource::new(prometheus).map_err(|e| chain(&e))?;
    let bar = bar();
    bar.set_message("fetching history");
    let history = runtime
        .block_on(source.history(&args.version, since, until, step, &|d, t| show(&bar, d, t)))
        .map_err(|e| chain(&e))?;
    let link = |pods: &[String], metric: Option<&str>, start, end| {
        source.graph_link(&args.version, pods, metric, start, end)
    };
    let answer = measure(&history, &setup, &link, &|what, d, t| {
        bar.set_message(what.to_owned());
        show(&bar, d, t);
    })
    .map_err(|e| chain(&e))?;
    bar.finish_and_clear();
    print(&render(&answer, args.output)?)?;
    Ok(match &answer.gate {
        Some(g) if !g.passed => crate::EXIT_ROLLBACK,
        _ => 0,
    })
}

fn show(bar: &ProgressBar, done: usize, total: usize) {
    bar.set_length(total as u64);
    bar.set_position(done as u64);
}

/// The answer in `output`'s format.
pub fn render(a: &Answer, output: Output) -> Result<String, String> {
    let text = |markdown: bool| {
        let mut out = if markdown {
            a.report.to_markdown()
        } else {
            a.report.to_text()
        };
        for (judge, yaml) in &a.config_snippets {
            if markdown {
                out +=
                    &format!("\n#### canary.yaml for {judge} (calibrated)\n\n```yaml\n{yaml}```\n");
            } else {
                out += &format!("\ncanary.yaml for {judge} (calibrated):\n{yaml}");
            }
        }
        if let Some(g) = &a.gate {
            out += &format!("\n{}\n", gate_line(g));
        }
        out
    };
    Ok(match output {
        Output::Json => {
            serde_json::to_string_pretty(a).map_err(|e| format!("cannot write JSON: {e}"))?
        }
        Output::Markdown => text(true),
        Output::Table => text(false),
        Output::Html => html::backtest(a),
    })
}

/// The gate's verdict in one line.
pub fn gate_line(g: &Gate) -> String {
    format!(
        "{}: {}'s false rollbacks are at most {:.1} % (95 % upper bound), {} the limit {:.1} %",
        if g.passed { "PASS" } else { "FAIL" },
        g.judge,
        g.upper_bound * 100.0,
        if g.passed { "within" } else { "above" },
        g.max_false_rollback * 100.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_days_durations_and_instants() {
        let until = canary_core::duration::instant("2026-12-01T00:00:00Z").unwrap();
        assert_eq!(
            since("14d", until).unwrap().to_rfc3339(),
            "2026-11-17T00:00:00+00:00"
        );
        assert_eq!(
            since("36h", until).unwrap().to_rfc3339(),
            "2026-11-29T12:00:00+00:00"
        );
        assert_eq!(
            since("2026-11-30T00:00:00Z", until).unwrap().to_rfc3339(),
            "2026-11-30T00:00:00+00:00"
        );
        assert!(since("91d", until).unwrap_err().contains("90d"));
        assert!(since("2026-12-02T00:00:00Z", until)
            .unwrap_err()
            .contains("not before"));
        assert!(since("yesterday", until).unwrap_err().contains("neither"));
        assert!(since("99999999999999999999d", until).is_err());
    }

    #[test]
    fn no_runs_or_no_canary_pods_is_refused_before_anything_is_fetched() {
        let settings = |runs, canary_pods| BacktestConfig {
            runs,
            canary_pods,
            ..BacktestConfig::default()
        };
        let e = Setup::new(None, &[], settings(0, 1), None, None).unwrap_err();
        assert!(e.contains("--runs"), "{e}");
        let e = Setup::new(None, &[], settings(10, 0), None, None).unwrap_err();
        assert!(e.contains("--canary-pods"), "{e}");
        assert!(Setup::new(None, &[], settings(10, 1), None, None).is_ok());
    }

    #[test]
    fn every_snippet_is_a_valid_config_that_selects_its_judge() {
        let policy = canary_core::RollbackPolicy::default();
        let v = ValidatorConfig::default();
        for n in [
            JudgeName::Threshold,
            JudgeName::Sequential,
            JudgeName::Flagger,
            JudgeName::Argo,
            JudgeName::Kayenta,
        ] {
            let t = tunable(n, None, &policy, &v).at(1.7);
            let yaml = snippet(&t).unwrap();
            let parsed = config::parse(&yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
            assert_eq!(parsed.judge, Some(n), "{yaml}");
            let back = tunable(n, Some(&parsed), &parsed.policy().unwrap(), &v);
            assert_eq!(back, t, "{yaml}");
        }
    }
}
