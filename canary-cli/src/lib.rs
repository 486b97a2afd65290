//! The `canary` command: decide from the terminal or a CI job whether a canary may be promoted.
//!
//! The binary is a thin `main` over [`run`], so the same code serves `cargo install
//! canary-cli`, the workspace's examples and tests.
//!
//! ```no_run
//! // What `canary analyze --prometheus-url http://prometheus:9090 --baseline v1 --canary v2` does:
//! let code = canary_cli::run(["canary", "analyze", "--prometheus-url", "http://prometheus:9090",
//!     "--baseline", "v1", "--canary", "v2"]);
//! std::process::exit(code);
//! ```
//!
//! | exit code | `analyze` | `run` |
//! |---|---|---|
//! | 0 | proceed | promoted |
//! | 1 | rollback_auto | rolled back |
//! | 2 | rollback_manual (a person decides) | held for manual review |
//! | 3 | error: bad invocation, unreachable Prometheus, invalid data | failed (the canary rolled back where it had been deployed) |
//! | 130 / 143 | | cancelled by Ctrl-C / SIGTERM (the canary rolled back) |

use std::ffi::OsString;

pub mod args;
pub mod commands;
pub mod config;
pub mod exit;
mod logging;
pub mod output;
pub mod progress;
pub mod reference;
mod signals;
mod wiring;

pub use args::{
    AnalyzeArgs, BacktestArgs, BaselineChoice, Cli, Command, ConfigAction, Injections, JudgeName,
    OptionalVersion, Output, ReportArgs, ReportFormat, RunArgs, ServeArgs,
};
pub use canary_core::duration;
pub use commands::{backtest, retrospective};
pub use exit::{exit_code, EXIT_ERROR, EXIT_MANUAL, EXIT_PROCEED, EXIT_ROLLBACK};
pub use output::{html, run_table, table};

/// Runs the command line `args` (the first is the program's name) and returns the exit code.
/// Data goes to stdout, errors to stderr as one line.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    // Help keeps its own line breaks when it is not read on a terminal (piped, in CI logs),
    // so that an example is never cut in the middle of a command.
    let mut command = <Cli as clap::CommandFactory>::command();
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        command = command.term_width(0);
    }
    let parsed = command
        .try_get_matches_from(args)
        .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version are answers, not errors; any other parse failure is exit 3,
            // never clap's 2 (which means manual review here).
            if !e.use_stderr() {
                let _ = e.print();
                return 0;
            }
            // One line naming what is wrong, and where to look.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("error: invalid arguments");
            let detail: Vec<&str> = text
                .lines()
                .skip(1)
                .map(str::trim)
                .take_while(|l| !l.is_empty())
                .collect();
            if detail.is_empty() {
                eprintln!("{first} (try --help)");
            } else {
                eprintln!("{first} {} (try --help)", detail.join(", "));
            }
            return EXIT_ERROR;
        }
    };
    match commands::execute(cli) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            EXIT_ERROR
        }
    }
}
