//! `canary serve`: the judge over HTTP.

use std::sync::Arc;

use canary_core::ValidatorConfig;
use canary_prometheus::PrometheusSource;

use crate::signals::cancelled_or_hangup;
use crate::wiring::{judge_factory, required_prometheus};
use crate::{config, ServeArgs};

/// `canary serve`: the judge over HTTP until SIGTERM, SIGHUP or Ctrl-C.
pub(crate) fn run(args: ServeArgs) -> Result<i32, String> {
    let file = args.config.as_deref().map(config::load).transpose()?;
    let prometheus = required_prometheus(file.as_ref(), args.prometheus_url.as_deref())?;
    let mut settings = file.as_ref().map(|f| f.serve.clone()).unwrap_or_default();
    if let Some(listen) = args.listen {
        settings.listen = listen;
    }
    if let Some(token) = std::env::var("CANARY_AUTH_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
    {
        settings.auth_token = Some(canary_core::Secret::new(token));
    }
    if let Some(f) = &file {
        settings.default_window = f.validator.analysis_window;
    }
    let judge = args
        .judge
        .or(file.as_ref().map(|f| f.judge()))
        .unwrap_or_default();
    let policy = config::policy(file.as_ref())?;
    let validator = file
        .as_ref()
        .map_or_else(ValidatorConfig::default, |f| f.validator.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        let source =
            Arc::new(PrometheusSource::new(prometheus).map_err(|e| canary_core::error::chain(&e))?);
        let judging = canary_serve::Judging {
            source,
            policy,
            judge: judge_factory(judge, file.as_ref()),
            judge_step: validator.judge_step,
            max_duration: validator.max_duration,
        };
        let server = canary_serve::serve(settings, judging).await?;
        let which = Arc::new(std::sync::Mutex::new(None));
        // SIGHUP (a closed terminal, a supervisor's reload) drains like SIGTERM: no request in
        // flight is dropped.
        server.run(cancelled_or_hangup(which)).await
    })?;
    Ok(0)
}
