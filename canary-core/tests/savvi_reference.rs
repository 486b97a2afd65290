//! `stats::anytime` against the PyPI package `savvi` (0.3.1) on committed vectors (made by
//! `reference/savvi_vectors.py`): the Dirichlet-multinomial log odds to 1e-9, and the
//! confidence sequence for the log rate ratio of `InhomogeneousPoissonProcess` to the accuracy
//! of the convex solver savvi uses (1e-4).

use canary_core::stats::anytime::{dirichlet_multinomial_log_odds, RateRatio, Segment};

fn numbers(fields: &str) -> Vec<f64> {
    fields
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect()
}

#[test]
fn odds_and_rate_ratio_intervals_match_savvi() {
    let text = include_str!("reference/savvi.txt");
    let (mut odds, mut ratios) = (0, 0);
    for line in text.lines().filter(|l| !l.is_empty()) {
        let parts: Vec<&str> = line.split('|').collect();
        let head = numbers(parts[0].split_once(' ').unwrap().1);
        if line.starts_with("odds") {
            let (k, theta0) = (head[0], &head[1..]);
            assert_eq!(parts.len(), 3, "{line}");
            let counts = numbers(parts[1]);
            let want = numbers(parts[2])[0];
            let got = dirichlet_multinomial_log_odds(&counts, theta0, k).unwrap();
            assert!((got - want).abs() < 1e-9, "{line}: got {got}");
            odds += 1;
        } else {
            let (k, alpha) = (head[0], head[1]);
            let segment = Segment {
                baseline: head[4],
                canary: head[5],
                canary_share: head[3],
            };
            assert!((head[2] + head[3] - 1.0).abs() < 1e-12);
            assert_eq!(parts.len(), 2, "{line}");
            let want = numbers(parts[1]);
            let r = RateRatio::new(&[segment], k);
            let (lo, hi) = r.interval(alpha);
            assert!((lo - want[0]).abs() < 1e-4, "{line}: lower {lo}");
            assert!((hi - want[1]).abs() < 1e-4, "{line}: upper {hi}");
            assert!((r.log_odds(0.0) - want[2]).abs() < 1e-9, "{line}: odds");
            ratios += 1;
        }
    }
    assert_eq!((odds, ratios), (24, 20));
}
