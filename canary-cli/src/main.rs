//! The `canary` binary: see the library's documentation for the subcommands and exit codes.

fn main() {
    std::process::exit(canary_cli::run(std::env::args_os()));
}
