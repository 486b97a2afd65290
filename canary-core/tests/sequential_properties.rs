//! The sequential judge's invariants: its e-process is a nonnegative supermartingale under the
//! null (checked by simulation), its intervals and decisions are monotone in the evidence.

use std::time::Duration;

use canary_core::judge::{Judge, SequentialJudge, SequentialParameters, Verdict};
use canary_core::stats::anytime::{RateRatio, Segment};
use canary_core::test_util::{steady_observations, HEALTHY_SHARES};
use canary_core::RollbackDecision;
use chrono::{TimeZone, Utc};
use proptest::prelude::*;

/// A binomial draw by summing Bernoulli trials (counts here are small).
fn binomial(rng: &mut fastrand::Rng, n: u32, p: f64) -> f64 {
    (0..n).filter(|_| rng.f64() < p).count() as f64
}

#[test]
fn the_e_process_is_a_nonnegative_supermartingale_under_the_null() {
    // Events split between the arms by the traffic share, as under "no difference": the
    // odds against θ = 1 must average at most 1 at every fixed time, and cross 1/α at any time
    // in at most a share α of runs (Ville's inequality).
    let mut rng = fastrand::Rng::with_seed(11);
    let (runs, looks, share, alpha) = (4000, 200, 0.1, 0.05);
    let mut means = [0.0f64; 3];
    let mut crossed = 0;
    for _ in 0..runs {
        let (mut b, mut c) = (0.0, 0.0);
        let mut ever = false;
        for t in 1..=looks {
            let m = 5;
            let x = binomial(&mut rng, m, share);
            c += x;
            b += f64::from(m) - x;
            let e = RateRatio::new(
                &[Segment {
                    baseline: b,
                    canary: c,
                    canary_share: share,
                }],
                100.0,
            )
            .log_odds(0.0)
            .exp();
            assert!(e >= 0.0 && e.is_finite());
            ever |= e >= 1.0 / alpha;
            for (slot, at) in [(0, 20), (1, 100), (2, 200)] {
                if t == at {
                    means[slot] += e / f64::from(runs);
                }
            }
        }
        crossed += u32::from(ever);
    }
    for m in means {
        // The mean of a martingale with mean 1, within Monte Carlo error.
        assert!(m < 1.1, "mean odds {m}");
    }
    let rate = f64::from(crossed) / f64::from(runs);
    assert!(rate <= alpha, "crossed 1/α in {rate} of runs");
}

/// The decision on 30 minutes of steady traffic where the canary fails `errors` of requests
/// and answers slower by moving `slow` of its requests from the fastest bucket to the slowest
/// finite one.
fn decide(errors: f64, slow: f64) -> RollbackDecision {
    let start = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
    let (d, step) = (Duration::from_secs(1800), Duration::from_secs(15));
    let baseline = steady_observations("v1", 40.0, 0.01, HEALTHY_SHARES, start, d, step);
    let mut shares = HEALTHY_SHARES;
    for s in shares.iter_mut().take(6) {
        *s = (*s - slow).max(0.0);
    }
    let canary = steady_observations("v2", 4.0, errors, shares, start, d, step);
    let mut j = SequentialJudge::new(SequentialParameters {
        max_duration: Duration::from_secs(1800),
        ..SequentialParameters::default()
    })
    .unwrap();
    for (b, c) in baseline.iter().zip(&canary) {
        if let Verdict::Decided(e) = j.observe(b, c) {
            return e.decision;
        }
    }
    j.finish().decision
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// More canary events (the rest alike) never lower either end of the rate ratio's interval.
    #[test]
    fn more_canary_events_never_lower_the_interval(
        baseline in 0.0f64..400.0,
        canary in 0.0f64..100.0,
        extra in 1.0f64..50.0,
        share in 0.05f64..0.95,
    ) {
        let interval = |c: f64| {
            RateRatio::new(&[Segment { baseline, canary: c, canary_share: share }], 100.0)
                .interval(0.01)
        };
        let (a, b) = (interval(canary), interval(canary + extra));
        prop_assert!(b.0 >= a.0 - 1e-6 && b.1 >= a.1 - 1e-6, "{a:?} -> {b:?}");
    }

    /// A canary with more errors or slower requests is never judged better.
    #[test]
    fn decisions_are_monotone_in_the_evidence(
        errors in 0.0f64..0.05,
        more_errors in 0.0f64..0.05,
        slow in 0.0f64..0.3,
        slower in 0.0f64..0.2,
    ) {
        let better = decide(errors, slow);
        let worse = decide(errors + more_errors, slow + slower);
        prop_assert!(worse.rank() <= better.rank(), "{better:?} then {worse:?}");
    }
}
