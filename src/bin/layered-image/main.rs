//! The `layered-image` command: a thin shell over the library.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod stream;

#[derive(Parser)]
#[command(name = "layered-image", version, about = "Container images from Nix store closures, byte-compatible with nixpkgs' dockerTools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Stream a docker-archive image described by a conf.json to stdout.
    Stream(stream::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Stream(args) => stream::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("layered-image: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
