//! [`HelmDeployer`]: canary's `Deployer` over the helm CLI.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use canary_core::{
    CanarySpec, Deployer, DeploymentStatus, ReleaseState, RollbackTarget, TrafficWeight, Version,
};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::sync::OnceCell;
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::release::{
    image_tag, previous_deployed_revision, release_state, validate_release_name, HistoryEntry,
    StatusJson, BASELINE_SUFFIX, CANARY_SUFFIX,
};

/// How helm waits for resources to become ready.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum WaitStrategy {
    /// helm 4's `--wait=watcher` (kstatus); `--wait` on helm 3.
    #[default]
    Watcher,
    /// helm 4's `--wait=legacy`; `--wait` on helm 3.
    Legacy,
    /// Do not wait (not recommended: the analysis would start before the canary runs).
    None,
}

/// How to run helm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct HelmConfig {
    /// The production release; the canary is `<release>-canary`.
    pub release: String,
    /// The chart: a path, a `repo/chart` reference or an OCI URL.
    pub chart: String,
    /// `--namespace`.
    pub namespace: Option<String>,
    /// `--kube-context`.
    pub kube_context: Option<String>,
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// Values files for the canary's install (`-f`, in order), before the request's own.
    pub values_files: Vec<PathBuf>,
    /// The helm binary; a bare name is looked up on PATH.
    pub helm_binary: PathBuf,
    /// helm's `--timeout` for each operation, in seconds.
    #[serde(with = "canary_core::seconds")]
    #[cfg_attr(feature = "schema", schemars(with = "canary_core::seconds::Schema"))]
    pub timeout: Duration,
    /// Extra time after `timeout` before a hanging helm is stopped (SIGTERM, then SIGKILL).
    #[serde(with = "canary_core::seconds")]
    #[cfg_attr(feature = "schema", schemars(with = "canary_core::seconds::Schema"))]
    pub kill_grace: Duration,
    /// How helm waits for readiness.
    pub wait: WaitStrategy,
    /// Let helm undo a failed upgrade itself (`--rollback-on-failure` on helm 4, `--atomic` on 3).
    pub rollback_on_failure: bool,
    /// Extra arguments for every helm command, e.g. `--debug`.
    pub extra_args: Vec<String>,
    /// Log and report the commands, but do not run them.
    pub dry_run: bool,
    /// helm's major version; `None` asks `helm version`.
    pub helm_major: Option<u32>,
    /// Values (`--set-string`) that tell a deployed baseline's pods apart from production's,
    /// which run the same version: `track: baseline` by default, which the example chart turns
    /// into the pods' `track` label (match it with `prometheus.baseline_matchers`). Keys and
    /// values are letters, digits, `.`, `-` and `_` only.
    pub baseline_values: BTreeMap<String, String>,
}

impl Default for HelmConfig {
    fn default() -> Self {
        HelmConfig {
            release: "apex-inference".into(),
            chart: "./chart".into(),
            namespace: None,
            kube_context: None,
            kubeconfig: None,
            values_files: Vec::new(),
            helm_binary: "helm".into(),
            timeout: Duration::from_secs(300),
            kill_grace: Duration::from_secs(30),
            wait: WaitStrategy::Watcher,
            rollback_on_failure: true,
            extra_args: Vec::new(),
            dry_run: false,
            helm_major: None,
            baseline_values: BTreeMap::from([("track".to_owned(), "baseline".to_owned())]),
        }
    }
}

/// Drives helm: production is the release `<release>`, the canary the release
/// `<release>-canary` of the same chart. Commands run as argument vectors, never through a
/// shell; versions go in with `--set-string`, so they are never parsed as YAML or split.
#[derive(Debug)]
pub struct HelmDeployer {
    config: HelmConfig,
    canary_release: String,
    baseline_release: String,
    /// Whether this deployer installed a baseline that is still there, so that a weight
    /// change moves its share too.
    baseline_deployed: AtomicBool,
    major: OnceCell<u32>,
    commands: Mutex<Vec<Vec<String>>>,
}

impl HelmDeployer {
    /// Checks `config` (release and namespace names) and makes a deployer.
    pub fn new(config: HelmConfig) -> Result<Self> {
        validate_release_name(&config.release)?;
        let canary_release = format!("{}{CANARY_SUFFIX}", config.release);
        validate_release_name(&canary_release)?;
        // Checked when a baseline is deployed: a release name that leaves room for
        // "-canary" only is still good for everything else.
        let baseline_release = format!("{}{BASELINE_SUFFIX}", config.release);
        let plain = |t: &str| {
            !t.is_empty()
                && !t.starts_with('-')
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        };
        if let Some((k, v)) = config
            .baseline_values
            .iter()
            .find(|(k, v)| !plain(k) || !plain(v))
        {
            return Err(Error::InvalidConfig {
                field: "baseline_values",
                reason: format!(
                    "{k:?}: {v:?} may hold only letters, digits, '.', '-' and '_' (they go to helm's --set-string)"
                ),
            });
        }
        if let Some(ns) = &config.namespace {
            let ok = !ns.is_empty()
                && ns.len() <= 63
                && ns
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !ns.starts_with('-')
                && !ns.ends_with('-');
            if !ok {
                return Err(Error::InvalidConfig {
                    field: "namespace",
                    reason: format!("{ns:?} is not a namespace name"),
                });
            }
        }
        if config.chart.is_empty() || config.chart.starts_with('-') {
            return Err(Error::InvalidConfig {
                field: "chart",
                reason: format!("{:?} is not a chart reference", config.chart),
            });
        }
        let major = OnceCell::new_with(config.helm_major);
        Ok(HelmDeployer {
            canary_release,
            baseline_release,
            baseline_deployed: AtomicBool::new(false),
            major,
            commands: Mutex::new(Vec::new()),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &HelmConfig {
        &self.config
    }

    /// The canary release's name.
    pub fn canary_release(&self) -> &str {
        &self.canary_release
    }

    /// The deployed baseline's release name.
    pub fn baseline_release(&self) -> &str {
        &self.baseline_release
    }

    /// Every helm command run (or, in dry-run, that would have run), in order.
    pub fn commands(&self) -> Vec<Vec<String>> {
        self.commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// helm's major version, from `helm version` (once).
    pub async fn helm_major(&self) -> Result<u32> {
        self.major
            .get_or_try_init(|| async {
                let args = vec!["version".to_owned(), "--template".to_owned(), "{{.Version}}".to_owned()];
                let out = match self.execute(&self.config.release, args.clone()).await {
                    Ok(out) => out,
                    Err(e) if self.config.dry_run => {
                        warn!(error = %e, "cannot ask helm its version in a dry run; assuming helm 4");
                        return Ok(4);
                    }
                    Err(e) => return Err(e),
                };
                let text = out.trim();
                text.trim_start_matches('v')
                    .split('.')
                    .next()
                    .and_then(|m| m.parse::<u32>().ok())
                    .ok_or_else(|| Error::InvalidOutput { command: "helm version".into(), reason: format!("{text:?} is not a version") })
            })
            .await
            .copied()
    }

    fn common_args(&self, args: &mut Vec<String>) {
        if let Some(ns) = &self.config.namespace {
            args.extend(["--namespace".into(), ns.clone()]);
        }
        if let Some(ctx) = &self.config.kube_context {
            args.extend(["--kube-context".into(), ctx.clone()]);
        }
        if let Some(path) = &self.config.kubeconfig {
            args.extend(["--kubeconfig".into(), path.display().to_string()]);
        }
        args.extend(self.config.extra_args.iter().cloned());
    }

    /// `--wait`, `--timeout` and the roll-back-on-failure flag, as the helm version wants them.
    async fn mutation_args(&self, args: &mut Vec<String>, rollback_on_failure: bool) -> Result<()> {
        let major = self.helm_major().await?;
        match (self.config.wait, major >= 4) {
            (WaitStrategy::None, _) => {}
            (WaitStrategy::Watcher, true) => args.push("--wait=watcher".into()),
            (WaitStrategy::Legacy, true) => args.push("--wait=legacy".into()),
            (_, false) => args.push("--wait".into()),
        }
        if rollback_on_failure && self.config.rollback_on_failure {
            args.push(
                if major >= 4 {
                    "--rollback-on-failure"
                } else {
                    "--atomic"
                }
                .into(),
            );
        }
        args.extend([
            "--timeout".into(),
            format!("{}s", self.config.timeout.as_secs().max(1)),
        ]);
        Ok(())
    }

    /// Runs helm with `args` and returns its stdout; stderr classifies failures.
    async fn run(&self, release: &str, args: Vec<String>) -> Result<String> {
        if self.config.dry_run {
            info!(command = %command_line(&args), "dry run: not running helm");
            self.commands
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(args);
            return Ok(String::new());
        }
        self.commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(args.clone());
        self.execute(release, args).await
    }

    async fn execute(&self, release: &str, args: Vec<String>) -> Result<String> {
        let command = command_line(&args);
        info!(%command, "running helm");
        let binary = self.config.helm_binary.display().to_string();
        let mut child = tokio::process::Command::new(&self.config.helm_binary)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| Error::Spawn { binary, source })?;
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let limit = self.config.timeout + self.config.kill_grace;
        let finished = tokio::time::timeout(limit, async {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let (status, _, _) = tokio::join!(
                child.wait(),
                stdout.read_to_end(&mut out),
                stderr.read_to_end(&mut err)
            );
            (status, out, err)
        })
        .await;
        let (status, out, err) = match finished {
            Ok(done) => done,
            Err(_) => {
                stop(&mut child).await;
                return Err(Error::Killed {
                    command,
                    after: limit,
                });
            }
        };
        let status = status.map_err(|source| Error::Spawn {
            binary: self.config.helm_binary.display().to_string(),
            source,
        })?;
        let stdout = String::from_utf8_lossy(&out).into_owned();
        if status.success() {
            return Ok(stdout);
        }
        let stderr = String::from_utf8_lossy(&err).trim().to_owned();
        Err(Error::classify(
            release,
            &self.config.chart,
            command,
            status.code(),
            stderr,
        ))
    }

    async fn uninstall_canary(&self) -> Result<()> {
        self.uninstall(&self.canary_release).await
    }

    /// `helm uninstall <release> --ignore-not-found`: an absent release is success.
    async fn uninstall(&self, release: &str) -> Result<()> {
        let mut args = vec![
            "uninstall".into(),
            release.to_owned(),
            "--ignore-not-found".into(),
        ];
        self.common_args(&mut args);
        self.mutation_args(&mut args, false).await?;
        match self.run(release, args).await {
            Ok(_) | Err(Error::ReleaseNotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Runs a read command that prints JSON (`<command...> <release> -o json`); a missing
    /// release, or a dry run, is `None`.
    async fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        command: &[&str],
        release: &str,
    ) -> Result<Option<T>> {
        let mut args: Vec<String> = command.iter().map(|c| c.to_string()).collect();
        args.extend([release.to_owned(), "-o".into(), "json".into()]);
        self.common_args(&mut args);
        match self.run(release, args).await {
            Ok(out) if self.config.dry_run && out.is_empty() => Ok(None),
            Ok(out) => serde_json::from_str(&out)
                .map(Some)
                .map_err(|e| Error::InvalidOutput {
                    command: format!("helm {} {release} -o json", command.join(" ")),
                    reason: e.to_string(),
                }),
            Err(Error::ReleaseNotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn release_status(&self, release: &str) -> Result<Option<StatusJson>> {
        self.read_json(&["status"], release).await
    }

    async fn values(&self, release: &str) -> Result<Option<serde_json::Value>> {
        self.read_json(&["get", "values"], release).await
    }

    /// `helm history <release> -o json`.
    pub async fn history(&self) -> Result<Vec<HistoryEntry>> {
        let release = &self.config.release;
        let mut args = vec![
            "history".into(),
            release.clone(),
            "-o".into(),
            "json".into(),
        ];
        self.common_args(&mut args);
        let out = self.run(release, args).await?;
        if self.config.dry_run && out.is_empty() {
            return Ok(Vec::new());
        }
        serde_json::from_str(&out).map_err(|e| Error::InvalidOutput {
            command: format!("helm history {release} -o json"),
            reason: e.to_string(),
        })
    }

    /// Installs or upgrades the canary release at `version`.
    pub async fn deploy(&self, spec: &CanarySpec) -> Result<()> {
        self.install(&self.canary_release, spec, &BTreeMap::new())
            .await
    }

    /// Installs or upgrades the deployed baseline at `spec.version` (production's), with the
    /// canary's values and `baseline_values`.
    pub async fn deploy_baseline_release(&self, spec: &CanarySpec) -> Result<()> {
        validate_release_name(&self.baseline_release)?;
        // Marked first: a failed or cancelled install may have left something to remove.
        self.baseline_deployed.store(true, Ordering::SeqCst);
        self.install(&self.baseline_release, spec, &self.config.baseline_values)
            .await
    }

    /// Removes the deployed baseline (`helm uninstall --ignore-not-found`).
    pub async fn remove_baseline_release(&self) -> Result<()> {
        self.uninstall(&self.baseline_release).await?;
        self.baseline_deployed.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// `helm upgrade --install <release>` in canary mode at `spec.version`, with `set`.
    async fn install(
        &self,
        release: &str,
        spec: &CanarySpec,
        set: &BTreeMap<String, String>,
    ) -> Result<()> {
        let mut args = vec![
            "upgrade".into(),
            "--install".into(),
            release.to_owned(),
            self.config.chart.clone(),
        ];
        // Later files win in helm: the config's first, then the request's.
        for values in self.config.values_files.iter().chain(&spec.values_file) {
            if !self.config.dry_run && !values.is_file() {
                return Err(Error::InvalidConfig {
                    field: "values_file",
                    reason: format!("{} does not exist", values.display()),
                });
            }
            args.extend(["-f".into(), values.display().to_string()]);
        }
        args.extend(["--set-string".into(), format!("image.tag={}", spec.version)]);
        args.extend(["--set".into(), "canary.enabled=true".into()]);
        for (k, v) in set {
            args.extend(["--set-string".into(), format!("{k}={v}")]);
        }
        self.common_args(&mut args);
        self.mutation_args(&mut args, true).await?;
        self.run(release, args).await.map(drop)
    }

    /// Sends `weight` of the traffic to the canary, keeping its other values; a deployed
    /// baseline gets the same share.
    pub async fn set_weight(&self, weight: TrafficWeight) -> Result<()> {
        self.set_release_weight(&self.canary_release, weight)
            .await?;
        if self.baseline_deployed.load(Ordering::SeqCst) {
            self.set_release_weight(&self.baseline_release, weight)
                .await?;
        }
        Ok(())
    }

    async fn set_release_weight(&self, release: &str, weight: TrafficWeight) -> Result<()> {
        let mut args = vec![
            "upgrade".into(),
            release.to_owned(),
            self.config.chart.clone(),
            "--reuse-values".into(),
            "--set".into(),
            format!("canary.weight={}", weight.percent()),
        ];
        self.common_args(&mut args);
        self.mutation_args(&mut args, true).await?;
        self.run(release, args).await.map(drop)
    }

    /// Upgrades production to `version`, then removes the canary.
    pub async fn promote_version(&self, version: &Version) -> Result<()> {
        let release = &self.config.release;
        let mut args = vec![
            "upgrade".into(),
            release.clone(),
            self.config.chart.clone(),
            "--reuse-values".into(),
            "--set-string".into(),
            format!("image.tag={version}"),
            "--set".into(),
            "canary.enabled=false".into(),
        ];
        self.common_args(&mut args);
        self.mutation_args(&mut args, true).await?;
        self.run(release, args).await?;
        self.uninstall_canary().await
    }

    /// Rolls production back to `revision`, or to the last deployed one before the current.
    pub async fn rollback_production(&self, revision: Option<u32>) -> Result<u32> {
        let release = self.config.release.clone();
        let revision = match revision {
            Some(r) => r,
            None if self.config.dry_run => 0,
            None => {
                let history = self.history().await?;
                previous_deployed_revision(&history).ok_or_else(|| Error::InvalidOutput {
                    command: format!("helm history {release} -o json"),
                    reason: "no earlier deployed revision to roll back to".into(),
                })?
            }
        };
        let mut args = vec!["rollback".into(), release.clone(), revision.to_string()];
        self.common_args(&mut args);
        self.mutation_args(&mut args, false).await?;
        self.run(&release, args).await?;
        Ok(revision)
    }
}

/// Stops a helm that ran past its time: SIGTERM so it can mark the release failed, then SIGKILL.
async fn stop(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        // `kill` is a program, not a shell; it spares this crate any unsafe signal code.
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
}

/// A command for people: `helm` and its arguments, quoted where needed.
fn command_line(args: &[String]) -> String {
    let mut text = String::from("helm");
    for a in args {
        text.push(' ');
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"\\$`".contains(c)) {
            text.push('\'');
            text.push_str(&a.replace('\'', "'\\''"));
            text.push('\'');
        } else {
            text.push_str(a);
        }
    }
    text
}

fn deploy_error(operation: String, e: Error) -> canary_core::Error {
    let retryable = e.is_retryable();
    canary_core::Error::deploy_failed(operation, retryable, e)
}

#[async_trait]
impl Deployer for HelmDeployer {
    async fn deploy_canary(&self, spec: &CanarySpec) -> canary_core::Result<()> {
        self.deploy(spec)
            .await
            .map_err(|e| deploy_error(format!("deploy canary {}", spec.version), e))
    }

    async fn set_canary_weight(&self, weight: TrafficWeight) -> canary_core::Result<()> {
        self.set_weight(weight)
            .await
            .map_err(|e| deploy_error(format!("set the canary weight to {weight}"), e))
    }

    async fn promote(&self, version: &Version) -> canary_core::Result<()> {
        self.promote_version(version)
            .await
            .map_err(|e| deploy_error(format!("promote {version}"), e))
    }

    async fn rollback(&self, target: &RollbackTarget) -> canary_core::Result<()> {
        match target {
            RollbackTarget::Canary => self
                .uninstall_canary()
                .await
                .map_err(|e| deploy_error("roll back the canary".into(), e)),
            RollbackTarget::Production { revision } => self
                .rollback_production(*revision)
                .await
                .map(drop)
                .map_err(|e| deploy_error("roll back production".into(), e)),
        }
    }

    async fn deploy_baseline(&self, spec: &CanarySpec) -> canary_core::Result<()> {
        self.deploy_baseline_release(spec)
            .await
            .map_err(|e| deploy_error(format!("deploy baseline {}", spec.version), e))
    }

    async fn remove_baseline(&self) -> canary_core::Result<()> {
        self.remove_baseline_release()
            .await
            .map_err(|e| deploy_error("remove the baseline".into(), e))
    }

    async fn status(&self) -> canary_core::Result<DeploymentStatus> {
        let read = async {
            let production = self.release_status(&self.config.release).await?;
            let canary = self.release_status(&self.canary_release).await?;
            let canary_version = match &canary {
                Some(_) => self
                    .values(&self.canary_release)
                    .await?
                    .as_ref()
                    .and_then(image_tag),
                None => None,
            };
            Ok::<_, Error>(DeploymentStatus {
                production: production
                    .as_ref()
                    .map(|s| release_state(&s.info.status))
                    .unwrap_or(ReleaseState::Absent),
                production_revision: production.as_ref().map(|s| s.version),
                canary: canary
                    .as_ref()
                    .map(|s| release_state(&s.info.status))
                    .unwrap_or(ReleaseState::Absent),
                canary_version: canary_version.and_then(|v| Version::new(v).ok()),
            })
        };
        read.await
            .map_err(|e| deploy_error("read the release status".into(), e))
    }

    async fn production_version(&self) -> canary_core::Result<Option<Version>> {
        let values = self
            .values(&self.config.release)
            .await
            .map_err(|e| deploy_error("read the production version".into(), e))?;
        match values.as_ref().and_then(image_tag) {
            None => Ok(None),
            Some(tag) => Version::new(tag).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_display_quoted() {
        let args = vec!["upgrade".into(), "a b".into(), "it's".into()];
        assert_eq!(command_line(&args), "helm upgrade 'a b' 'it'\\''s'");
    }

    #[test]
    fn bad_names_are_refused() {
        let c = |release: &str, ns: Option<&str>| HelmConfig {
            release: release.into(),
            namespace: ns.map(Into::into),
            ..Default::default()
        };
        assert!(HelmDeployer::new(c("apex-inference", Some("prod"))).is_ok());
        assert!(HelmDeployer::new(c("Apex", None)).is_err());
        assert!(
            HelmDeployer::new(c(&"a".repeat(50), None)).is_err(),
            "the canary name would pass 53"
        );
        assert!(HelmDeployer::new(c("app", Some("--all-namespaces"))).is_err());
        assert!(HelmDeployer::new(HelmConfig {
            chart: "--set=x".into(),
            ..Default::default()
        })
        .is_err());
    }
}
