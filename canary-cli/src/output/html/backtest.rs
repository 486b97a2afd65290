//! A backtest as one self-contained HTML page: the gate, each judge's false-rollback rate with
//! its interval as a bar, the injected regressions' power, the false-rollback rate by hour of
//! the day, the failed runs with links to what they saw, calibrations with the config to use.
//! CSS bars and cells only: no JavaScript, no external resource.

use std::fmt::Write as _;

use canary_core::backtest::{JudgeBacktest, Rate, Times};
use canary_core::format;

use super::{esc, head};
use crate::commands::backtest::{gate_line, Answer};

const STYLE: &str = "<style>\
.bar{position:relative;height:18px;background:#eef0f3;border-radius:3px;min-width:240px}\
.bar .fill{position:absolute;top:0;bottom:0;left:0;border-radius:3px}\
.bar .ci{position:absolute;top:7px;height:4px;background:#1d2330aa;border-radius:2px}\
.bar .limit{position:absolute;top:-3px;bottom:-3px;width:2px;background:#c5221f}\
.fill.bad{background:#e06666}.fill.good{background:#6aa84f}.fill.power{background:#3b6ea8}\
.hours{display:grid;grid-template-columns:90px repeat(24,1fr);gap:2px;font-size:11px}\
.hours div{padding:3px 0;text-align:center;border-radius:2px}\
.hours .name{text-align:left;font-weight:600}\
.pass{background:#1e8e3e}.fail{background:#c5221f}.info{background:#3b6ea8}\
</style>";

/// The page.
pub fn page(a: &Answer) -> String {
    let r = &a.report;
    let title = format!("Backtest of {}", r.version);
    let mut h = head(&title);
    h.push_str(STYLE);
    let class = match &a.gate {
        Some(g) if g.passed => "pass",
        Some(_) => "fail",
        None => "info",
    };
    let _ = write!(
        h,
        "<header class=\"banner {class}\"><h1>{}</h1><p>{} to {}: {} pseudo-canary runs of {} \
         of {} pods ({:.1} % of requests), each up to {}, judged every {}; seed {}.</p>",
        esc(&title),
        r.since.format("%Y-%m-%d %H:%M UTC"),
        r.until.format("%Y-%m-%d %H:%M UTC"),
        r.runs,
        r.canary_pods,
        r.pods.len(),
        r.canary_share * 100.0,
        format::duration(r.max_duration_seconds),
        format::duration(r.step_seconds),
        r.seed
    );
    if let Some(g) = &a.gate {
        let _ = write!(h, "<p><b>{}</b></p>", esc(&gate_line(g)));
    }
    h.push_str("</header>");
    let limit = a.gate.as_ref().map(|g| g.max_false_rollback);
    h.push_str(
        "<section><h2>Healthy runs</h2><p class=\"muted\">Both arms are production, so every \
         run not promoted is a false rollback. The bar is the rate, the dark line its 95 % \
         (Wilson) interval",
    );
    if limit.is_some() {
        h.push_str(", the red mark the limit");
    }
    h.push_str(
        ".</p><table><tr><th>judge</th><th>false rollbacks</th><th></th><th>rolled back</th>\
         <th>held for review</th><th>time to promote</th></tr>",
    );
    for j in &r.judges {
        let _ = write!(
            h,
            "<tr><td>{}{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&j.judge),
            if j.configured {
                " <b>(configured)</b>"
            } else {
                ""
            },
            pct(&j.healthy.false_rollback),
            bar(&j.healthy.false_rollback, "bad", limit),
            pct(&j.healthy.rollback_auto),
            pct(&j.healthy.manual_review),
            time(&j.healthy.promote)
        );
    }
    h.push_str("</table></section>");
    if r.judges.iter().any(|j| !j.injected.is_empty()) {
        h.push_str(
            "<section><h2>Injected regressions: power on your traffic</h2><table><tr>\
             <th>judge</th><th>injection</th><th>caught</th><th></th><th>time to roll back</th></tr>",
        );
        for j in &r.judges {
            for i in &j.injected {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td><code>{}</code></td><td class=\"num\">{}</td><td>{}</td>\
                     <td class=\"num\">{}</td></tr>",
                    esc(&j.judge),
                    esc(&i.injection),
                    pct(&i.caught),
                    bar(&i.caught, "power", None),
                    time(&i.rollback)
                );
            }
        }
        h.push_str("</table></section>");
    }
    hours(&mut h, &r.judges);
    for j in &r.judges {
        failures(&mut h, j);
    }
    for c in &r.calibrations {
        let _ = write!(
            h,
            "<section><h2>{} calibrated to {:.1} % false rollbacks</h2><p>Knob: {}; sensitivity \
             ×{:.3}, chosen on the {} runs before {} ({}); measured on the runs after it, \
             never used to choose. {}</p><table><tr><th>setting</th><th>false rollbacks</th>\
             <th>time to promote</th>",
            esc(&c.judge),
            c.target * 100.0,
            esc(&c.knob),
            c.sensitivity,
            c.calibration.runs,
            c.held_out_from.format("%Y-%m-%d %H:%M UTC"),
            pct(&c.calibration.false_rollback),
            if c.met {
                "The held-out rate is within the target."
            } else {
                "<b>The held-out rate is not within the target.</b>"
            }
        );
        for i in &c.calibrated.injected {
            let _ = write!(h, "<th>{} caught</th>", esc(&i.injection));
        }
        h.push_str("</tr>");
        for (name, j) in [("as given", &c.native), ("calibrated", &c.calibrated)] {
            let _ = write!(
                h,
                "<tr><td>{name}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
                pct(&j.healthy.false_rollback),
                time(&j.healthy.promote)
            );
            for i in &j.injected {
                let _ = write!(h, "<td class=\"num\">{}</td>", pct(&i.caught));
            }
            h.push_str("</tr>");
        }
        h.push_str("</table>");
        if let Some(yaml) = a.config_snippets.get(&c.judge) {
            let _ = write!(h, "<h3>canary.yaml</h3><pre>{}</pre>", esc(yaml.trim_end()));
        }
        h.push_str("</section>");
    }
    if !r.notes.is_empty() {
        h.push_str("<section><h2>Notes</h2><ul>");
        for n in &r.notes {
            let _ = write!(h, "<li>{}</li>", esc(n));
        }
        h.push_str("</ul></section>");
    }
    h.push_str("</main></body></html>\n");
    h
}

fn pct(r: &Rate) -> String {
    format!("{:.1} % ({}/{})", r.rate * 100.0, r.count, r.runs)
}

fn time(t: &Times) -> String {
    match (t.median_seconds, t.p90_seconds) {
        (Some(m), Some(p)) => format!("{} (p90 {})", format::duration(m), format::duration(p)),
        _ => "—".into(),
    }
}

/// A rate as a bar with its interval, and a limit's mark.
fn bar(r: &Rate, kind: &str, limit: Option<f64>) -> String {
    let p = |v: f64| v.clamp(0.0, 1.0) * 100.0;
    let mut out = format!(
        "<div class=\"bar\" title=\"95 % CI {:.1}–{:.1} %\"><div class=\"fill {kind}\" \
         style=\"width:{:.2}%\"></div><div class=\"ci\" style=\"left:{:.2}%;width:{:.2}%\"></div>",
        r.low * 100.0,
        r.high * 100.0,
        p(r.rate),
        p(r.low),
        (p(r.high) - p(r.low)).max(0.5)
    );
    if let Some(l) = limit {
        let _ = write!(
            out,
            "<div class=\"limit\" style=\"left:{:.2}%\"></div>",
            p(l)
        );
    }
    out.push_str("</div>");
    out
}

/// Each judge's false-rollback rate by the hour its runs started, as coloured cells.
fn hours(h: &mut String, judges: &[JudgeBacktest]) {
    if judges.iter().all(|j| j.by_hour.is_empty()) {
        return;
    }
    h.push_str(
        "<section><h2>False rollbacks by hour of the day (run start, UTC)</h2><p class=\"muted\">\
         Darker is worse; a blank cell had no runs.</p><div class=\"hours\"><div></div>",
    );
    for hour in 0..24 {
        let _ = write!(h, "<div>{hour:02}</div>");
    }
    for j in judges {
        let _ = write!(h, "<div class=\"name\">{}</div>", esc(&j.judge));
        for s in j.by_hour.iter().take(24) {
            let r = &s.false_rollback;
            if r.runs == 0 {
                h.push_str("<div></div>");
                continue;
            }
            let alpha = 0.08 + 0.92 * r.rate.clamp(0.0, 1.0);
            let _ = write!(
                h,
                "<div style=\"background:rgba(197,34,31,{alpha:.2});color:{}\" title=\"{}: {}\">{:.0}</div>",
                if alpha > 0.5 { "#fff" } else { "#1d2330" },
                esc(&s.label),
                pct(r),
                r.rate * 100.0
            );
        }
    }
    h.push_str("</div></section>");
}

fn failures(h: &mut String, j: &JudgeBacktest) {
    if j.failures.is_empty() {
        return;
    }
    let _ = write!(
        h,
        "<section><h2>{}: healthy runs it did not promote</h2><table><tr><th>start</th>\
         <th>canary pods</th><th>decision</th><th>after</th><th>reason</th><th></th></tr>",
        esc(&j.judge)
    );
    for f in &j.failures {
        let link = f
            .link
            .as_deref()
            .map(|l| format!("<a href=\"{}\">what it saw</a>", esc(l)))
            .unwrap_or_default();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{link}</td></tr>",
            f.start.format("%Y-%m-%d %H:%M UTC"),
            esc(&f.canary_pods.join(", ")),
            f.decision.as_str(),
            format::duration((f.decided_at - f.start).num_milliseconds() as f64 / 1000.0),
            esc(&f.reason)
        );
    }
    h.push_str("</table></section>");
}
