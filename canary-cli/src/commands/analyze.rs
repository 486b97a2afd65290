//! `canary analyze`: one look at a window, or (`--judge`) a past run replayed through a judge.

use canary_core::report::SeriesPair;
use canary_core::{fetch_pair, Arm, MetricsQuery, ValidatorConfig};
use canary_prometheus::{PrometheusConfig, PrometheusSource};
use chrono::Utc;

use crate::commands::retrospective;
use crate::exit::{exit_code, EXIT_UNDECIDED};
use crate::output::{colour, html, print, table};
use crate::wiring::required_prometheus;
use crate::{config, AnalyzeArgs, JudgeName, Output};

pub(crate) fn run(args: AnalyzeArgs) -> Result<i32, String> {
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
        return replay(&runtime, file.as_ref(), prometheus, judge, &args, output);
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
        if evaluation.canary_samples.is_none() || evaluation.baseline_samples.is_none() {
            let from = at - chrono::Duration::from_std(window).unwrap_or_default();
            unknown_versions(&source, &args, from, at).await?;
        }
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
fn replay(
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
        if r.evaluation.is_none() && !r.undecided {
            unknown_versions(&source, args, r.start, r.until).await?;
        }
        let series = if output == Output::Html {
            retrospective::series(&source, &r, &args.baseline, &args.canary).await
        } else {
            Vec::new()
        };
        Ok::<_, String>((r, series))
    })?;
    let heading = r.heading();
    let pending = |md: bool| {
        let mut out = format!(
            "{}: {}\n",
            r.word(),
            r.reason.as_deref().unwrap_or("no decision")
        );
        if !r.progress.is_empty() {
            out.push_str(&crate::output::progress(&r.progress, md));
        }
        out
    };
    let text = match output {
        Output::Json => {
            serde_json::to_string_pretty(&retrospective::to_json(&r)?).map_err(|e| e.to_string())?
        }
        Output::Markdown => match &r.evaluation {
            Some(e) => format!("_{heading}_\n\n{}", e.to_markdown()),
            None => format!("_{heading}_\n\n{}", pending(true)),
        },
        Output::Table => match &r.evaluation {
            Some(e) => format!("{heading}\n{}", table(e, colour())),
            None => format!("{heading}\n{}", pending(false)),
        },
        Output::Html => html::retrospective(&r, &series),
    };
    print(&text)?;
    Ok(r.decision().map_or(EXIT_UNDECIDED, exit_code))
}

/// A version the store has no series of at all between `from` and `to` is a typo or a label
/// that does not match, not a canary waiting for traffic: a configuration error (exit 3)
/// that lists the versions the store has. Nothing is said when the store cannot tell.
async fn unknown_versions(
    source: &PrometheusSource,
    args: &AnalyzeArgs,
    from: chrono::DateTime<Utc>,
    to: chrono::DateTime<Utc>,
) -> Result<(), String> {
    for (flag, version, arm) in [
        ("--canary", &args.canary, Arm::Canary),
        ("--baseline", &args.baseline, Arm::Baseline),
    ] {
        let Ok(Some(k)) = source.known_versions(version, arm, from, to).await else {
            continue;
        };
        if !k.known {
            let have = if k.values.is_empty() {
                "none".to_owned()
            } else {
                k.values
                    .iter()
                    .map(|v| format!("{v:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(format!(
                "{flag} {version}: the store has no series with {}={:?} between {} and {}; \
                 check the version (and the label templates). Values of {} it has then: {have}",
                k.label,
                k.value,
                canary_core::format::instant(from),
                canary_core::format::instant(to),
                k.label
            ));
        }
    }
    Ok(())
}
