//! `canary run`: the guide's whole flow (deploy, warm up, judge, promote or roll back, notify,
//! report), per region.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use canary_core::{BaselineArm, CanaryValidator, Region, ScaledClock, ValidationRequest};
use canary_helm::{HelmConfig, HelmDeployer};
use canary_prometheus::{PrometheusConfig, PrometheusSource};

use crate::exit::run_code;
use crate::output::{colour, html, print, run_table};
use crate::signals::cancelled;
use crate::wiring::{deployed_baseline_matchers, judge_factory, notifiers, prometheus_config};
use crate::{config, progress, BaselineChoice, Output, RunArgs};

/// Runs the flow `args` asks for, showing progress on `display`.
pub(crate) fn run(args: RunArgs, display: Option<Arc<progress::Display>>) -> Result<i32, String> {
    let file = args.config.as_deref().map(config::load).transpose()?;
    let mut validator_config = file
        .as_ref()
        .map(|f| f.validator.clone())
        .unwrap_or_default();
    validator_config.warmup = match (args.wait_minutes, &file) {
        (Some(d), _) => d,
        (None, Some(f)) => f.validator.warmup,
        (None, None) => Duration::from_secs(15 * 60),
    };
    if args.progressive {
        validator_config.progressive_weights = canary_core::DEFAULT_PROGRESSIVE_WEIGHTS.to_vec();
    }
    match args.baseline {
        Some(BaselineChoice::Production) => validator_config.baseline = BaselineArm::Production,
        Some(BaselineChoice::Deployed) => validator_config.baseline = BaselineArm::Deployed,
        None => {}
    }
    let policy = config::policy(file.as_ref())?;
    let judge = args
        .judge
        .or(file.as_ref().map(|f| f.judge()))
        .unwrap_or_default();
    let prometheus = prometheus_config(file.as_ref(), args.prometheus_url.as_deref());
    let production = args.production_version.clone().and_then(|p| p.0);
    if args.dry_run && production.is_none() {
        return Err(
            "--dry-run needs --production-version: production cannot be asked without running helm"
                .into(),
        );
    }
    let mut helm_config = file.as_ref().map(|f| f.helm.clone()).unwrap_or_default();
    if file.is_none() {
        // The deploy script's defaults.
        helm_config.release = "apex-inference".into();
        helm_config.chart = "examples/chart".into();
    }
    if let Some(r) = &args.release {
        helm_config.release.clone_from(r);
    }
    if let Some(c) = &args.chart {
        helm_config.chart.clone_from(c);
    }
    if args.namespace.is_some() {
        helm_config.namespace.clone_from(&args.namespace);
    }
    helm_config.dry_run = args.dry_run;
    let mut prometheus = prometheus;
    if validator_config.baseline == BaselineArm::Deployed {
        prometheus.baseline_matchers = deployed_baseline_matchers(&prometheus, &helm_config)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let which = Arc::new(std::sync::Mutex::new(None));
    let (report, helms) = runtime.block_on(async {
        let chain = |e: &(dyn std::error::Error + 'static)| canary_core::error::chain(e);
        // A dry run never waits: there is nothing deployed to watch.
        let clock = if args.dry_run {
            ScaledClock::new(0.0)
        } else {
            ScaledClock::from_env()
        }
        .map_err(|e| chain(&e))?;
        let region = |name: Option<String>, prometheus: PrometheusConfig, helm: HelmConfig| {
            let source = Arc::new(PrometheusSource::new(prometheus).map_err(|e| chain(&e))?);
            let helm = Arc::new(HelmDeployer::new(helm).map_err(|e| chain(&e))?);
            Ok::<_, String>((
                Region {
                    name,
                    source: source.clone(),
                    deployer: helm.clone(),
                    observations: Some(source),
                },
                helm,
            ))
        };
        let regions = file.as_ref().map_or(&[][..], |f| &f.regions[..]);
        let (mut validator, helms) = if regions.is_empty() {
            let (r, helm) = region(None, prometheus, helm_config)?;
            (CanaryValidator::for_region(r), vec![helm])
        } else {
            let mut built = Vec::new();
            let mut helms = Vec::new();
            for r in regions {
                let mut p = prometheus.clone();
                if let (Some(url), None) = (&r.prometheus_url, &args.prometheus_url) {
                    p.url.clone_from(url);
                }
                let mut h = helm_config.clone();
                if r.kube_context.is_some() {
                    h.kube_context.clone_from(&r.kube_context);
                }
                if r.kubeconfig.is_some() {
                    h.kubeconfig.clone_from(&r.kubeconfig);
                }
                if r.namespace.is_some() && args.namespace.is_none() {
                    h.namespace.clone_from(&r.namespace);
                }
                let (region, helm) = region(Some(r.name.clone()), p, h)?;
                built.push(region);
                helms.push(helm);
            }
            (
                CanaryValidator::multi_region(built).map_err(|e| chain(&e))?,
                helms,
            )
        };
        validator = validator
            .with_config(validator_config)
            .map_err(|e| chain(&e))?
            .with_policy(policy)
            .map_err(|e| chain(&e))?
            .with_clock(Arc::new(clock));
        if let Some(factory) = judge_factory(judge, file.as_ref()) {
            validator = validator.with_judge(factory);
        }
        for notifier in notifiers(file.as_ref())? {
            validator = validator.with_notifier(notifier);
        }
        if let Some(d) = display {
            validator = validator.with_progress(d);
        }
        let mut request = ValidationRequest::new(args.version.clone());
        if let Some(p) = production {
            request = request.with_baseline(p);
        }
        if let Some(f) = &args.values_file {
            request = request.with_values_file(f);
        }
        let report = validator
            .validate_until(request, cancelled(which.clone()))
            .await;
        Ok::<_, String>((report, helms))
    })?;
    let mut report = report;
    report.dry_run = args.dry_run;
    let mut text = match args.output {
        Output::Json => report.to_json(),
        Output::Markdown => report.to_markdown(),
        Output::Table => run_table(&report, colour()),
        Output::Html => html::report(&report),
    };
    if args.dry_run && matches!(args.output, Output::Markdown | Output::Table) {
        text.push_str(if args.output == Output::Markdown {
            "\n### helm commands (dry run, not run)\n\n"
        } else {
            "\nhelm commands (dry run, not run):\n"
        });
        for c in helms.iter().flat_map(|h| h.commands()) {
            text.push_str(&format!("helm {}\n", c.join(" ")));
        }
    }
    print(&text)?;
    if let Some(path) = &args.report_file {
        std::fs::write(path, report.to_json())
            .map_err(|e| format!("cannot write the report to {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.summary_file {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        writeln!(f, "{}", report.to_markdown())
            .map_err(|e| format!("cannot write to {}: {e}", path.display()))?;
    }
    let signal = which.lock().ok().and_then(|w| *w);
    Ok(run_code(report.outcome, signal))
}
