//! The adapters a subcommand needs, built from the config file and the flags: Prometheus'
//! settings, the judge, the notifiers.

use std::sync::Arc;

use canary_core::judge::{
    ArgoParameters, FlaggerParameters, JudgeFactory, KayentaParameters, SequentialParameters,
};
use canary_helm::HelmConfig;
use canary_notify::SlackNotifier;
use canary_prometheus::PrometheusConfig;

use crate::{config, JudgeName};

/// The judge factory for `--judge`, with the config's parameters where it has them; `None` is
/// the guide's single look.
pub(crate) fn judge_factory(
    name: JudgeName,
    file: Option<&config::CanaryConfig>,
) -> Option<Arc<dyn JudgeFactory>> {
    match name {
        JudgeName::Threshold => None,
        JudgeName::Sequential => Some(Arc::new(
            file.map_or_else(SequentialParameters::default, |f| f.sequential.clone()),
        )),
        JudgeName::Flagger => Some(Arc::new(
            file.map_or_else(FlaggerParameters::default, |f| f.flagger.clone()),
        )),
        JudgeName::Argo => Some(Arc::new(
            file.map_or_else(ArgoParameters::default, |f| f.argo.clone()),
        )),
        JudgeName::Kayenta => Some(Arc::new(
            file.map_or_else(KayentaParameters::default, |f| f.kayenta.clone()),
        )),
    }
}

/// Slack (`SLACK_WEBHOOK_URL` over the file's), the file's webhooks and Alertmanager.
pub(crate) fn notifiers(
    file: Option<&config::CanaryConfig>,
) -> Result<Vec<Arc<dyn canary_core::Notifier>>, String> {
    let chain = |e: &(dyn std::error::Error + 'static)| canary_core::error::chain(e);
    let mut out: Vec<Arc<dyn canary_core::Notifier>> = Vec::new();
    if let Some(hook) = config::slack_webhook(file) {
        out.push(Arc::new(SlackNotifier::new(hook).map_err(|e| chain(&e))?));
    }
    if let Some(file) = file {
        out.extend(file.notifiers()?);
    }
    Ok(out)
}

/// The matchers that select a deployed baseline's series: the configured
/// `prometheus.baseline_matchers`, or else helm's `baseline_values` (the example chart turns
/// `track: baseline` into the pods' label of that name). Without either, the baseline could
/// not be told from production: an error.
pub(crate) fn deployed_baseline_matchers(
    prometheus: &PrometheusConfig,
    helm: &HelmConfig,
) -> Result<std::collections::BTreeMap<String, String>, String> {
    if !prometheus.baseline_matchers.is_empty() {
        return Ok(prometheus.baseline_matchers.clone());
    }
    if helm.baseline_values.is_empty() {
        return Err("validator.baseline is deployed, but neither prometheus.baseline_matchers nor helm.baseline_values says how to tell its pods from production's".into());
    }
    Ok(helm.baseline_values.clone())
}

/// The file's Prometheus settings (or the defaults) with the URL the flags give.
pub(crate) fn prometheus_config(
    file: Option<&config::CanaryConfig>,
    url: Option<&str>,
) -> PrometheusConfig {
    let mut p = file.map(|f| f.prometheus.clone()).unwrap_or_default();
    if let Some(url) = url {
        p.url = url.to_owned();
    }
    p
}

/// As [`prometheus_config`], for commands that must be told where Prometheus is (the URL or a
/// config file): the deploy script's default URL would be a guess.
pub(crate) fn required_prometheus(
    file: Option<&config::CanaryConfig>,
    url: Option<&str>,
) -> Result<PrometheusConfig, String> {
    if url.is_none() && file.is_none() {
        return Err("--prometheus-url (or PROMETHEUS_URL, or a --config file) is required".into());
    }
    Ok(prometheus_config(file, url))
}
