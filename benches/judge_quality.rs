//! The judge-quality benchmark: every judge on every scenario family of `canary-sim`, on the
//! same simulated runs (common random numbers), at its native defaults and again calibrated to
//! the same A/A false-rollback rate.
//!
//! `cargo bench --bench judge_quality` (full: 1,000 seeds per A/A scenario, 300 per effect) or
//! `-- --quick` (100 and 40). Writes a Markdown table to stdout, `target/judge_quality.csv`
//! and `target/judge_quality.svg` (power against time to decide).

use std::io::Write as _;
use std::sync::Arc;
use std::time::Instant;

use canary_core::backtest::Tunable;
use canary_core::judge::{
    ArgoParameters, FlaggerParameters, JudgeFactory, KayentaParameters, SequentialMetric,
    SequentialParameters, ThresholdParameters, Verdict,
};
use canary_core::stats::wilson_interval;
use canary_core::RollbackDecision;
use canary_sim::{
    catalog, simulate, time_to_promote, Alternative, Case, Family, Oracle, Simulation,
    ORACLE_ALPHA, ORACLE_POWER, WHAT_MATTERS,
};
use plotters::prelude::*;

mod common;
use common::parallel;

/// The A/A false-rollback rate every judge is calibrated to, on `aa-guide`.
const TARGET: f64 = 0.05;
const Z95: f64 = 1.959_963_984_540_054;

/// A judge at sensitivity `s`: 1 is its native defaults; larger is more tolerant.
struct Contender {
    name: &'static str,
    make: fn(f64) -> Arc<dyn JudgeFactory>,
}

// Each judge's knob is `Tunable::at`'s, the one `canary backtest --calibrate` turns.
fn threshold(s: f64) -> Arc<dyn JudgeFactory> {
    Tunable::Threshold(ThresholdParameters::default())
        .at(s)
        .factory()
}

fn flagger(s: f64) -> Arc<dyn JudgeFactory> {
    Tunable::Flagger(FlaggerParameters::default())
        .at(s)
        .factory()
}

fn argo(s: f64) -> Arc<dyn JudgeFactory> {
    Tunable::Argo(ArgoParameters::default()).at(s).factory()
}

fn kayenta(s: f64) -> Arc<dyn JudgeFactory> {
    Tunable::Kayenta(KayentaParameters::default())
        .at(s)
        .factory()
}

fn sequential(s: f64) -> Arc<dyn JudgeFactory> {
    Tunable::Sequential(SequentialParameters::default())
        .at(s)
        .factory()
}

const CONTENDERS: [Contender; 5] = [
    Contender {
        name: "threshold",
        make: threshold,
    },
    Contender {
        name: "flagger",
        make: flagger,
    },
    Contender {
        name: "argo",
        make: argo,
    },
    Contender {
        name: "kayenta",
        make: kayenta,
    },
    Contender {
        name: "sequential",
        make: sequential,
    },
];

/// One judge on one run.
#[derive(Clone, Copy, Debug)]
struct Outcome {
    decision: RollbackDecision,
    at_s: f64,
    micros: f64,
}

fn judge(factory: &dyn JudgeFactory, run: &Simulation) -> Outcome {
    let started = Instant::now();
    let mut judge = factory.start().expect("valid parameters");
    let first = run.canary.first().map(|o| o.at);
    let mut decided = None;
    for (b, c) in run.baseline.iter().zip(&run.canary) {
        if let Verdict::Decided(e) = judge.observe(b, c) {
            decided = Some((e.decision, c.at));
            break;
        }
    }
    let (decision, at) = match decided {
        Some(d) => d,
        None => (
            judge.finish().decision,
            run.canary.last().map(|o| o.at).unwrap_or_default(),
        ),
    };
    let at_s = first.map_or(0.0, |f| (at - f).num_milliseconds() as f64 / 1000.0);
    Outcome {
        decision,
        at_s,
        micros: started.elapsed().as_secs_f64() * 1e6,
    }
}

/// Simulates `seeds` of `case` and runs every factory on each run: outcomes per factory.
fn evaluate(
    case: &Case,
    seeds: std::ops::Range<u64>,
    factories: &[Arc<dyn JudgeFactory>],
) -> Vec<Vec<Outcome>> {
    let seeds: Vec<u64> = seeds.collect();
    let per_seed = parallel(&seeds, |&seed| {
        let run = simulate(&case.run(seed)).expect("catalog scenarios are valid");
        factories
            .iter()
            .map(|f| judge(f.as_ref(), &run))
            .collect::<Vec<_>>()
    });
    (0..factories.len())
        .map(|i| per_seed.iter().map(|o| o[i]).collect())
        .collect()
}

fn flagged(outcomes: &[Outcome]) -> f64 {
    outcomes
        .iter()
        .filter(|o| o.decision != RollbackDecision::Proceed)
        .count() as f64
        / outcomes.len() as f64
}

/// Finds the sensitivity at which `contender`'s A/A false-rollback rate on the calibration
/// `runs` (simulated once, never evaluated later) is at most `TARGET`, by bisection on log₂ s
/// in [−4, 4].
fn calibrate(contender: &Contender, runs: &[Simulation]) -> f64 {
    let rate = |s: f64| {
        let factory = (contender.make)(s);
        flagged(&parallel(runs, |run| judge(factory.as_ref(), run)))
    };
    let (mut lo, mut hi) = (-4.0f64, 4.0f64);
    if rate(lo.exp2()) <= TARGET {
        return lo.exp2();
    }
    for _ in 0..8 {
        let mid = (lo + hi) / 2.0;
        if rate(mid.exp2()) <= TARGET {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi.exp2()
}

fn quantile(mut v: Vec<f64>, q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    Some(v[i])
}

/// The limit of a case's evidence ([`Oracle`]): for a regression, its power at 15, 30 and
/// 60 minutes and when it reaches 95 %; for a healthy canary, when it could promote (95 %
/// power against every regression that matters).
#[derive(Clone, Copy, Debug, Default)]
struct Limit {
    power: Option<[f64; 3]>,
    time_s: Option<f64>,
}

fn limit(case: &Case) -> Limit {
    match case.family {
        Family::Regression => {
            let o = Oracle::new(&case.template, Alternative::ItsEffect, ORACLE_ALPHA);
            let at = |m: u64| o.power(std::time::Duration::from_secs(60 * m));
            Limit {
                power: Some([at(15), at(30), at(60)]),
                time_s: o.time_to(ORACLE_POWER).map(|d| d.as_secs_f64()),
            }
        }
        Family::Aa => Limit {
            power: None,
            time_s: time_to_promote(&case.template, &WHAT_MATTERS).map(|d| d.as_secs_f64()),
        },
        Family::Improvement => Limit::default(),
    }
}

/// One CSV row's numbers.
struct Row {
    judge: String,
    family: Family,
    scenario: String,
    effect: String,
    seeds: usize,
    flagged: f64,
    auto: f64,
    median_rollback: Option<f64>,
    p90_rollback: Option<f64>,
    median_promote: Option<f64>,
    median_decide: Option<f64>,
    exposure: f64,
    micros: f64,
    /// The share rolled back (not promoted) within 30 minutes.
    within_30: f64,
    limit: Limit,
}

fn row(judge: &str, case: &Case, outcomes: &[Outcome], limit: Limit) -> Row {
    let n = outcomes.len();
    let times = |pred: &dyn Fn(&Outcome) -> bool| -> Vec<f64> {
        outcomes
            .iter()
            .filter(|o| pred(o))
            .map(|o| o.at_s)
            .collect()
    };
    let rolled = times(&|o| o.decision != RollbackDecision::Proceed);
    let promoted = times(&|o| o.decision == RollbackDecision::Proceed);
    let share = case.template.canary_share;
    Row {
        judge: judge.into(),
        family: case.family,
        scenario: case.scenario.clone(),
        effect: case.effect.clone(),
        seeds: n,
        flagged: flagged(outcomes),
        auto: outcomes
            .iter()
            .filter(|o| o.decision == RollbackDecision::RollbackAuto)
            .count() as f64
            / n as f64,
        median_rollback: quantile(rolled.clone(), 0.5),
        p90_rollback: quantile(rolled, 0.9),
        median_promote: quantile(promoted, 0.5),
        median_decide: quantile(outcomes.iter().map(|o| o.at_s).collect(), 0.5),
        exposure: outcomes.iter().map(|o| share * o.at_s).sum::<f64>() / n as f64,
        micros: outcomes.iter().map(|o| o.micros).sum::<f64>() / n as f64,
        within_30: outcomes
            .iter()
            .filter(|o| o.decision != RollbackDecision::Proceed && o.at_s <= 1800.0)
            .count() as f64
            / n as f64,
        limit,
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0}")).unwrap_or_default()
}

fn csv(rows: &[Row]) -> String {
    let mut out = String::from("judge,family,scenario,effect,seeds,false_rollback_rate,power,median_time_to_rollback_s,p90_time_to_rollback_s,median_time_to_promote_s,exposure,cpu_us_per_decision,oracle_power_15m,oracle_power_30m,oracle_power_60m,oracle_time_s\n");
    for r in rows {
        let (false_rate, power) = match r.family {
            Family::Regression => (String::new(), format!("{:.4}", r.flagged)),
            _ => (format!("{:.4}", r.flagged), String::new()),
        };
        let p = |i: usize| {
            r.limit
                .power
                .map_or(String::new(), |p| format!("{:.4}", p[i]))
        };
        out += &format!(
            "{},{},{},{},{},{},{},{},{},{},{:.1},{:.1},{},{},{},{}\n",
            r.judge,
            r.family.as_str(),
            r.scenario,
            r.effect,
            r.seeds,
            false_rate,
            power,
            opt(r.median_rollback),
            opt(r.p90_rollback),
            opt(r.median_promote),
            r.exposure,
            r.micros,
            p(0),
            p(1),
            p(2),
            opt(r.limit.time_s)
        );
    }
    out
}

/// `judge`'s row for the same case as `like`.
fn find<'a>(rows: &'a [Row], judge: &str, like: &Row) -> &'a Row {
    rows.iter()
        .find(|r| r.judge == judge && r.scenario == like.scenario && r.effect == like.effect)
        .expect("every judge ran every case")
}

fn markdown(rows: &[Row], judges: &[String]) -> String {
    let mut out = String::new();
    out += "### Healthy canaries (A/A): share not promoted [Wilson 95 %], automatic rollbacks in parentheses\n\n";
    out += &format!(
        "| scenario | {} |\n|---|{}\n",
        judges.join(" | "),
        "---|".repeat(judges.len())
    );
    let scenarios: Vec<&Row> = rows.iter().filter(|r| r.judge == judges[0]).collect();
    for s in &scenarios {
        if s.family == Family::Regression {
            continue;
        }
        let cells: Vec<String> = judges
            .iter()
            .map(|j| {
                let r = find(rows, j, s);
                let (lo, hi) = wilson_interval(
                    (r.flagged * r.seeds as f64).round() as u64,
                    r.seeds as u64,
                    Z95,
                );
                format!(
                    "{:.1} % [{:.1}, {:.1}] ({:.1} %)",
                    r.flagged * 100.0,
                    lo * 100.0,
                    hi * 100.0,
                    r.auto * 100.0
                )
            })
            .collect();
        let name = if s.effect.is_empty() {
            s.scenario.clone()
        } else {
            format!("{} {}", s.scenario, s.effect)
        };
        out += &format!("| {name} | {} |\n", cells.join(" | "));
    }
    out += "\n### Regressions: power (share not promoted), median / p90 seconds to roll back\n\n";
    out += &format!(
        "| scenario | effect | {} |\n|---|---|{}\n",
        judges.join(" | "),
        "---|".repeat(judges.len())
    );
    for s in scenarios.iter().filter(|r| r.family == Family::Regression) {
        let cells: Vec<String> = judges
            .iter()
            .map(|j| {
                let r = find(rows, j, s);
                format!(
                    "{:.0} % · {} / {} s",
                    r.flagged * 100.0,
                    opt(r.median_rollback),
                    opt(r.p90_rollback)
                )
            })
            .collect();
        out += &format!(
            "| {} | {} | {} |\n",
            s.scenario,
            s.effect,
            cells.join(" | ")
        );
    }
    for (ours, theirs) in [
        ("sequential", "kayenta"),
        ("sequential@calibrated", "kayenta@calibrated"),
    ] {
        if judges.iter().any(|j| j == ours) && judges.iter().any(|j| j == theirs) {
            out += &versus(rows, &scenarios, ours, theirs);
        }
    }
    out += "\n### Cost: µs of judging per run (the mean over scenarios), against the threshold judge in the same run\n\n";
    out += "| judge | µs per run | × threshold |\n|---|---|---|\n";
    let mean = |j: &str| {
        let mine: Vec<f64> = rows
            .iter()
            .filter(|r| r.judge == j)
            .map(|r| r.micros)
            .collect();
        mine.iter().sum::<f64>() / mine.len().max(1) as f64
    };
    let baseline = mean(&judges[0]);
    for j in judges {
        out += &format!("| {j} | {:.0} | {:.1} |\n", mean(j), mean(j) / baseline);
    }
    out
}

/// Power (mean over regression cases) against the median time to decide on them, one point
/// per judge.
fn chart(rows: &[Row], judges: &[String], path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (760, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Judges on regressions: power against time to decide",
            ("sans-serif", 18),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..3700f64, 0f64..1f64)?;
    chart
        .configure_mesh()
        .x_desc("median time to decide on a regression (s)")
        .y_desc("power (mean over regression scenarios)")
        .draw()?;
    for (i, j) in judges.iter().enumerate() {
        let reg: Vec<&Row> = rows
            .iter()
            .filter(|r| &r.judge == j && r.family == Family::Regression)
            .collect();
        let power = reg.iter().map(|r| r.flagged).sum::<f64>() / reg.len().max(1) as f64;
        let times: Vec<f64> = reg.iter().filter_map(|r| r.median_decide).collect();
        let t = quantile(times, 0.5).unwrap_or(0.0);
        let colour = Palette99::pick(i % 10).to_rgba();
        let calibrated = j.ends_with("@calibrated");
        let label = format!("{j} ({:.0} %, {t:.0} s)", power * 100.0);
        chart.draw_series(std::iter::once(
            EmptyElement::at((t, power))
                + Circle::new(
                    (0, 0),
                    6,
                    if calibrated {
                        colour.stroke_width(2)
                    } else {
                        colour.filled()
                    },
                )
                + Text::new(
                    label,
                    (9, if calibrated { 6 } else { -14 }),
                    ("sans-serif", 13),
                ),
        ))?;
    }
    root.present()?;
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let (mut aa_seeds, mut effect_seeds, calibration_seeds) = if quick {
        (100, 40, 100)
    } else {
        (2000, 300, 400)
    };
    // Exploration: `--only sequential,kayenta`, `--scenario aa-,pods-` (name prefixes), `--seeds N`,
    // `--csv PATH`.
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let only: Option<Vec<String>> =
        flag("--only").map(|v| v.split(',').map(String::from).collect());
    // Name prefixes, comma-separated.
    let prefixes: Vec<String> = flag("--scenario")
        .unwrap_or_default()
        .split(',')
        .map(String::from)
        .collect();
    if let Some(n) = flag("--seeds").and_then(|v| v.parse().ok()) {
        (aa_seeds, effect_seeds) = (n, n);
    }
    let contenders: Vec<&Contender> = CONTENDERS
        .iter()
        .filter(|c| only.as_ref().is_none_or(|o| o.iter().any(|n| n == c.name)))
        .collect();
    let calibrating = !args.iter().any(|a| a == "--native");
    let started = Instant::now();
    let cases: Vec<Case> = catalog()
        .into_iter()
        .filter(|c| prefixes.iter().any(|p| c.scenario.starts_with(p.as_str())))
        .collect();
    eprintln!(
        "judge_quality ({} mode): {} scenarios, {aa_seeds} seeds per A/A scenario, {effect_seeds} per effect",
        if quick { "quick" } else { "full" },
        cases.len()
    );

    // Calibration on aa-guide, with seeds the evaluation does not use.
    let mut factories: Vec<Arc<dyn JudgeFactory>> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for c in &contenders {
        factories.push((c.make)(1.0));
        names.push(c.name.into());
    }
    let seeds: Vec<u64> = (1_000_000..1_000_000 + calibration_seeds).collect();
    let calibration = catalog().remove(0);
    let runs = if calibrating {
        parallel(&seeds, |&seed| {
            simulate(&calibration.run(seed)).expect("catalog scenarios are valid")
        })
    } else {
        Vec::new()
    };
    for c in contenders.iter().filter(|_| calibrating) {
        let s = calibrate(c, &runs);
        eprintln!(
            "  calibrated {} to {:.0} % A/A on aa-guide: sensitivity ×{s:.3} ({:.0?})",
            c.name,
            TARGET * 100.0,
            started.elapsed()
        );
        factories.push((c.make)(s));
        names.push(format!("{}@calibrated", c.name));
    }
    drop(runs);

    let mut rows = Vec::new();
    for (k, case) in cases.iter().enumerate() {
        let seeds = if case.family == Family::Aa {
            aa_seeds
        } else {
            effect_seeds
        };
        let outcomes = evaluate(case, 0..seeds, &factories);
        let limit = limit(case);
        for (name, o) in names.iter().zip(&outcomes) {
            rows.push(row(name, case, o, limit));
        }
        eprintln!(
            "  [{}/{}] {} {} ({:.0?})",
            k + 1,
            cases.len(),
            case.scenario,
            case.effect,
            started.elapsed()
        );
    }

    println!("{}", markdown(&rows, &names));
    println!("{}", against_the_limit(&rows, &names));
    if names.iter().any(|n| n == "sequential") {
        println!("{}", ten_metrics(&cases));
    }
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let _ = std::fs::create_dir_all(&target);
    // `--csv PATH` writes the CSV elsewhere (several explorations at once).
    let csv_path = flag("--csv").map_or_else(|| target.join("judge_quality.csv"), Into::into);
    std::fs::File::create(&csv_path)
        .and_then(|mut f| f.write_all(csv(&rows).as_bytes()))
        .expect("write the CSV");
    let svg_path = target.join("judge_quality.svg");
    chart(&rows, &names, &svg_path.to_string_lossy()).expect("draw the chart");
    eprintln!(
        "wrote {} and {} in {:.0?}",
        csv_path.display(),
        svg_path.display(),
        started.elapsed()
    );
}

/// The sequential judge's cost per decision (one observation judged) with ten metrics: three
/// latency histograms, four counters, three gauges (the same series under ten names, so that
/// every test runs), on aa-guide runs judged for the full hour.
fn ten_metrics(cases: &[Case]) -> String {
    let mut p = SequentialParameters::default();
    let template = p.metrics.clone();
    p.metrics.clear();
    for (i, m) in template.iter().cycle().take(10).enumerate() {
        let mut m = m.clone();
        match &mut m {
            SequentialMetric::Count { name, .. }
            | SequentialMetric::Latency { name, .. }
            | SequentialMetric::Gauge { name, .. } => *name = format!("{name}_{i}"),
            _ => {}
        }
        p.metrics.push(m);
    }
    p.min_duration = p.max_duration;
    let mut out = String::from("### Sequential judge, ten metrics\n\n");
    // The sums alone (aa-guide: two pods a side) and production's 9 pods against 1 canary pod.
    for scenario in ["aa-guide", "aa-pods-9-1-spread-10"] {
        let Some(case) = catalog().into_iter().find(|c| c.scenario == scenario) else {
            continue;
        };
        if !cases.iter().any(|c| c.scenario == scenario) {
            continue;
        }
        let runs: Vec<Simulation> = (0..20)
            .map(|seed| simulate(&case.run(seed)).expect("valid"))
            .collect();
        let (mut decisions, mut seconds, mut longest) = (0u64, 0.0f64, 0usize);
        for run in &runs {
            let mut judge = canary_core::judge::SequentialJudge::new(p.clone()).expect("valid");
            let started = Instant::now();
            for (b, c) in run.baseline.iter().zip(&run.canary) {
                decisions += 1;
                if let Verdict::Decided(_) = canary_core::judge::Judge::observe(&mut judge, b, c) {
                    break;
                }
            }
            seconds += started.elapsed().as_secs_f64();
            longest = longest.max(canary_core::judge::Judge::sequence(&judge).len());
        }
        let pods = run_pods(&runs[0]);
        out += &format!(
            "- {scenario} ({pods}): {:.1} µs of CPU per decision (one observation judged), over {decisions} decisions on 20 one-hour runs; the longest evidence trace kept {longest} points (capped at 2,000 whatever the run's length).\n",
            seconds * 1e6 / decisions as f64
        );
    }
    out
}

/// "9 + 1 pods": each arm's pods in a run's last observation.
fn run_pods(run: &Simulation) -> String {
    let n = |o: &[canary_core::observation::Observation]| o.last().map_or(0, |o| o.instances.len());
    format!("{} + {} pods", n(&run.baseline), n(&run.canary))
}

/// `ours` against `theirs` on every regression: power, power within 30 minutes, the ratio of
/// median times to roll back where both detect (power ≥ 50 %), and their median; then the
/// median time to promote healthy canaries.
fn versus(rows: &[Row], scenarios: &[&Row], ours: &str, theirs: &str) -> String {
    let mut out = format!(
        "\n### {ours} against {theirs}\n\n| scenario | effect | power (ours / theirs) | within 30 min (ours / theirs) | time to roll back, ours ÷ theirs |\n|---|---|---|---|---|\n"
    );
    let mut ratios = Vec::new();
    let mut worst_gap = f64::NEG_INFINITY;
    for s in scenarios.iter().filter(|r| r.family == Family::Regression) {
        let (a, b) = (find(rows, ours, s), find(rows, theirs, s));
        let ratio = match (a.median_rollback, b.median_rollback) {
            (Some(x), Some(y)) if a.flagged >= 0.5 && b.flagged >= 0.5 && y > 0.0 => {
                ratios.push(x / y);
                format!("{:.2}", x / y)
            }
            _ => "—".into(),
        };
        worst_gap = worst_gap.max((b.flagged - a.flagged) * 100.0);
        out += &format!(
            "| {} | {} | {:.1} % / {:.1} % | {:.1} % / {:.1} % | {ratio} |\n",
            s.scenario,
            s.effect,
            a.flagged * 100.0,
            b.flagged * 100.0,
            a.within_30 * 100.0,
            b.within_30 * 100.0
        );
    }
    let promote = |j: &str| {
        quantile(
            rows.iter()
                .filter(|r| r.judge == j && r.family == Family::Aa)
                .filter_map(|r| r.median_promote)
                .collect(),
            0.5,
        )
    };
    out += &format!(
        "\nMedian over the scenarios both detect of (time to roll back, ours ÷ theirs): {}; the largest power shortfall against {theirs}: {:.1} points; median time to promote a healthy canary: {} s against {} s.\n",
        quantile(ratios, 0.5).map_or("—".into(), |r| format!("{r:.2}")),
        worst_gap.max(0.0),
        opt(promote(ours)),
        opt(promote(theirs))
    );
    out
}

/// Every judge against the oracle: per regression, the oracle's power at 15, 30 and 60
/// minutes and its time to 95 %, and each judge's power ÷ the oracle's at 60 minutes with its
/// median time to roll back ÷ the oracle's time; per healthy family, the oracle's time to
/// promote and each judge's median time to promote ÷ it.
fn against_the_limit(rows: &[Row], judges: &[String]) -> String {
    let scenarios: Vec<&Row> = rows.iter().filter(|r| r.judge == judges[0]).collect();
    let head = |first: &str| {
        format!(
            "| {first} | {} |\n|{}\n",
            judges.join(" | "),
            "---|".repeat(judges.len() + first.split(" | ").count())
        )
    };
    let mut out = format!(
        "### Against the limit: the oracle (α = {} one-sided, fixed horizon, knows every parameter but no draw)\n\nRegressions: the oracle's power at 15 / 30 / 60 min and its time to 95 %; each judge's power ÷ the oracle's at 60 min, and its median time to roll back ÷ the oracle's time to 95 %.\n\n",
        ORACLE_ALPHA
    );
    out += &head("scenario | effect | oracle");
    for s in scenarios.iter().filter(|r| r.family == Family::Regression) {
        let Some(p) = s.limit.power else { continue };
        let cells: Vec<String> = judges
            .iter()
            .map(|j| {
                let r = find(rows, j, s);
                let time = match (r.median_rollback, s.limit.time_s) {
                    (Some(x), Some(y)) if r.flagged >= 0.5 && y > 0.0 => format!("{:.1}×", x / y),
                    _ => "—".into(),
                };
                format!("{:.2} · {time}", r.flagged / p[2].max(1e-9))
            })
            .collect();
        out += &format!(
            "| {} | {} | {:.0} / {:.0} / {:.0} % · {} | {} |\n",
            s.scenario,
            s.effect,
            p[0] * 100.0,
            p[1] * 100.0,
            p[2] * 100.0,
            s.limit
                .time_s
                .map_or("not within the hour".into(), |t| format!("{t:.0} s")),
            cells.join(" | ")
        );
    }
    out += "\nHealthy canaries: the oracle's time to promote (95 % power against errors × 2, latency × 1.25 and confidence × 0.8) and each judge's median time to promote ÷ it (— where the oracle cannot within the hour).\n\n";
    out += &head("scenario | oracle");
    for s in scenarios.iter().filter(|r| r.family == Family::Aa) {
        let cells: Vec<String> = judges
            .iter()
            .map(|j| {
                let r = find(rows, j, s);
                match (r.median_promote, s.limit.time_s) {
                    (Some(x), Some(y)) if y > 0.0 => format!("{:.1}× ({x:.0} s)", x / y),
                    (Some(x), _) => format!("— ({x:.0} s)"),
                    _ => "—".into(),
                }
            })
            .collect();
        out += &format!(
            "| {} | {} | {} |\n",
            s.scenario,
            s.limit
                .time_s
                .map_or("not within the hour".into(), |t| format!("{t:.0} s")),
            cells.join(" | ")
        );
    }
    out
}
