//! `canary report`: a saved report rendered again.

use canary_core::ValidationReport;

use crate::output::{html, print};
use crate::{config, ReportArgs, ReportFormat};

/// Renders the saved report `args.report`.
pub(crate) fn run(args: ReportArgs) -> Result<i32, String> {
    let text = config::read_limited(&args.report, config::MAX_REPORT_BYTES, "the report")?;
    let report: ValidationReport = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{} is not a canary report: {e} (line {}, column {})",
            args.report.display(),
            e.line(),
            e.column()
        )
    })?;
    let rendered = match args.format {
        ReportFormat::Markdown => report.to_markdown(),
        ReportFormat::Json => report.to_json(),
        ReportFormat::Html => html::report(&report),
    };
    match args.out {
        Some(path) => std::fs::write(&path, rendered)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        None => print(&rendered)?,
    }
    Ok(0)
}
