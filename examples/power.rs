//! The sequential judge's power analysis: the smallest regression it catches with 95 % power
//! at a given traffic and duration (judged time, after the warm-up), with its default α split,
//! margins and prior, for independent events (clustered events, dispersion φ, need φ times the
//! time).
//!
//! `cargo run --example power [-- TOTAL_RPS CANARY_SHARE [PRODUCTION_PODS]]` (default: the
//! guide's 44 requests a second, 10 % to the canary, 1 % errors, log-normal latency with median
//! 120 ms and σ 0.5 on the guide's buckets, 9 production pods).
//!
//! Then the design limit: with pods that differ persistently, the smallest regression that can
//! be told from where the canary's pods landed, however long the run, for 1 to 5 canary pods;
//! and what the judge states in its evaluations: the smallest regression caught with 95 % power
//! within 30 minutes, the margin, the placement and the sampling together.

use canary_core::judge::{
    detectable_ratio, detectable_ratio_with_pods, SequentialMetric, SequentialParameters,
};
use canary_core::stats::{normal_pdf, pod_design_limit_estimated};

fn main() {
    let args: Vec<f64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let total = args.first().copied().unwrap_or(44.0);
    let share = args.get(1).copied().unwrap_or(0.10);
    let p = SequentialParameters::default();
    let k = p.prior_concentration;
    let (rate_b, rate_c) = (total * (1.0 - share), total * share);
    let margin = |name: &str| {
        p.metrics
            .iter()
            .find_map(|m| match m {
                SequentialMetric::Count {
                    name: n, margin, ..
                }
                | SequentialMetric::Latency {
                    name: n, margin, ..
                } if n == name => Some(*margin),
                _ => None,
            })
            .unwrap_or(f64::NAN)
    };
    let (errors, latency) = (margin("error_rate"), margin("latency"));
    println!(
        "Traffic: {total} requests/s, {:.0} % to the canary; α = {} (error test {:.4}, each latency test {:.6})\n",
        share * 100.0,
        p.alpha,
        p.test_alpha("error_rate", 7).unwrap_or(f64::NAN),
        p.test_alpha("latency", 7).unwrap_or(f64::NAN),
    );
    println!(
        "| judged for | error rate × (margin {}) | requests slower than 250 ms (7.1 % of them) × (margin {}) | slower than 500 ms (0.22 %) × |",
        1.0 + errors,
        1.0 + latency
    );
    println!("|---|---|---|---|");
    for minutes in [10.0, 30.0, 60.0] {
        let seconds = minutes * 60.0;
        let cell = |alpha: Option<f64>, margin: f64, fraction: f64| {
            let found = alpha.and_then(|a| {
                detectable_ratio(
                    a,
                    margin,
                    k,
                    rate_b * fraction * seconds,
                    rate_c * fraction * seconds,
                )
            });
            found.map_or("not within ×1000".into(), |r| format!("{r:.2}"))
        };
        println!(
            "| {minutes} min | {} | {} | {} |",
            cell(p.test_alpha("error_rate", 7), errors, 0.01),
            cell(p.test_alpha("latency", 7), latency, 0.071),
            cell(p.test_alpha("latency", 7), latency, 0.0022),
        );
    }
    let production = args.get(2).map_or(9, |&n| n.max(1.0) as usize);
    design_limits(&p, production);
    within_half_an_hour(&p, production, (rate_b, rate_c), (errors, latency));
}

/// The judge's own statement: the smallest regression caught with 95 % power within 30
/// minutes (28 judged, after the warm-up) at this traffic, with the canary's pods placed among
/// production's. Latency on the 250 ms bound of the guide's log-normal latency (median 120 ms,
/// σ 0.5), whose share moves by its elasticity per unit of log latency; errors at 1 %.
fn within_half_an_hour(
    p: &SequentialParameters,
    production: usize,
    (rate_b, rate_c): (f64, f64),
    (errors, latency): (f64, f64),
) {
    let df = u32::try_from(production.saturating_sub(1)).unwrap_or(u32::MAX);
    let seconds = 28.0 * 60.0;
    let z = (0.250f64 / 0.120).ln() / 0.5;
    let share = 0.071;
    let elasticity = normal_pdf(z) / (0.5 * share);
    println!(
        "\nWhat the judge states (pods as the unit): the smallest regression caught with 95 % power within 30 minutes at this traffic, margin, placement and sampling together; production's {production} pods\n"
    );
    println!("| pods ±s apart | metric | 1 canary pod | 2 | 3 | 5 |");
    println!("|---|---|---|---|---|---|");
    for spread in [0.05f64, 0.10, 0.15] {
        // (name, test α, placement α, margin, event fraction, the statistic per unit of its scale)
        let rows = [
            (
                "error rate",
                p.test_alpha("error_rate", 7),
                p.metric_alpha("error_rate"),
                errors,
                0.01,
                1.0,
            ),
            (
                "latency (250 ms bound)",
                p.test_alpha("latency", 7),
                p.metric_alpha("latency"),
                latency,
                share,
                elasticity,
            ),
        ];
        for (name, alpha, placement, margin, fraction, e) in rows {
            let (Some(alpha), Some(placement)) = (alpha, placement) else {
                continue;
            };
            let cells: Vec<String> = [1, 2, 3, 5]
                .iter()
                .map(|&k| {
                    detectable_ratio_with_pods(
                        alpha,
                        margin,
                        p.prior_concentration,
                        rate_b * fraction * seconds,
                        rate_c * fraction * seconds,
                        e * spread.ln_1p(),
                        df,
                        placement,
                        k,
                        production,
                    )
                    .map_or("not within ×1000".into(), |r| {
                        format!("+{:.0} %", 100.0 * ((r.ln() / e).exp() - 1.0))
                    })
                })
                .collect();
            println!(
                "| ±{:.0} % | {name} | {} |",
                100.0 * spread,
                cells.join(" | ")
            );
        }
    }
}

/// The design limit table: production's `production` pods, spreads of 5, 10 and 15 %, 1 to 5
/// canary pods, at each metric's α (the placement allowance's level) and 95 % power.
fn design_limits(p: &SequentialParameters, production: usize) {
    let df = u32::try_from(production.saturating_sub(1)).unwrap_or(u32::MAX);
    println!(
        "\nDesign limit (pods as the unit): production's {production} pods, whose latency (or error rate) differs persistently by ±s; the smallest regression told from pod placement with 95 % power, however long the run (Student's t on {df} degrees of freedom)\n"
    );
    // Metrics that share an α share a row.
    let mut levels: Vec<(f64, Vec<&str>)> = Vec::new();
    for m in &p.metrics {
        let Some(alpha) = p.metric_alpha(m.name()) else {
            continue;
        };
        if matches!(m, SequentialMetric::Gauge { .. }) {
            continue; // gauges are judged on the arm's aggregate, not per pod
        }
        match levels.iter_mut().find(|(a, _)| *a == alpha) {
            Some((_, names)) => names.push(m.name()),
            None => levels.push((alpha, vec![m.name()])),
        }
    }
    println!("| pods ±s apart | metrics (α) | 1 canary pod | 2 | 3 | 5 |");
    println!("|---|---|---|---|---|---|");
    for spread in [0.05f64, 0.10, 0.15] {
        for (alpha, names) in &levels {
            let cells: Vec<String> = [1, 2, 3, 5]
                .iter()
                .map(|&k| {
                    pod_design_limit_estimated(k, production, spread.ln_1p(), df, *alpha, 0.95)
                        .map_or("unknown".into(), |r| format!("+{:.0} %", 100.0 * (r - 1.0)))
                })
                .collect();
            println!(
                "| ±{:.0} % | {} ({alpha:.4}) | {} |",
                100.0 * spread,
                names.join(", "),
                cells.join(" | ")
            );
        }
    }
}
