//! What the command prints: stdout, colour, the terminal tables; the HTML pages are in
//! [`html`].

use std::io::{IsTerminal, Write};

use canary_core::report::comparison_cells;
use canary_core::{Evaluation, Outcome, RollbackDecision, ValidationReport};

pub mod html;

/// `text` in the ANSI style `code` when `colour` is on.
pub(crate) fn paint(text: &str, code: &str, colour: bool) -> String {
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
    if r.dry_run {
        out.push_str("dry run: the helm commands were printed, not run; nothing was deployed\n");
    }
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
                None => r.done().to_owned(),
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

pub(crate) fn print(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{}", text.trim_end()) {
        // A reader that stopped early (`| head`) is not an error worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.map_err(|e| format!("cannot write to stdout: {e}")),
    }
}

/// Colour only on a terminal, and never with `NO_COLOR` set (<https://no-color.org>).
pub(crate) fn colour() -> bool {
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
    // A hold before any metric was judged has no rows and no sample count to show.
    if !rows.is_empty() {
        out += &line(&header.map(String::from));
        out.push('\n');
    }
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
    if !rows.is_empty() || e.min_sample_count > 0.0 {
        out += &format!(
            "\nsamples: baseline {}, canary {} ({})\n",
            samples(e.baseline_samples),
            samples(e.canary_samples),
            canary_core::report::minimum_text(e.min_sample_count)
        );
    }
    for c in &e.triggered_conditions {
        out += &format!("- {}\n", c.message);
    }
    out += &format!("\n{}\n", e.recommendation);
    out
}

/// Each metric as a judge that has not decided sees it: what it still needs, per metric.
pub(crate) fn progress(rows: &[canary_core::MetricComparison], markdown: bool) -> String {
    let mut out = String::from(if markdown {
        "\n**Where each metric stands:**\n\n"
    } else {
        "\nwhere each metric stands:\n"
    });
    for c in rows {
        let [metric, baseline, canary, .., status] =
            comparison_cells(c).map(|s| s.replace("**", ""));
        let detail = match (c.status, &c.no_data_reason) {
            (_, Some(why)) => why.clone(),
            _ => format!("baseline {baseline}, canary {canary}"),
        };
        let status = match status.as_str() {
            "stable" => "within its margin",
            "degraded" => "worse than its margin",
            s => s,
        };
        out += &format!("- {metric}: {status}: {detail}\n");
    }
    out
}
