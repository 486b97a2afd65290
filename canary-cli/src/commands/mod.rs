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
                print(&format!("{}: ok", file.display()))?;
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
            // Into memory first: clap_complete panics on a failed write (a reader that
            // stopped early), and `print` treats that as the reader's choice.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "canary", &mut script);
            print(&String::from_utf8_lossy(&script))?;
            Ok(0)
        }
        Command::Man { out } => {
            let written = man_pages(&out)?;
            print(&format!("{written} man pages in {}", out.display()))?;
            Ok(0)
        }
    }
}

/// Writes `canary.1` and one page per subcommand (`canary-config-check.1`) into `dir`; returns
/// how many.
fn man_pages(dir: &std::path::Path) -> Result<usize, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let pages = crate::reference::commands(Cli::command());
    for (path, command) in &pages {
        let name = path.join("-");
        let mut text = Vec::new();
        clap_mangen::Man::new(command.clone().name(name.clone()))
            .title(name.to_uppercase())
            .render(&mut text)
            .map_err(|e| format!("cannot render {name}(1): {e}"))?;
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(pages.len())
}
