use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};

use crate::clock::Clock;
use crate::deployer::{
    CanarySpec, Deployer, DeploymentStatus, ReleaseState, RollbackTarget, TrafficWeight,
};
use crate::error::{Error, Result};
use crate::metrics::CanaryMetrics;
use crate::notifier::{DecisionEvent, Notifier};
use crate::source::{MetricsQuery, MetricsSource};
use crate::version::Version;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The error a fake was told to return.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ScriptedError(pub String);

/// Healthy, complete metrics with plenty of samples: the same for every version, so two of
/// them compare as equal.
pub fn healthy_metrics(version: &str) -> CanaryMetrics {
    CanaryMetrics::at(version, Utc.timestamp_opt(0, 0).unwrap())
        .with_latency_p50_ms(45.0)
        .with_latency_p95_ms(180.0)
        .with_latency_p99_ms(320.0)
        .with_error_rate_percent(0.4)
        .with_model_confidence(0.91)
        .with_request_rate_rps(120.0)
        .with_sample_count(36_000.0)
}

/// A script and the time it starts at (`None`: the beginning of time).
type Timed = (Option<DateTime<Utc>>, Script);

#[derive(Clone)]
enum Script {
    Metrics(Box<CanaryMetrics>),
    Fail { message: String, retryable: bool },
}

/// A [`MetricsSource`] scripted per version and time.
///
/// A version answers with the latest script whose start is at or before the query's time.
/// A version with no script has no series: every metric is `None`, as with a real source.
#[derive(Default)]
pub struct ScriptedSource {
    scripts: Mutex<HashMap<String, Vec<Timed>>>,
    calls: Mutex<Vec<MetricsQuery>>,
}

impl std::fmt::Debug for ScriptedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedSource")
            .field("calls", &lock(&self.calls).len())
            .finish_non_exhaustive()
    }
}

impl ScriptedSource {
    /// A source with no series at all.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&self, version: &str, from: Option<DateTime<Utc>>, script: Script) {
        let mut scripts = lock(&self.scripts);
        let entries = scripts.entry(version.to_owned()).or_default();
        entries.push((from, script));
        entries.sort_by_key(|(from, _)| *from);
    }

    /// `version` answers with `metrics` from the beginning of time.
    pub fn set(&self, version: &str, metrics: CanaryMetrics) {
        self.push(version, None, Script::Metrics(Box::new(metrics)));
    }

    /// `version` answers with `metrics` for queries at or after `from`.
    pub fn set_from(&self, version: &str, from: DateTime<Utc>, metrics: CanaryMetrics) {
        self.push(version, Some(from), Script::Metrics(Box::new(metrics)));
    }

    /// `version` fails from the beginning of time.
    pub fn fail(&self, version: &str, message: &str, retryable: bool) {
        let script = Script::Fail {
            message: message.into(),
            retryable,
        };
        self.push(version, None, script);
    }

    /// `version` fails for queries at or after `from`.
    pub fn fail_from(&self, version: &str, from: DateTime<Utc>, message: &str) {
        let script = Script::Fail {
            message: message.into(),
            retryable: true,
        };
        self.push(version, Some(from), script);
    }

    /// Every query so far, in order.
    pub fn calls(&self) -> Vec<MetricsQuery> {
        lock(&self.calls).clone()
    }
}

#[async_trait]
impl MetricsSource for ScriptedSource {
    async fn fetch(&self, query: &MetricsQuery) -> Result<CanaryMetrics> {
        lock(&self.calls).push(query.clone());
        self.answer(query)
    }

    /// The scripted values at every `step` of the window: flat lines that change where the
    /// script does, and a failure where it fails. Not counted in [`ScriptedSource::calls`].
    async fn fetch_series(
        &self,
        query: &MetricsQuery,
        step: std::time::Duration,
    ) -> Result<Vec<crate::MetricSeries>> {
        let at = query.at.unwrap_or_else(Utc::now);
        let (Ok(window), Ok(step)) = (
            chrono::Duration::from_std(query.window),
            chrono::Duration::from_std(step.max(std::time::Duration::from_secs(1))),
        ) else {
            return Ok(Vec::new());
        };
        let scripts = lock(&self.scripts);
        let entries: &[Timed] = scripts
            .get(query.version.as_str())
            .map_or(&[], Vec::as_slice);
        let mut series: Vec<crate::MetricSeries> = Vec::new();
        let mut t = at - window;
        while t <= at {
            // Entries are sorted by start: the last one started by `t` holds.
            let Some((_, script)) = entries
                .iter()
                .rev()
                .find(|(from, _)| from.is_none_or(|f| f <= t))
            else {
                t += step;
                continue;
            };
            let m = match script {
                Script::Metrics(m) => m,
                Script::Fail { message, retryable } => {
                    return Err(Error::source_failed(
                        query.version.as_str(),
                        *retryable,
                        ScriptedError(message.clone()),
                    ))
                }
            };
            let x = t.timestamp_millis() as f64 / 1000.0;
            let builtins = crate::metrics::names::ALL.iter().copied();
            for name in builtins.chain(m.custom.keys().map(String::as_str)) {
                let Some(v) = m.value(name) else { continue };
                match series.iter_mut().find(|s| s.metric == name) {
                    Some(s) => s.points.push([x, v]),
                    None => series.push(crate::MetricSeries {
                        metric: name.to_owned(),
                        points: vec![[x, v]],
                    }),
                }
            }
            t += step;
        }
        Ok(series)
    }
}

impl ScriptedSource {
    /// What the script says for `query`, without recording the call.
    fn answer(&self, query: &MetricsQuery) -> Result<CanaryMetrics> {
        let at = query.at.unwrap_or_else(Utc::now);
        let script = lock(&self.scripts)
            .get(query.version.as_str())
            .and_then(|entries| {
                entries
                    .iter()
                    .rev()
                    .find(|(from, _)| from.is_none_or(|f| f <= at))
                    .map(|(_, s)| s.clone())
            });
        match script {
            None => Ok(CanaryMetrics::at(query.version.as_str(), at)),
            Some(Script::Metrics(mut m)) => {
                m.version = query.version.to_string();
                m.timestamp = at;
                Ok(*m)
            }
            Some(Script::Fail { message, retryable }) => Err(Error::source_failed(
                query.version.as_str(),
                retryable,
                ScriptedError(message),
            )),
        }
    }
}

/// A call made to a [`RecordingDeployer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeployerCall {
    /// `production_version()`.
    ProductionVersion,
    /// `deploy_canary(spec)`.
    DeployCanary {
        /// The version.
        version: String,
        /// The values file.
        values_file: Option<PathBuf>,
    },
    /// `set_canary_weight(w)`.
    SetCanaryWeight(u8),
    /// `promote(version)`.
    Promote(String),
    /// `rollback(target)`.
    Rollback(RollbackTarget),
    /// `status()`.
    Status,
    /// `deploy_baseline(spec)`.
    DeployBaseline {
        /// The version (production's).
        version: String,
        /// The values file.
        values_file: Option<PathBuf>,
    },
    /// `remove_baseline()`.
    RemoveBaseline,
}

/// An operation of [`Deployer`], for failure injection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeployerOp {
    /// `production_version`.
    ProductionVersion,
    /// `deploy_canary`.
    DeployCanary,
    /// `set_canary_weight`.
    SetCanaryWeight,
    /// `promote`.
    Promote,
    /// `rollback`.
    Rollback,
    /// `status`.
    Status,
    /// `deploy_baseline`.
    DeployBaseline,
    /// `remove_baseline`.
    RemoveBaseline,
}

#[derive(Default)]
struct DeployState {
    history: Vec<Version>,
    canary: Option<Version>,
    baseline: Option<Version>,
    weight: u8,
    calls: Vec<DeployerCall>,
    failures: HashMap<DeployerOp, String>,
}

/// An in-memory [`Deployer`] that keeps production and canary state and records every call.
#[derive(Default)]
pub struct RecordingDeployer {
    state: Mutex<DeployState>,
}

impl std::fmt::Debug for RecordingDeployer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingDeployer").finish_non_exhaustive()
    }
}

impl RecordingDeployer {
    /// Nothing deployed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Production runs `version`.
    pub fn with_production(version: &str) -> Self {
        let d = Self::default();
        lock(&d.state)
            .history
            .push(Version::new(version).expect("a valid version"));
        d
    }

    /// Makes every later call of `op` fail with `message`.
    pub fn fail_on(&self, op: DeployerOp, message: &str) {
        lock(&self.state).failures.insert(op, message.to_owned());
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<DeployerCall> {
        lock(&self.state).calls.clone()
    }

    /// What production runs.
    pub fn production(&self) -> Option<Version> {
        lock(&self.state).history.last().cloned()
    }

    /// What the canary runs.
    pub fn canary(&self) -> Option<Version> {
        lock(&self.state).canary.clone()
    }

    /// What the deployed baseline runs, if one is deployed.
    pub fn baseline(&self) -> Option<Version> {
        lock(&self.state).baseline.clone()
    }

    /// The canary's traffic weight.
    pub fn weight(&self) -> u8 {
        lock(&self.state).weight
    }

    fn enter(
        &self,
        op: DeployerOp,
        call: DeployerCall,
        what: String,
    ) -> Result<MutexGuard<'_, DeployState>> {
        let mut s = lock(&self.state);
        s.calls.push(call);
        match s.failures.get(&op) {
            Some(message) => Err(Error::deploy_failed(
                what,
                false,
                ScriptedError(message.clone()),
            )),
            None => Ok(s),
        }
    }
}

#[async_trait]
impl Deployer for RecordingDeployer {
    async fn deploy_canary(&self, spec: &CanarySpec) -> Result<()> {
        let call = DeployerCall::DeployCanary {
            version: spec.version.to_string(),
            values_file: spec.values_file.clone(),
        };
        let mut s = self.enter(
            DeployerOp::DeployCanary,
            call,
            format!("deploy canary {}", spec.version),
        )?;
        s.canary = Some(spec.version.clone());
        Ok(())
    }

    async fn set_canary_weight(&self, weight: TrafficWeight) -> Result<()> {
        let call = DeployerCall::SetCanaryWeight(weight.percent());
        let mut s = self.enter(
            DeployerOp::SetCanaryWeight,
            call,
            format!("set canary weight to {weight}"),
        )?;
        if s.canary.is_none() {
            return Err(Error::deploy_failed(
                format!("set canary weight to {weight}"),
                false,
                ScriptedError("no canary is deployed".into()),
            ));
        }
        s.weight = weight.percent();
        Ok(())
    }

    async fn promote(&self, version: &Version) -> Result<()> {
        let call = DeployerCall::Promote(version.to_string());
        let mut s = self.enter(DeployerOp::Promote, call, format!("promote {version}"))?;
        s.history.push(version.clone());
        s.canary = None;
        s.weight = 0;
        Ok(())
    }

    async fn rollback(&self, target: &RollbackTarget) -> Result<()> {
        let call = DeployerCall::Rollback(target.clone());
        let mut s = self.enter(DeployerOp::Rollback, call, "roll back".into())?;
        match target {
            RollbackTarget::Canary => {
                s.canary = None;
                s.weight = 0;
            }
            RollbackTarget::Production { revision } => {
                let keep = match revision {
                    Some(r) => *r as usize,
                    None => s.history.len().saturating_sub(1),
                };
                if keep == 0 || keep > s.history.len() {
                    return Err(Error::deploy_failed(
                        "roll back production",
                        false,
                        ScriptedError(format!("no revision {keep} to roll back to")),
                    ));
                }
                let version = s.history[keep - 1].clone();
                s.history.push(version);
            }
        }
        Ok(())
    }

    async fn status(&self) -> Result<DeploymentStatus> {
        let s = self.enter(
            DeployerOp::Status,
            DeployerCall::Status,
            "read status".into(),
        )?;
        let state = |present: bool| {
            if present {
                ReleaseState::Deployed
            } else {
                ReleaseState::Absent
            }
        };
        Ok(DeploymentStatus {
            production: state(!s.history.is_empty()),
            production_revision: (!s.history.is_empty()).then_some(s.history.len() as u32),
            canary: state(s.canary.is_some()),
            canary_version: s.canary.clone(),
        })
    }

    async fn production_version(&self) -> Result<Option<Version>> {
        let s = self.enter(
            DeployerOp::ProductionVersion,
            DeployerCall::ProductionVersion,
            "read the production version".into(),
        )?;
        Ok(s.history.last().cloned())
    }

    async fn deploy_baseline(&self, spec: &CanarySpec) -> Result<()> {
        let call = DeployerCall::DeployBaseline {
            version: spec.version.to_string(),
            values_file: spec.values_file.clone(),
        };
        let mut s = self.enter(
            DeployerOp::DeployBaseline,
            call,
            format!("deploy baseline {}", spec.version),
        )?;
        s.baseline = Some(spec.version.clone());
        Ok(())
    }

    async fn remove_baseline(&self) -> Result<()> {
        let mut s = self.enter(
            DeployerOp::RemoveBaseline,
            DeployerCall::RemoveBaseline,
            "remove the baseline".into(),
        )?;
        s.baseline = None;
        Ok(())
    }
}

/// A [`Notifier`] that keeps every event, or fails every time.
#[derive(Debug)]
pub struct RecordingNotifier {
    name: String,
    failure: Option<String>,
    events: Mutex<Vec<DecisionEvent>>,
}

impl RecordingNotifier {
    /// A notifier that accepts every event.
    pub fn new(name: &str) -> Self {
        RecordingNotifier {
            name: name.to_owned(),
            failure: None,
            events: Mutex::new(Vec::new()),
        }
    }

    /// A notifier that is down: every call fails with `message` (and is still recorded).
    pub fn failing(name: &str, message: &str) -> Self {
        RecordingNotifier {
            failure: Some(message.to_owned()),
            ..Self::new(name)
        }
    }

    /// Every event received, in order.
    pub fn events(&self) -> Vec<DecisionEvent> {
        lock(&self.events).clone()
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    fn name(&self) -> String {
        self.name.clone()
    }
    async fn notify(&self, event: &DecisionEvent) -> Result<()> {
        lock(&self.events).push(event.clone());
        match &self.failure {
            Some(m) => Err(Error::notify_failed(
                &self.name,
                true,
                ScriptedError(m.clone()),
            )),
            None => Ok(()),
        }
    }
}

/// A clock that never really waits: `sleep` moves its time forward at once.
#[derive(Debug)]
pub struct ManualClock {
    state: Mutex<(DateTime<Utc>, Vec<Duration>)>,
}

impl Default for ManualClock {
    /// Starts at 2026-01-01T00:00:00Z.
    fn default() -> Self {
        Self::starting_at(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap())
    }
}

impl ManualClock {
    /// A clock whose time starts at `start`.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        ManualClock {
            state: Mutex::new((start, Vec::new())),
        }
    }

    /// Moves time forward.
    pub fn advance(&self, by: Duration) {
        let mut s = lock(&self.state);
        s.0 += chrono::Duration::from_std(by).expect("a representable duration");
    }

    /// Every sleep requested, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        lock(&self.state).1.clone()
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        lock(&self.state).0
    }
    async fn sleep(&self, duration: Duration) {
        lock(&self.state).1.push(duration);
        self.advance(duration);
    }
}
