//! The report as one self-contained HTML page: a decision banner, the evidence table, a chart
//! per metric (baseline and canary over the analysis, with the rollback and warning bands), a
//! sequential judge's intervals over time, the conditions, the actions, the notifications and
//! the queries. Inline CSS and SVG only: no JavaScript, no external resource, so it works
//! offline and as a CI artifact.

use std::fmt::Write as _;

use canary_core::format::num;
use canary_core::judge::SequencePoint;
use canary_core::policy::{Criticality, Direction, MetricComparison};
use canary_core::report::{comparison_cells, SeriesPair, StepReport};
use canary_core::{Evaluation, ValidationReport};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

pub mod backtest;

/// Production's colour in charts and the legend.
const BASELINE: RGBColor = RGBColor(0x3b, 0x6e, 0xa8);
/// The canary's colour.
const CANARY: RGBColor = RGBColor(0xe0, 0x7b, 0x1f);
/// The rollback band.
const ROLLBACK: RGBColor = RGBColor(0xd6, 0x27, 0x28);
/// The warning (manual review) band.
const WARNING: RGBColor = RGBColor(0xf2, 0xb7, 0x05);

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;margin:0;color:#1d2330;background:#f6f7f9}\
main{max-width:1100px;margin:0 auto;padding:24px}\
.banner{border-radius:10px;padding:18px 24px;color:#fff;margin-bottom:20px}\
.banner h1{margin:0 0 6px;font-size:26px}.banner p{margin:4px 0}\
.promoted{background:#1e8e3e}.rolled_back{background:#c5221f}.held_for_review{background:#b06000}\
.failed{background:#5f6368}.cancelled{background:#5f6368}.proceed{background:#1e8e3e}\
.rollback_auto{background:#c5221f}.rollback_manual{background:#b06000}.continue{background:#1a73e8}\
section{background:#fff;border-radius:10px;padding:16px 20px;margin-bottom:16px;box-shadow:0 1px 2px #0001}\
h2{font-size:18px;margin:0 0 12px}h3{font-size:15px;margin:14px 0 8px}\
table{border-collapse:collapse;width:100%;font-size:13px}\
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e4e6ea;vertical-align:top}\
th{background:#f1f3f5}td.num{font-variant-numeric:tabular-nums}\
.degraded{color:#c5221f;font-weight:600}.nodata{color:#b06000;font-weight:600}\
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:12px}\
figure{margin:0}figcaption{font-size:12px;color:#555;margin-top:2px}\
.legend span{display:inline-block;margin-right:14px;font-size:12px}\
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-1px;margin-right:4px}\
code,pre{font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:12px}\
pre{white-space:pre-wrap;word-break:break-all;margin:0}\
.muted{color:#666;font-size:12px}";

/// A backtest as HTML (see [`backtest::page`]).
pub fn backtest(a: &crate::commands::backtest::Answer) -> String {
    backtest::page(a)
}

/// The whole report as HTML.
pub fn report(report: &ValidationReport) -> String {
    let title = format!(
        "Canary {} vs {}: {}",
        report.version,
        report
            .baseline_version
            .as_deref()
            .unwrap_or("unknown baseline"),
        report.outcome.as_str().replace('_', " ").to_uppercase()
    );
    let mut h = head(&title);
    let _ = write!(
        h,
        "<header class=\"banner {}\"><h1>{}</h1><p>Decision: <b>{}</b></p><p>{}</p>",
        report.outcome.as_str(),
        esc(&title),
        report.decision.map(|d| d.as_str()).unwrap_or("none"),
        esc(&report.reason)
    );
    if let Some(e) = &report.evaluation {
        let _ = write!(h, "<p>Recommendation: {}</p>", esc(&e.recommendation));
    }
    if let Some(f) = &report.failure {
        let _ = write!(
            h,
            "<p>Failed step: {}{}: {}</p>",
            esc(&f.step),
            f.region
                .as_deref()
                .map(|r| format!(" in {}", esc(r)))
                .unwrap_or_default(),
            esc(&f.error)
        );
    }
    h.push_str("</header>");
    if !report.steps.is_empty() {
        evidence(&mut h, &report.steps);
        charts(&mut h, &report.steps);
        sequences(&mut h, &report.steps);
    }
    if let Some(e) = &report.evaluation {
        conditions(&mut h, e);
    }
    if let Some(b) = &report.business_check {
        let _ = write!(
            h,
            "<section><h2>Business check</h2><p><code>{}</code>: {} ({})</p></section>",
            esc(&b.name),
            if b.passed { "passed" } else { "did not pass" },
            esc(&b.details)
        );
    }
    h.push_str("<section><h2>Actions</h2>");
    if report.actions.is_empty() {
        h.push_str("<p>None.</p>");
    } else {
        h.push_str(
            "<table><tr><th>#</th><th>When</th><th>Region</th><th>Action</th><th>Result</th></tr>",
        );
        for (i, a) in report.actions.iter().enumerate() {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                i + 1,
                a.at.format("%Y-%m-%d %H:%M:%S UTC"),
                esc(a.region.as_deref().unwrap_or("—")),
                esc(&a.action.describe()),
                match &a.error {
                    None => report.done().to_owned(),
                    Some(e) => format!("<span class=\"degraded\">FAILED: {}</span>", esc(e)),
                }
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</section>");
    if !report.notifications.is_empty() {
        h.push_str("<section><h2>Notifications</h2><ul>");
        for n in &report.notifications {
            let _ = match &n.error {
                None => write!(h, "<li>{}: delivered</li>", esc(&n.notifier)),
                Some(e) => write!(
                    h,
                    "<li>{}: <span class=\"degraded\">not delivered</span>: {}</li>",
                    esc(&n.notifier),
                    esc(e)
                ),
            };
        }
        h.push_str("</ul></section>");
    }
    if let Some(e) = &report.evaluation {
        queries(&mut h, e);
    }
    let t = &report.timings;
    let _ = writeln!(
        h,
        "<p class=\"muted\">Started {}, took {:.0} s ({:.0} s waiting{}).</p></main></body></html>",
        t.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
        t.total_seconds,
        t.waited_seconds,
        t.analysis_seconds
            .map(|a| format!(", {a:.0} s to decision"))
            .unwrap_or_default()
    );
    h
}

/// One analysis (`canary analyze`) as HTML: the decision, the evidence, the charts when the
/// series were fetched, the conditions and the queries.
pub fn evaluation(e: &Evaluation, series: &[SeriesPair]) -> String {
    let title = format!("Canary {} vs {}", e.canary_version, e.baseline_version);
    let mut h = head(&title);
    let _ = write!(
        h,
        "<header class=\"banner {}\"><h1>{}: {}</h1><p>{}</p><p>Recommendation: {}</p></header>",
        e.decision.as_str(),
        esc(&title),
        e.decision.as_str().replace('_', " ").to_uppercase(),
        esc(&e.primary_reason),
        esc(&e.recommendation)
    );
    h.push_str("<section><h2>Evidence</h2>");
    evidence_table(&mut h, e, None);
    h.push_str("</section>");
    if !series.is_empty() {
        h.push_str("<section><h2>Baseline and canary over the analysis</h2>");
        legend(&mut h);
        h.push_str("<div class=\"charts\">");
        for s in in_report_order(e, series) {
            chart_for(&mut h, e, s);
        }
        h.push_str("</div></section>");
    }
    conditions(&mut h, e);
    queries(&mut h, e);
    h.push_str("</main></body></html>\n");
    h
}

/// A judge's retrospective (`canary analyze --judge`) as HTML: the decision, the evidence, the
/// charts over the judged run, and the judge's evidence over time.
pub fn retrospective(
    r: &crate::commands::retrospective::Retrospective,
    series: &[SeriesPair],
) -> String {
    let mut h = match &r.evaluation {
        Some(e) => evaluation(e, series),
        None => {
            let mut h = head(&format!("{} judge", r.judge));
            let word = r.word();
            let _ = write!(
                h,
                "<header class=\"banner {word}\"><h1>{}</h1><p>{}</p></header>",
                word.replace('_', " ").to_uppercase(),
                esc(r.reason.as_deref().unwrap_or("no decision"))
            );
            if !r.progress.is_empty() {
                h.push_str("<section><h2>Where each metric stands</h2><ul>");
                for line in crate::output::progress(&r.progress, false).lines().skip(2) {
                    let _ = write!(h, "<li>{}</li>", esc(line.trim_start_matches("- ")));
                }
                h.push_str("</ul></section>");
            }
            h.push_str("</main></body></html>");
            h
        }
    };
    let mut extra = format!(
        "<section><h2>Judged by {}</h2><p>{}.</p></section>",
        esc(&r.judge),
        esc(&r.heading())
    );
    sequence_section(&mut extra, &r.sequence);
    if let Some(at) = h.find("</main>") {
        h.insert_str(at, &extra);
    }
    h
}

fn head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>",
        esc(title)
    )
}

fn step_title(s: &StepReport) -> String {
    let mut t = format!("Step {}", s.step);
    if let Some(r) = &s.region {
        t = format!("{}, {t}", esc(r));
    }
    if let Some(w) = s.weight {
        let _ = write!(t, " at {w}% traffic");
    }
    t
}

fn evidence(h: &mut String, steps: &[StepReport]) {
    h.push_str("<section><h2>Evidence</h2>");
    for s in steps {
        if steps.len() > 1 {
            let _ = write!(
                h,
                "<h3>{}: {}</h3>",
                step_title(s),
                esc(s.evaluation.decision.as_str())
            );
        }
        evidence_table(h, &s.evaluation, Some(s));
    }
    h.push_str("</section>");
}

fn evidence_table(h: &mut String, e: &Evaluation, step: Option<&StepReport>) {
    // A hold before any metric was judged has no rows and no sample count to show.
    if e.comparisons.is_empty() && e.min_sample_count <= 0.0 {
        h.push_str("<p class=\"muted\">No metric was judged.</p>");
        return;
    }
    let intervals = e.comparisons.iter().any(|c| c.interval.is_some());
    h.push_str(
        "<table><tr><th>Metric</th><th>Baseline</th><th>Canary</th><th>Ratio</th>\
         <th>Change</th><th>Threshold</th><th>Status</th>",
    );
    h.push_str(if intervals {
        "<th>Interval</th></tr>"
    } else {
        "</tr>"
    });
    for c in &e.comparisons {
        let cells = comparison_cells(c);
        let status = cells[6].replace("**", "");
        let class = match status.as_str() {
            "degraded" => " class=\"degraded\"",
            "no data" => " class=\"nodata\"",
            _ => "",
        };
        let interval = c
            .interval
            .as_ref()
            .map(|i| {
                format!(
                    "<td>{} [{}, {}] at {:.1}%</td>",
                    esc(&i.statistic),
                    short(i.lower),
                    short(i.upper),
                    i.confidence * 100.0
                )
            })
            .unwrap_or_else(|| {
                if intervals {
                    "<td></td>".into()
                } else {
                    String::new()
                }
            });
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td><td{class}>{}</td>{interval}</tr>",
            esc(&cells[0]),
            esc(&cells[1]),
            esc(&cells[2]),
            esc(&cells[3]),
            esc(&cells[4]),
            esc(&cells[5]),
            esc(&status)
        );
    }
    let samples = |v: Option<f64>| v.map_or_else(|| "no data".into(), num);
    let _ = write!(
        h,
        "<tr><td>samples</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td></td><td></td>\
         <td>{}</td><td></td>{}</tr></table>",
        samples(e.baseline_samples),
        samples(e.canary_samples),
        canary_core::report::minimum_text(e.min_sample_count),
        if intervals { "<td></td>" } else { "" }
    );
    if let Some(s) = step.and_then(|s| s.series_error.as_ref()) {
        let _ = write!(
            h,
            "<p class=\"muted\">No charts for this step: {}</p>",
            esc(s)
        );
    }
}

fn legend(h: &mut String) {
    let swatch = |c: RGBColor, a: f64| {
        format!(
            "<span class=\"swatch\" style=\"background:rgba({},{},{},{a})\"></span>",
            c.0, c.1, c.2
        )
    };
    let _ = write!(
        h,
        "<p class=\"legend\"><span>{}baseline (production), wide</span><span>{}canary, narrow</span>\
         <span>{}rollback band</span><span>{}manual-review band</span></p>",
        swatch(BASELINE, 1.0),
        swatch(CANARY, 1.0),
        swatch(ROLLBACK, 0.25),
        swatch(WARNING, 0.3)
    );
}

fn charts(h: &mut String, steps: &[StepReport]) {
    if steps.iter().all(|s| s.series.is_empty()) {
        return;
    }
    h.push_str("<section><h2>Baseline and canary over the analysis</h2>");
    legend(h);
    for s in steps.iter().filter(|s| !s.series.is_empty()) {
        let _ = write!(h, "<h3>{}</h3><div class=\"charts\">", step_title(s));
        for pair in in_report_order(&s.evaluation, &s.series) {
            chart_for(h, &s.evaluation, pair);
        }
        h.push_str("</div>");
    }
    h.push_str("</section>");
}

/// The series in the evidence table's order.
fn in_report_order<'a>(
    e: &'a Evaluation,
    series: &'a [SeriesPair],
) -> impl Iterator<Item = &'a SeriesPair> {
    e.comparisons
        .iter()
        .filter_map(|c| series.iter().find(|s| s.metric == c.metric))
}

/// One chart, for a metric the evaluation compared (others, like the sample count, are not
/// charted).
fn chart_for(h: &mut String, e: &Evaluation, pair: &SeriesPair) {
    let Some(c) = e.comparisons.iter().find(|c| c.metric == pair.metric) else {
        return;
    };
    if pair.baseline.is_empty() && pair.canary.is_empty() {
        let _ = write!(
            h,
            "<figure><p class=\"muted\">{}: no data over the analysis.</p></figure>",
            esc(&c.metric)
        );
        return;
    }
    let bands = bands(c);
    let svg = match series_chart(c, pair, &bands) {
        Ok(svg) => svg,
        Err(e) => format!("<p class=\"muted\">chart failed: {}</p>", esc(&e)),
    };
    let caption = bands
        .iter()
        .map(|b| format!("{} beyond {}", b.name, short(Some(b.edge))))
        .collect::<Vec<_>>()
        .join("; ");
    let _ = write!(
        h,
        "<figure>{svg}<figcaption>{}{}{}</figcaption></figure>",
        esc(&c.metric),
        if c.unit.is_empty() {
            String::new()
        } else {
            format!(" ({})", esc(&c.unit))
        },
        if caption.is_empty() {
            String::new()
        } else {
            format!(": {}", esc(&caption))
        }
    );
}

/// A threshold as a band on the metric's own scale: the baseline (or its floor) times the
/// ratio, towards the bad side.
struct Band {
    name: &'static str,
    edge: f64,
    colour: RGBColor,
    opacity: f64,
}

fn bands(c: &MetricComparison) -> Vec<Band> {
    if c.criticality == Criticality::Informational {
        return Vec::new();
    }
    let Some(base) = c.baseline.map(|b| b.max(c.floor)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(w) = c.warning_threshold {
        out.push(Band {
            name: "manual review",
            edge: base * w,
            colour: WARNING,
            opacity: 0.22,
        });
    }
    if let Some(r) = c.rollback_threshold {
        out.push(Band {
            name: "rollback",
            edge: base * r,
            colour: ROLLBACK,
            opacity: 0.18,
        });
    }
    out
}

fn series_chart(c: &MetricComparison, pair: &SeriesPair, bands: &[Band]) -> Result<String, String> {
    let points = pair.baseline.iter().chain(&pair.canary);
    let t0 = points.clone().map(|p| p[0]).fold(f64::INFINITY, f64::min);
    let t1 = points
        .clone()
        .map(|p| p[0])
        .fold(f64::NEG_INFINITY, f64::max);
    let values = points
        .map(|p| p[1])
        .chain(bands.iter().map(|b| b.edge))
        .filter(|v| v.is_finite());
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
        (l.min(v), h.max(v))
    });
    let pad = ((hi - lo).abs() * 0.12).max(hi.abs() * 0.05).max(1e-9);
    let (y0, y1) = (
        (lo - pad).max(if lo >= 0.0 { 0.0 } else { f64::NEG_INFINITY }),
        hi + pad,
    );
    let minutes = |t: f64| (t - t0) / 60.0;
    let x1 = minutes(t1).max(1.0 / 60.0);
    let y_desc = if c.unit.is_empty() {
        &c.metric
    } else {
        &c.unit
    };
    plot(x1, y0..y1, y_desc, |chart| {
        // The manual-review band ends where the rollback band begins.
        let rollback_edge = bands.iter().find(|b| b.name == "rollback").map(|b| b.edge);
        for b in bands {
            let stop = if b.name == "rollback" {
                None
            } else {
                rollback_edge
            };
            let (from, to) = match c.direction {
                Direction::LowerIsBetter => (b.edge, stop.unwrap_or(y1).min(y1)),
                Direction::HigherIsBetter => (stop.unwrap_or(y0).max(y0), b.edge),
            };
            if from < to {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(0.0, from), (x1, to)],
                        b.colour.mix(b.opacity).filled(),
                    )))
                    .map_err(|e| e.to_string())?;
            }
        }
        // The baseline is drawn wide under a narrow canary: where the two are equal, the
        // baseline still shows on both sides of the canary instead of vanishing under it.
        for (points, colour, width) in [(&pair.baseline, BASELINE, 6), (&pair.canary, CANARY, 2)] {
            chart
                .draw_series(LineSeries::new(
                    points.iter().map(|p| (minutes(p[0]), p[1])),
                    colour.stroke_width(width),
                ))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

/// The chart's frame: minutes across, `y` up, a light grid; `draw` adds the content.
fn plot(
    x1: f64,
    y: std::ops::Range<f64>,
    y_desc: &str,
    draw: impl FnOnce(&mut Chart<'_, '_>) -> Result<(), String>,
) -> Result<String, String> {
    // Bounds every tick computation: hostile or absurd data (±1e308, a span that rounds to
    // nothing) is no chart, said in a line, never a spin.
    const LARGEST: f64 = 1e12;
    let magnitude = y.start.abs().max(y.end.abs());
    if !(x1.is_finite() && x1 > 0.0 && x1 <= 60.0 * 24.0 * 31.0) {
        return Err("the series' times cannot be charted".into());
    }
    if !(y.start.is_finite() && y.end.is_finite() && magnitude <= LARGEST) {
        return Err(format!(
            "values beyond ±{} cannot be charted",
            canary_core::format::num(LARGEST)
        ));
    }
    if y.end - y.start <= magnitude * 1e-9 {
        return Err("the values' range is too narrow to chart".into());
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (520, 240)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .margin_right(18)
            .x_label_area_size(32)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..x1, y)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("minutes")
            .y_desc(y_desc)
            .x_labels(6)
            .y_labels(5)
            .label_style(("sans-serif", 12))
            .light_line_style(RGBColor(0xee, 0xee, 0xee))
            .draw()
            .map_err(|e| e.to_string())?;
        draw(&mut chart)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// A chart of minutes against a value, drawn into an SVG string.
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn sequences(h: &mut String, steps: &[StepReport]) {
    if steps.iter().all(|s| s.sequence.is_empty()) {
        return;
    }
    h.push_str(
        "<section><h2>Evidence over time</h2><p class=\"muted\">Each statistic's estimate and \
         its anytime-valid interval at every look; the dashed line is the practical margin. \
         An interval wholly beyond the margin is a finding.</p>",
    );
    for s in steps.iter().filter(|s| !s.sequence.is_empty()) {
        sequence_charts(h, Some(&step_title(s)), &s.sequence);
    }
    h.push_str("</section>");
}

/// One run's evidence over time as its own section (nothing without a sequence).
fn sequence_section(h: &mut String, sequence: &[SequencePoint]) {
    if sequence.is_empty() {
        return;
    }
    h.push_str(
        "<section><h2>Evidence over time</h2><p class=\"muted\">Each statistic's estimate and \
         its anytime-valid interval at every look; the dashed line is the practical margin. \
         An interval wholly beyond the margin is a finding.</p>",
    );
    sequence_charts(h, None, sequence);
    h.push_str("</section>");
}

/// A chart per metric of one run's sequence, under `title` (HTML, already escaped).
fn sequence_charts(h: &mut String, title: Option<&str>, sequence: &[SequencePoint]) {
    if let Some(t) = title {
        let _ = write!(h, "<h3>{t}</h3>");
    }
    h.push_str("<div class=\"charts\">");
    let mut names: Vec<&str> = Vec::new();
    for p in sequence {
        if !names.contains(&p.metric.as_str()) {
            names.push(&p.metric);
        }
    }
    for name in names {
        let points: Vec<&SequencePoint> = sequence.iter().filter(|p| p.metric == name).collect();
        let statistic = points
            .last()
            .map(|p| p.interval.statistic.clone())
            .unwrap_or_default();
        let svg = sequence_chart(&points)
            .unwrap_or_else(|e| format!("<p class=\"muted\">chart failed: {}</p>", esc(&e)));
        let _ = write!(
            h,
            "<figure>{svg}<figcaption>{}: {}</figcaption></figure>",
            esc(name),
            esc(&statistic)
        );
    }
    h.push_str("</div>");
}

fn sequence_chart(points: &[&SequencePoint]) -> Result<String, String> {
    let margin = points.last().map(|p| p.interval.margin).unwrap_or(1.0);
    let x1 = points
        .iter()
        .map(|p| p.seconds / 60.0)
        .fold(1.0 / 60.0, f64::max);
    let values = points
        .iter()
        .flat_map(|p| [p.interval.estimate, p.interval.lower, p.interval.upper])
        .flatten()
        .chain([margin])
        .filter(|v| v.is_finite());
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
        (l.min(v), h.max(v))
    });
    // Early intervals are wide: show at most four margins' worth around the estimates.
    let span = (hi - lo).max(1e-9).max(lo.abs().max(hi.abs()) * 1e-3);
    let pad = span * 0.08;
    plot(x1, (lo - pad)..(hi + pad), "", |chart| {
        let band: Vec<(f64, f64, f64)> = points
            .iter()
            .filter_map(|p| Some((p.seconds / 60.0, p.interval.lower?, p.interval.upper?)))
            .filter(|(_, l, u)| l.is_finite() && u.is_finite())
            .collect();
        if band.len() > 1 {
            let outline: Vec<(f64, f64)> = band
                .iter()
                .map(|(t, _, u)| (*t, *u))
                .chain(band.iter().rev().map(|(t, l, _)| (*t, *l)))
                .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(
                    outline,
                    CANARY.mix(0.2).filled(),
                )))
                .map_err(|e| e.to_string())?;
        }
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, margin), (x1, margin)],
                6,
                4,
                ROLLBACK.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                points
                    .iter()
                    .filter_map(|p| Some((p.seconds / 60.0, p.interval.estimate?))),
                CANARY.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

fn conditions(h: &mut String, e: &Evaluation) {
    if e.triggered_conditions.is_empty() && e.warnings.is_empty() {
        return;
    }
    h.push_str("<section><h2>Conditions</h2><ul>");
    for c in &e.triggered_conditions {
        let _ = write!(h, "<li>{}</li>", esc(&c.message));
    }
    for w in &e.warnings {
        let _ = write!(h, "<li>warning: {}</li>", esc(w));
    }
    h.push_str("</ul></section>");
}

fn queries(h: &mut String, e: &Evaluation) {
    let rows: Vec<&MetricComparison> = e
        .comparisons
        .iter()
        .filter(|c| c.baseline_query.is_some() || c.canary_query.is_some())
        .collect();
    if rows.is_empty() {
        return;
    }
    h.push_str(
        "<section><h2>Queries</h2><table><tr><th>Metric</th><th>Baseline</th><th>Canary</th></tr>",
    );
    for c in rows {
        let _ = write!(
            h,
            "<tr><td>{}</td><td><pre>{}</pre></td><td><pre>{}</pre></td></tr>",
            esc(&c.metric),
            esc(c.baseline_query.as_deref().unwrap_or("—")),
            esc(c.canary_query.as_deref().unwrap_or("—"))
        );
    }
    h.push_str("</table></section>");
}

/// A number, or a dash for none.
fn short(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), num)
}

/// Escapes text for HTML: every report string (reasons, errors, queries) may hold `<` or `&`.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
