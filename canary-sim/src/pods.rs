//! Pods: how many each arm has, which one is broken, and which come and go during the run.

use std::time::Duration;

use canary_core::source::Arm;
use serde::{Deserialize, Serialize};

/// The most pods an arm may have (a production of 500 pods fits; the simulator keeps every
/// pod's series, so the bound keeps a scenario's memory bounded).
pub const MAX_PODS: usize = 1000;

/// Per-pod layout of a scenario. Without it each arm has `Scenario::instances` identical,
/// always-running pods.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Pods {
    /// Production's pods that ever run (a pod that [joins](PodChange::Join) later counts).
    pub baseline: usize,
    /// The canary's pods that ever run.
    pub canary: usize,
    /// Pods that behave worse than the rest of their arm.
    #[serde(default)]
    pub faults: Vec<PodFault>,
    /// Pods that start late, stop early or restart.
    #[serde(default)]
    pub changes: Vec<PodEvent>,
}

/// One pod worse than the rest of its arm, for the whole run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodFault {
    /// The pod's arm.
    pub arm: Arm,
    /// The pod's index in its arm, from 0.
    pub pod: usize,
    /// Its latency is multiplied by this.
    #[serde(default = "one")]
    pub latency_factor: f64,
    /// Its error rate is multiplied by this (at most 1).
    #[serde(default = "one")]
    pub error_factor: f64,
}

fn one() -> f64 {
    1.0
}

/// What happens to a pod during the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PodChange {
    /// The pod starts at `at` (a scale-up); before, it serves nothing and has no series. Its
    /// arm's warm-up, if any, counts from its start.
    Join,
    /// The pod stops at `at` (a scale-down, an eviction); after, it has no series.
    Leave,
    /// The pod's process restarts at `at`: its counters start again from zero (its warm-up
    /// is not replayed).
    Restart,
}

/// A change to one pod at one time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodEvent {
    /// The pod's arm.
    pub arm: Arm,
    /// The pod's index in its arm, from 0.
    pub pod: usize,
    /// What happens.
    pub change: PodChange,
    /// When, from the run's start.
    #[serde(with = "canary_core::seconds")]
    pub at: Duration,
}

/// One pod's life as the simulator needs it (times in seconds from the start).
#[derive(Clone, Debug)]
pub(crate) struct PodLife {
    pub(crate) from: f64,
    pub(crate) until: f64,
    pub(crate) restarts: Vec<f64>,
    pub(crate) latency_factor: f64,
    pub(crate) error_factor: f64,
}

impl PodLife {
    pub(crate) fn alive(&self, t: f64) -> bool {
        t >= self.from && t < self.until
    }
}

impl Pods {
    /// How many pods `arm` has.
    pub fn count(&self, arm: Arm) -> usize {
        match arm {
            Arm::Baseline => self.baseline,
            Arm::Canary => self.canary,
        }
    }

    /// Checks the layout against a run of `duration`; the message names the field.
    pub(crate) fn check(&self, duration: Duration) -> Result<(), String> {
        for arm in [Arm::Baseline, Arm::Canary] {
            let n = self.count(arm);
            if n == 0 || n > MAX_PODS {
                return Err(format!("pods: each arm needs 1 to {MAX_PODS} pods"));
            }
            let lives = self.lives(arm, n, duration.as_secs_f64());
            // Some pod must serve at every instant, or the arm's traffic has nowhere to go.
            let mut edges: Vec<f64> = lives.iter().flat_map(|l| [l.from, l.until]).collect();
            edges.push(0.0);
            for t in edges {
                if t < duration.as_secs_f64() && !lives.iter().any(|l| l.alive(t)) {
                    return Err(format!("pods: no {arm:?} pod runs at {t} s").to_lowercase());
                }
            }
        }
        for f in &self.faults {
            if f.pod >= self.count(f.arm) {
                return Err(format!("pods.faults: no pod {} in that arm", f.pod));
            }
            let factors_ok = f.latency_factor.is_finite()
                && f.latency_factor > 0.0
                && f.error_factor.is_finite()
                && f.error_factor >= 0.0;
            if !factors_ok {
                return Err("pods.faults: factors must be finite, the latency factor > 0 and the error factor >= 0".into());
            }
        }
        for e in &self.changes {
            if e.pod >= self.count(e.arm) {
                return Err(format!("pods.changes: no pod {} in that arm", e.pod));
            }
            if e.at > duration {
                return Err("pods.changes: a change after the run's end".into());
            }
        }
        Ok(())
    }

    /// Every pod's life in `arm`, `n` pods over a run of `duration_s`.
    pub(crate) fn lives(&self, arm: Arm, n: usize, duration_s: f64) -> Vec<PodLife> {
        let mut lives: Vec<PodLife> = (0..n)
            .map(|_| PodLife {
                from: 0.0,
                until: f64::INFINITY,
                restarts: Vec::new(),
                latency_factor: 1.0,
                error_factor: 1.0,
            })
            .collect();
        for e in self.changes.iter().filter(|e| e.arm == arm && e.pod < n) {
            let at = e.at.as_secs_f64().min(duration_s);
            let life = &mut lives[e.pod];
            match e.change {
                PodChange::Join => life.from = at,
                PodChange::Leave => life.until = life.until.min(at),
                PodChange::Restart => life.restarts.push(at),
            }
        }
        for f in self.faults.iter().filter(|f| f.arm == arm && f.pod < n) {
            lives[f.pod].latency_factor *= f.latency_factor;
            lives[f.pod].error_factor *= f.error_factor;
        }
        for l in &mut lives {
            l.restarts.sort_by(f64::total_cmp);
        }
        lives
    }
}

/// The name of pod `i` of `arm`, as the series label it is rendered under.
pub fn pod_name(arm: Arm, i: usize) -> String {
    match arm {
        Arm::Baseline => format!("production-{i}"),
        Arm::Canary => format!("canary-{i}"),
    }
}
