//! `stats::rank_sum` against R's `wilcox.test(x, y, conf.int = TRUE, exact = FALSE,
//! correct = TRUE, conf.level = 0.98)` on committed vectors (made by `reference/wilcox.R`):
//! W, the p-value, the interval and the Hodges–Lehmann estimate agree to 1e-6.

use canary_core::stats::rank_sum;

fn numbers(field: &str) -> Vec<f64> {
    field.split(',').map(|v| v.parse().unwrap()).collect()
}

#[test]
fn rank_sum_matches_r() {
    let text = include_str!("reference/wilcox.txt");
    let mut cases = 0;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split(';').collect();
        assert_eq!(f.len(), 8, "{line}");
        let (x, y) = (numbers(f[1]), numbers(f[2]));
        let want: Vec<f64> = f[3..].iter().map(|v| v.parse().unwrap()).collect();
        let r = rank_sum(&x, &y, 0.98).unwrap_or_else(|| panic!("{}: no answer", f[0]));
        let got = [r.w, r.p_value, r.interval.0, r.interval.1, r.estimate];
        for (what, (g, w)) in ["W", "p", "lower", "upper", "estimate"]
            .iter()
            .zip(got.iter().zip(&want))
        {
            assert!(
                (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                "{}: {what} is {g}, R says {w}",
                f[0]
            );
        }
        cases += 1;
    }
    assert_eq!(cases, 27);
}
