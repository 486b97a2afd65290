//! `canary analyze`: one look at a window, or (`--judge`) a past run replayed through a judge.

use canary_core::report::SeriesPair;
use canary_core::{fetch_pair, Arm, MetricsQuery, RollbackDecision, ValidatorConfig};
use canary_prometheus::{PrometheusConfig, PrometheusSource};
use chrono::Utc;

use crate::commands::retrospective;
use crate::exit::exit_code;
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
