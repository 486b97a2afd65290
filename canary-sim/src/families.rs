//! The scenario families the judge-quality benchmark runs, each labelled with its ground truth.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{Ar1, Burst, Effect, Gaps, Latency, Onset, Scenario, Warmup};
use crate::FINE_BUCKETS;

/// A scenario's ground truth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Healthy: the canary behaves as production does; any decision but proceed is false.
    Aa,
    /// The canary is worse; proceeding misses it.
    Regression,
    /// The canary is better; rolling it back is a direction error.
    Improvement,
}

impl Family {
    /// `aa`, `regression` or `improvement`.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Aa => "aa",
            Family::Regression => "regression",
            Family::Improvement => "improvement",
        }
    }
}

/// One scenario of the catalog: a template run with its ground truth and effect size.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    /// Its ground truth.
    pub family: Family,
    /// The scenario's name (the template's), e.g. `latency-shift`.
    pub scenario: String,
    /// The effect's label, e.g. `+25%` or `x2`; empty for A/A.
    pub effect: String,
    /// The template; [`Case::run`] sets the seed.
    pub template: Scenario,
}

impl Case {
    /// The scenario for `seed`.
    pub fn run(&self, seed: u64) -> Scenario {
        self.template.clone().with_seed(seed)
    }
}

/// The run length every benchmark case has: long enough for the slowest schedule (the
/// sequential judge's 60-minute maximum; Kayenta's three 10-minute intervals end at 30).
pub const RUN: Duration = Duration::from_secs(3600);

fn base(name: &str) -> Scenario {
    let mut s = Scenario::aa_guide(0);
    s.name = name.into();
    s.duration = RUN;
    s
}

fn aa(name: &str, change: impl FnOnce(&mut Scenario)) -> Case {
    let mut s = base(name);
    change(&mut s);
    Case {
        family: Family::Aa,
        scenario: name.into(),
        effect: String::new(),
        template: s,
    }
}

fn effect(family: Family, name: &str, label: &str, e: Effect) -> Case {
    let mut s = base(name);
    s.canary.effect = e;
    Case {
        family,
        scenario: name.into(),
        effect: label.into(),
        template: s,
    }
}

/// Every scenario family: A/A (healthy) variants of the guide's traffic, regressions at several
/// effect sizes, and improvements. Each runs 60 minutes on the `aa-guide` traffic unless its
/// name says otherwise; the first ten minutes of `aa-guide` here are the calibration
/// scenario's.
pub fn catalog() -> Vec<Case> {
    let mut cases = vec![
        aa("aa-guide", |_| {}),
        aa("aa-fine-buckets", |s| s.buckets = FINE_BUCKETS.to_vec()),
        aa("aa-heavy-tail", |s| {
            let l = Latency::Pareto {
                median_s: 0.120,
                alpha: 2.5,
            };
            s.baseline.latency = l.clone();
            s.canary.latency = l;
        }),
        aa("aa-bimodal", |s| {
            let l = Latency::Bimodal {
                fast_median_s: 0.080,
                slow_median_s: 0.400,
                sigma: 0.3,
                slow_fraction: 0.1,
            };
            s.baseline.latency = l.clone();
            s.canary.latency = l;
        }),
    ];
    for shared in [true, false] {
        for phi in [0.3, 0.5, 0.8] {
            let name = format!("aa-ar1-{}-{phi}", if shared { "shared" } else { "per-arm" });
            cases.push(aa(&name, |s| {
                s.noise = Some(Ar1 {
                    phi,
                    sigma: 0.2,
                    shared,
                });
            }));
        }
    }
    cases.extend([
        aa("aa-diurnal", |s| {
            s.traffic.diurnal_amplitude = 0.5;
            s.traffic.diurnal_period = Duration::from_secs(3600);
        }),
        aa("aa-bursts", |s| {
            s.traffic.bursts = [300, 1020]
                .into_iter()
                .map(|start| Burst {
                    start: Duration::from_secs(start),
                    duration: Duration::from_secs(60),
                    factor: 3.0,
                })
                .collect();
        }),
        aa("aa-instance-offsets", |s| s.instance_offset_sigma = 0.15),
        aa("aa-warmup", |s| {
            s.canary.warmup = Some(Warmup {
                factor: 1.5,
                duration: Duration::from_secs(300),
            });
        }),
        aa("aa-low-traffic-1rps", |s| s.total_rps = 10.0),
        aa("aa-low-traffic-5rps", |s| s.total_rps = 50.0),
        aa("aa-zero-errors", |s| {
            s.baseline.error_rate = 0.0;
            s.canary.error_rate = 0.0;
        }),
        aa("aa-gaps", |s| {
            s.gaps = Gaps {
                missing: 0.05,
                nan: 0.05,
            };
        }),
    ]);

    let reg = Family::Regression;
    for pct in [1, 5, 10, 25, 50] {
        let e = Effect {
            latency_factor: 1.0 + f64::from(pct) / 100.0,
            ..Effect::default()
        };
        cases.push(effect(reg, "latency-shift", &format!("+{pct}%"), e));
    }
    for pct in [20, 50] {
        let e = Effect {
            tail_factor: 1.0 + f64::from(pct) / 100.0,
            ..Effect::default()
        };
        cases.push(effect(reg, "tail-only", &format!("p99+{pct}%"), e));
    }
    let e = Effect {
        spread_factor: 1.3,
        ..Effect::default()
    };
    cases.push(effect(reg, "variance-only", "sigma x1.3", e));
    for x in [1.2, 2.0, 5.0] {
        let e = Effect {
            error_factor: x,
            ..Effect::default()
        };
        cases.push(effect(reg, "error-rate", &format!("x{x}"), e));
    }
    for d in [0.05, 0.1] {
        let e = Effect {
            confidence_delta: -d,
            ..Effect::default()
        };
        cases.push(effect(reg, "confidence-drop", &format!("-{d}"), e));
    }
    let e = Effect {
        latency_factor: 1.5,
        onset: Onset::Step {
            at: Duration::from_secs(300),
        },
        ..Effect::default()
    };
    cases.push(effect(reg, "step-change", "+50% at 5m", e));
    let e = Effect {
        latency_factor: 1.5,
        onset: Onset::Ramp {
            over: Duration::from_secs(1800),
        },
        ..Effect::default()
    };
    cases.push(effect(reg, "drift", "+50% by 30m", e));

    let imp = Family::Improvement;
    let e = Effect {
        latency_factor: 0.8,
        ..Effect::default()
    };
    cases.push(effect(imp, "latency-improvement", "-20%", e));
    let e = Effect {
        error_factor: 0.5,
        ..Effect::default()
    };
    cases.push(effect(imp, "error-improvement", "x0.5", e));
    cases
}
