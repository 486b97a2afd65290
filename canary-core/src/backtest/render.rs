//! A backtest as Markdown (job summaries) and as plain text (terminals).

use super::{BacktestReport, Calibration, JudgeBacktest, Rate, Times};
use crate::format;

fn pct(r: &Rate) -> String {
    format!(
        "{:.1} % ({}/{}; 95 % CI {:.1}–{:.1} %)",
        r.rate * 100.0,
        r.count,
        r.runs,
        r.low * 100.0,
        r.high * 100.0
    )
}

fn time(t: &Times) -> String {
    match (t.median_seconds, t.p90_seconds) {
        (Some(m), Some(p)) => format!("{} (p90 {})", format::duration(m), format::duration(p)),
        _ => "none".into(),
    }
}

impl BacktestReport {
    /// The report as Markdown: the setting, one table of healthy runs per judge, the injected
    /// regressions, the worst hours, failed runs, calibrations and notes.
    pub fn to_markdown(&self) -> String {
        let mut out =
            format!(
            "## Backtest of {} ({} to {})\n\n{} pseudo-canary runs of {} (of {} pods; {:.1} % of \
             requests on average), each up to {}, judged every {}; seed {}{}.\n\n",
            self.version,
            self.since.format("%Y-%m-%d %H:%M UTC"),
            self.until.format("%Y-%m-%d %H:%M UTC"),
            self.runs,
            plural(self.canary_pods, "pod"),
            self.pods.len(),
            self.canary_share * 100.0,
            format::duration(self.max_duration_seconds),
            format::duration(self.step_seconds),
            self.seed,
            if self.skipped > 0 {
                format!("; {} start times skipped (too few pods running)", self.skipped)
            } else {
                String::new()
            }
        );
        out += "### Healthy runs (A/A: both arms are production)\n\n";
        out += "| judge | false rollbacks | rolled back | held for review | time to promote |\n";
        out += "|---|---|---|---|---|\n";
        for j in &self.judges {
            out += &format!(
                "| {}{} | {} | {} | {} | {} |\n",
                j.judge,
                if j.configured { " (configured)" } else { "" },
                pct(&j.healthy.false_rollback),
                pct(&j.healthy.rollback_auto),
                pct(&j.healthy.manual_review),
                time(&j.healthy.promote),
            );
        }
        if self.judges.iter().any(|j| !j.injected.is_empty()) {
            out += "\n### Injected regressions (power on your traffic)\n\n";
            out += "| judge | injection | caught | rolled back | time to catch |\n";
            out += "|---|---|---|---|---|\n";
            for j in &self.judges {
                for i in &j.injected {
                    out += &format!(
                        "| {} | {} | {} | {} | {} |\n",
                        j.judge,
                        i.injection,
                        pct(&i.caught),
                        pct(&i.rollback_auto),
                        time(&i.rollback)
                    );
                }
            }
        }
        for j in &self.judges {
            out += &judge_details(j);
        }
        for c in &self.calibrations {
            out += &calibration(c);
        }
        if !self.notes.is_empty() {
            out += "\n### Notes\n\n";
            for n in &self.notes {
                out += &format!("- {n}\n");
            }
        }
        out
    }

    /// The report for a terminal: the Markdown's tables as aligned columns under a rule, its
    /// headings as plain lines, and its links left out (they are long URLs; the Markdown and
    /// JSON outputs keep them).
    pub fn to_text(&self) -> String {
        let mut out: Vec<String> = Vec::new();
        let mut table: Vec<Vec<String>> = Vec::new();
        let mut links = false;
        let flush = |table: &mut Vec<Vec<String>>, out: &mut Vec<String>| {
            if table.is_empty() {
                return;
            }
            let columns = table.iter().map(Vec::len).max().unwrap_or(0);
            let widths: Vec<usize> = (0..columns)
                .map(|c| {
                    table
                        .iter()
                        .filter_map(|r| r.get(c))
                        .map(|x| x.chars().count())
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            for (i, row) in table.iter().enumerate() {
                let line: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .map(|(x, w)| format!("{x}{}", " ".repeat(w - x.chars().count())))
                    .collect();
                out.push(line.join("  ").trim_end().to_owned());
                if i == 0 {
                    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                    out.push(rule.join("  "));
                }
            }
            table.clear();
        };
        for line in self.to_markdown().lines() {
            if line.starts_with("|---") {
                continue;
            }
            if let Some(row) = line.strip_prefix('|') {
                table.push(
                    row.trim_end_matches('|')
                        .split(" | ")
                        .map(|c| c.trim().to_owned())
                        .collect(),
                );
                continue;
            }
            flush(&mut table, &mut out);
            let mut text = line.trim_start_matches('#').trim_start().to_owned();
            if let Some(at) = text.find(" [what it saw](") {
                text.truncate(at);
                links = true;
            }
            out.push(text);
        }
        flush(&mut table, &mut out);
        if links {
            out.push(String::new());
            out.push(
                "Links to what each failed run saw are in --output markdown and --output json."
                    .into(),
            );
        }
        out.join("\n")
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn judge_details(j: &JudgeBacktest) -> String {
    if j.failures.is_empty() && j.worst_hours.is_empty() {
        return String::new();
    }
    let mut out = format!("\n### {}: where it failed\n\n", j.judge);
    if !j.worst_hours.is_empty() {
        let hours: Vec<String> = j
            .worst_hours
            .iter()
            .map(|s| format!("{} {}", s.label, pct(&s.false_rollback)))
            .collect();
        out += &format!("Worst hours (run start): {}.\n", hours.join("; "));
        if let Some(day) = j
            .by_weekday
            .iter()
            .filter(|d| d.false_rollback.count > 0)
            .max_by(|a, b| a.false_rollback.rate.total_cmp(&b.false_rollback.rate))
        {
            out += &format!("Worst day: {} {}.\n", day.label, pct(&day.false_rollback));
        }
        out.push('\n');
    }
    for f in &j.failures {
        let link = f
            .link
            .as_deref()
            .map(|l| format!(" [what it saw]({l})"))
            .unwrap_or_default();
        let times = if f.times > 1 {
            format!(" (drawn {} times, each the same)", f.times)
        } else {
            String::new()
        };
        out += &format!(
            "- {} canary {}{times}: {} after {}: {}{link}\n",
            f.start.format("%Y-%m-%d %H:%M UTC"),
            f.canary_pods.join(", "),
            f.decision.as_str(),
            format::duration((f.decided_at - f.start).num_milliseconds() as f64 / 1000.0),
            f.reason,
        );
    }
    out
}

fn calibration(c: &Calibration) -> String {
    let mut out = format!(
        "\n### Calibrated {} to {:.1} % false rollbacks\n\nKnob: {}; sensitivity ×{:.3} (found on \
         {} runs before {}: {}). Held out (runs from {} on, never used to choose):\n\n",
        c.judge,
        c.target * 100.0,
        c.knob,
        c.sensitivity,
        c.calibration.runs,
        c.held_out_from.format("%Y-%m-%d %H:%M UTC"),
        pct(&c.calibration.false_rollback),
        c.held_out_from.format("%Y-%m-%d %H:%M UTC"),
    );
    out += "| setting | false rollbacks | time to promote |";
    let injections: Vec<&str> = c
        .calibrated
        .injected
        .iter()
        .map(|i| i.injection.as_str())
        .collect();
    for i in &injections {
        out += &format!(" {i} caught |");
    }
    out += "\n|---|---|---|";
    out += &"---|".repeat(injections.len());
    out.push('\n');
    for (name, j) in [("as given", &c.native), ("calibrated", &c.calibrated)] {
        out += &format!(
            "| {name} | {} | {} |",
            pct(&j.healthy.false_rollback),
            time(&j.healthy.promote)
        );
        for i in &j.injected {
            out += &format!(" {} |", pct(&i.caught));
        }
        out.push('\n');
    }
    out += &format!(
        "\n{}\n",
        if c.met {
            "The held-out rate is within the target."
        } else {
            "The held-out rate is NOT within the target: the knob's range could not reach it, or \
             the second half of the history behaves differently from the first."
        }
    );
    out
}
