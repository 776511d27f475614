//! The `stathook` binary: parse arguments, run the command, map errors to exit codes
//! (0 ok, 1 failure, 2 usage — clap's). The commands live in `stathook::command`.

use std::process::ExitCode;

fn main() -> ExitCode {
    // The command line, with `serve`'s config file filled in (docs in config_file.rs).
    let (cli, shown) = match stathook::command::config_file::parse(std::env::args_os().collect()) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("stathook: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(text) = shown {
        print!("{text}");
        return ExitCode::SUCCESS;
    }
    match stathook::command::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stathook: {e}");
            ExitCode::FAILURE
        }
    }
}
