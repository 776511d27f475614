//! The `stathook` binary: parse arguments, run the command, map errors to exit codes
//! (0 ok, 1 failure, 2 usage — clap's). The commands live in `stathook::command`.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = stathook::cli::Cli::parse();
    match stathook::command::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stathook: {e}");
            ExitCode::FAILURE
        }
    }
}
