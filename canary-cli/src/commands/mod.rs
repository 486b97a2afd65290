//! One module per subcommand; `execute` dispatches the parsed command line to them.

use canary_core::ScaledClock;
use clap::CommandFactory;

use crate::logging::logging;
use crate::output::print;
use crate::{config, progress, Cli, Command, ConfigAction};

mod analyze;
pub mod backtest;
mod report;
pub mod retrospective;
mod run;
mod serve;

/// Runs the parsed command line; `Err` is the one-line message of a failure before a
/// decision.
pub(crate) fn execute(cli: Cli) -> Result<i32, String> {
    match cli.command {
        Command::Analyze(args) => analyze::run(args),
        Command::Run(args) => {
            // A dry run never waits; otherwise waits last CANARY_TIME_SCALE times as long.
            let factor = if args.dry_run {
                0.0
            } else {
                ScaledClock::from_env().map_or(1.0, |c| c.factor())
            };
            let display = (!cli.quiet).then(|| progress::Display::new(factor));
            logging(
                cli.verbose,
                cli.quiet,
                display.as_ref().map(|d| d.log_writer()),
            );
            run::run(args, display)
        }
        Command::Report(args) => report::run(args),
        Command::Backtest(args) => {
            logging(cli.verbose, cli.quiet, None);
            backtest::run(args)
        }
        Command::Serve(args) => {
            logging(cli.verbose, cli.quiet, None);
            serve::run(args)
        }
        Command::Config { action } => match action {
            ConfigAction::Check { file } => {
                config::load(&file)?;
                println!("{}: ok", file.display());
                Ok(0)
            }
            ConfigAction::Example => {
                print(config::EXAMPLE)?;
                Ok(0)
            }
            ConfigAction::Schema => {
                let text = serde_json::to_string_pretty(&config::schema())
                    .map_err(|e| format!("cannot write the schema: {e}"))?;
                print(&format!("{text}\n"))?;
                Ok(0)
            }
        },
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "canary", &mut std::io::stdout());
            Ok(0)
        }
    }
}
