//! The scenario families the judge-quality benchmark runs, each labelled with its ground truth.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{Ar1, Burst, Effect, Gaps, Latency, Onset, Scenario, Warmup};
use crate::pods::{PodChange, PodEvent, PodFault, Pods};
use crate::FINE_BUCKETS;
use canary_core::Arm;

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
                flat: false,
            });
        }),
        // Warm-ups held flat and then gone (issue 19): latency × 1.6 for 90 s, × 3 for 30 s.
        aa("aa-warmup-flat-1.6-90s", |s| {
            s.canary.warmup = Some(Warmup {
                factor: 1.6,
                duration: Duration::from_secs(90),
                flat: true,
            });
        }),
        aa("aa-warmup-flat-3-30s", |s| {
            s.canary.warmup = Some(Warmup {
                factor: 3.0,
                duration: Duration::from_secs(30),
                flat: true,
            });
        }),
        aa("aa-high-traffic-10x", |s| s.total_rps *= 10.0),
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
    for pct in [1, 5, 10, 25, 50, 100, 200] {
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
    // A canary failing half its requests (1 % × 50).
    let e = Effect {
        error_factor: 50.0,
        ..Effect::default()
    };
    cases.push(effect(reg, "half-failing", "50% errors", e));
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

    cases.extend(pod_cases());

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

/// A layout of `production` and `canary` pods with pods `sigma` apart (a log sd).
fn pods(s: &mut Scenario, production: usize, canary: usize, sigma: f64) {
    s.pods = Some(Pods {
        baseline: production,
        canary,
        faults: Vec::new(),
        changes: Vec::new(),
    });
    s.instance_offset_sigma = sigma;
}

fn layout(s: &mut Scenario) -> &mut Pods {
    s.pods.as_mut().expect("a pod layout was set")
}

/// The pod families (issue 18): production's 9 pods against 1 and 3 canary pods, pods apart by
/// 5, 10 and 15 %; a broken pod in either arm; pods that join and restart; regressions on top
/// of pod spread.
fn pod_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for canary in [1, 3] {
        for pct in [5, 10, 15] {
            let name = format!("aa-pods-9-{canary}-spread-{pct}");
            cases.push(aa(&name, |s| pods(s, 9, canary, f64::from(pct) / 100.0)));
        }
    }
    // The live layout of issue 38: production on 6 pods ±4 % apart (ordinary), canaries at
    // 30 req/s per pod (about 7 × the guide's), on 1 pod and on 3.
    for canary in [1, 3] {
        let name = format!("aa-pods-6-{canary}-spread-4-30rps");
        cases.push(aa(&name, |s| {
            pods(s, 6, canary, 0.04);
            s.total_rps = 30.0 * canary as f64 / s.canary_share;
        }));
    }
    cases.push(aa("aa-pods-broken-production-pod", |s| {
        pods(s, 9, 1, 0.0);
        layout(s).faults.push(PodFault {
            arm: Arm::Baseline,
            pod: 4,
            latency_factor: 1.0,
            error_factor: 10.0,
        });
    }));
    cases.push(aa("aa-pods-hpa-scale-up", |s| {
        // Production starts at 6 pods and scales to 9 at 20 minutes.
        pods(s, 9, 1, 0.05);
        for pod in 6..9 {
            layout(s).changes.push(PodEvent {
                arm: Arm::Baseline,
                pod,
                change: PodChange::Join,
                at: Duration::from_secs(1200),
            });
        }
    }));
    cases.push(aa("aa-pods-restart", |s| {
        pods(s, 9, 3, 0.05);
        for (arm, pod, at) in [(Arm::Canary, 1, 900), (Arm::Baseline, 2, 1500)] {
            layout(s).changes.push(PodEvent {
                arm,
                pod,
                change: PodChange::Restart,
                at: Duration::from_secs(at),
            });
        }
    }));
    // Fresh pods against old ones: a version's new pods are 15 % slower than production's
    // long-running pods (caches not yet warm, or a leak that has not built up), so a healthy
    // canary looks slower than production. Judged against production's 9 pods (10 % of the
    // traffic to the canary's one pod), and against a deployed baseline: one fresh pod of
    // production's version with the canary's traffic (Spinnaker's practice), its requests out
    // of production's share.
    let fresh = Effect {
        latency_factor: 1.15,
        ..Effect::default()
    };
    cases.push(aa("aa-fresh-pods-vs-production", |s| {
        pods(s, 9, 1, 0.05);
        s.canary.effect = fresh.clone();
    }));
    cases.push(aa("aa-fresh-pods-vs-deployed-baseline", |s| {
        pods(s, 1, 1, 0.05);
        s.total_rps *= 2.0 * s.canary_share;
        s.canary_share = 0.5;
        s.baseline.effect = fresh.clone();
        s.canary.effect = fresh.clone();
    }));
    let reg = Family::Regression;
    let mut broken = base("pods-broken-canary-pod");
    pods(&mut broken, 9, 3, 0.05);
    layout(&mut broken).faults.push(PodFault {
        arm: Arm::Canary,
        pod: 2,
        latency_factor: 1.0,
        error_factor: 10.0,
    });
    cases.push(Case {
        family: reg,
        scenario: broken.name.clone(),
        effect: "1 pod of 3 errors x10".into(),
        template: broken,
    });
    let mut hidden = effect(
        reg,
        "pods-broken-production-pod",
        "x2",
        Effect {
            error_factor: 2.0,
            ..Effect::default()
        },
    );
    pods(&mut hidden.template, 9, 1, 0.0);
    layout(&mut hidden.template).faults.push(PodFault {
        arm: Arm::Baseline,
        pod: 4,
        latency_factor: 1.0,
        error_factor: 10.0,
    });
    cases.push(hidden);
    // Regressions on top of pods ±10 % apart, around the design limit with 1 and 3 canary pods.
    let spread = |canary: usize, label: &str, e: Effect| {
        let mut c = effect(reg, &format!("pods-9-{canary}-spread-10"), label, e);
        pods(&mut c.template, 9, canary, 0.10);
        c
    };
    let slower = |pct: u32| Effect {
        latency_factor: 1.0 + f64::from(pct) / 100.0,
        ..Effect::default()
    };
    for pct in [25, 50, 75, 100] {
        cases.push(spread(1, &format!("+{pct}%"), slower(pct)));
    }
    cases.push(spread(
        1,
        "x2",
        Effect {
            error_factor: 2.0,
            ..Effect::default()
        },
    ));
    for pct in [25, 50] {
        cases.push(spread(3, &format!("+{pct}%"), slower(pct)));
    }
    cases
}
