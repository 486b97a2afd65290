//! The sequential judge's stated design limit against its measured power (issue 18).
//!
//! With pods that differ persistently, the judge states in every evaluation the smallest
//! latency regression it would catch with 95 % power within 30 minutes at the traffic it has
//! seen (margin, placement and sampling together). This measures that statement: for
//! production's 9 pods against 1 and 3 canary pods, pods ±5, 10 and 15 % apart, it takes the
//! judge's statement at 30 minutes on healthy canaries (its median over seeds), then runs
//! regressions of latency × stated^c for a few c around 1 and finds the regression caught
//! within 30 minutes by 95 % of runs (interpolated on the log scale).
//!
//! `cargo bench --bench design_limit` (200 seeds per point) or `-- --quick` (60).
//! Writes a Markdown table to stdout and `target/design_limit.md`.

use std::io::Write as _;
use std::time::{Duration, Instant};

use canary_core::judge::{Judge, SequentialJudge, SequentialParameters, Verdict};
use canary_core::stats::wilson_interval;
use canary_core::{Evaluation, RollbackDecision};
use canary_sim::{catalog, simulate, Case, Simulation};

mod common;
use common::parallel;

/// How far into the run the statement and the power are taken.
const HORIZON: Duration = Duration::from_secs(30 * 60);
/// Regressions tried, as powers of the stated ratio.
const EXPONENTS: [f64; 6] = [0.6, 0.75, 0.9, 1.0, 1.15, 1.3];
const Z95: f64 = 1.959_963_984_540_054;

/// The judge over the run's first 30 minutes: its evaluation then (decided or finished).
fn judged(run: &Simulation) -> Evaluation {
    let mut judge = SequentialJudge::new(SequentialParameters::default()).expect("defaults");
    let first = run
        .canary
        .first()
        .map(|o| o.at)
        .expect("a run has observations");
    for (b, c) in run.baseline.iter().zip(&run.canary) {
        if (c.at - first).to_std().unwrap_or_default() > HORIZON {
            break;
        }
        if let Verdict::Decided(e) = judge.observe(b, c) {
            return *e;
        }
    }
    judge.finish()
}

/// The latency statement's "caught with 95% power within 30 minutes … is about +N%", as a
/// ratio.
fn stated(e: &Evaluation) -> Option<f64> {
    let w = e.warnings.iter().find(|w| w.starts_with("latency:"))?;
    let rest = &w[w.find("within 30 minutes at this traffic is about +")? + 44..];
    let pct: f64 = rest[..rest.find('%')?].parse().ok()?;
    Some(1.0 + pct / 100.0)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| v[v.len() / 2])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seeds: u64 = if args.iter().any(|a| a == "--quick") {
        60
    } else {
        200
    };
    let started = Instant::now();
    let mut out = format!(
        "### Design limit: stated against measured ({seeds} seeds per point)\n\n\
         | layout | pods apart | stated (median, 10–90 %) | power at the stated | measured 95 % point | stated ÷ measured (regression sizes) |\n|---|---|---|---|---|---|\n"
    );
    for canary in [1, 3] {
        for pct in [5, 10, 15] {
            let name = format!("aa-pods-9-{canary}-spread-{pct}");
            let case: Case = catalog()
                .into_iter()
                .find(|c| c.scenario == name)
                .expect("the pod families are in the catalog");
            let seed_list: Vec<u64> = (0..seeds).collect();
            let statements: Vec<f64> = parallel(&seed_list, |&seed| {
                let run = simulate(&case.run(seed)).expect("valid");
                stated(&judged(&run))
            })
            .into_iter()
            .flatten()
            .collect();
            let mut sorted = statements.clone();
            sorted.sort_by(f64::total_cmp);
            let Some(claim) = median(statements) else {
                out += &format!("| 9 + {canary} | ±{pct} % | no statement | | | |\n");
                continue;
            };
            let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
            // Power within the horizon at latency × claim^c.
            let curve: Vec<(f64, u64)> = EXPONENTS
                .iter()
                .map(|&c| {
                    let factor = claim.powf(c);
                    let mut s = case.template.clone();
                    s.canary.effect.latency_factor *= factor;
                    let caught = parallel(&seed_list, |&seed| {
                        let run = simulate(&s.clone().with_seed(seed)).expect("valid");
                        u64::from(judged(&run).decision != RollbackDecision::Proceed)
                    })
                    .into_iter()
                    .sum();
                    (factor, caught)
                })
                .collect();
            let power = |i: usize| curve[i].1 as f64 / seeds as f64;
            let at_claim = EXPONENTS
                .iter()
                .position(|&c| c == 1.0)
                .expect("1 is tried");
            let (lo, hi) = wilson_interval(curve[at_claim].1, seeds, Z95);
            // The first tried point at 95 % or more, interpolated from the one before.
            let measured = (0..curve.len()).find(|&i| power(i) >= 0.95).map(|i| {
                if i == 0 {
                    return (curve[0].0, true);
                }
                let (p0, p1) = (power(i - 1), power(i));
                let (x0, x1) = (curve[i - 1].0.ln(), curve[i].0.ln());
                let x = x0 + (x1 - x0) * (0.95 - p0) / (p1 - p0).max(1e-9);
                (x.exp(), false)
            });
            let pctf = |r: f64| format!("+{:.0} %", 100.0 * (r - 1.0));
            let (measured_s, ratio_s) = match measured {
                Some((m, below)) => (
                    format!("{}{}", if below { "≤ " } else { "" }, pctf(m)),
                    format!("{:.2}", (claim - 1.0) / (m - 1.0)),
                ),
                None => (format!("> {}", pctf(curve[curve.len() - 1].0)), "—".into()),
            };
            out += &format!(
                "| 9 + {canary} | ±{pct} % | {} ({} – {}) | {:.1} % ({:.1}–{:.1}) | {measured_s} | {ratio_s} |\n",
                pctf(claim),
                pctf(at(0.1)),
                pctf(at(0.9)),
                100.0 * power(at_claim),
                100.0 * lo,
                100.0 * hi,
            );
            eprintln!("  {name} ({:.0?})", started.elapsed());
        }
    }
    out += "\nPower: a regression of latency (every request × the factor) rolled back or sent to manual review within 30 minutes of the run; the statement is the judge's own, from its evaluation at 30 minutes of a healthy run with the same seeds.\n";
    println!("{out}");
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let _ = std::fs::create_dir_all(&target);
    std::fs::File::create(target.join("design_limit.md"))
        .and_then(|mut f| f.write_all(out.as_bytes()))
        .expect("write the table");
    eprintln!("wrote target/design_limit.md in {:.0?}", started.elapsed());
}
