//! The `layered-image` command: a thin shell over the library.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod args;
mod auto_layer;
mod conf;
mod copy;
mod customisation_layer;
mod diff;
mod digests;
mod explain;
mod layer;
mod pipeline;
mod popularity;
mod progress;
mod sbom;
mod stream;
mod verify;

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
    /// Print a closure's store paths most popular first (closure-graph.py).
    Popularity(popularity::Args),
    /// Split a closure into layers like nixpkgs' auto-layer.py.
    AutoLayer(auto_layer::Args),
    /// Run a layeringPipeline (flatten_references_graph).
    Pipeline(pipeline::Args),
    /// Generate the image conf.json (replaces nixpkgs' conf derivation).
    Conf(Box<conf::Args>),
    /// Build the customisation layer's layer.tar and checksum like GNU tar.
    CustomisationLayer(customisation_layer::Args),
    /// Add each store layer's digest to a conf, so `stream` reads layers once.
    Digests(digests::Args),
    /// Write the image of a conf to a destination: docker-archive:, oci:, oci-archive:.
    Copy(copy::Args),
    /// Make an explicit layer file (Nix: buildLayer) for `conf --layer`.
    Layer(layer::Args),
    /// Check an image as `docker load` or skopeo reads it: every digest.
    Verify(verify::Args),
    /// Write an SBOM (SPDX 2.3 or CycloneDX 1.6 JSON) of a conf's image from its closure graph.
    Sbom(Box<sbom::Args>),
    /// Write an in-toto statement with SLSA provenance v1 for a conf's image.
    Provenance(Box<sbom::ProvenanceArgs>),
    /// Show what each layer of an image holds and why, as text, JSON or an HTML treemap.
    Explain(Box<explain::Args>),
    /// Compare two images' layers and count what a push of the second uploads.
    Diff(Box<diff::Args>),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let result = match cli.command {
        Command::Stream(args) => stream::run(args),
        Command::Popularity(args) => popularity::run(args),
        Command::AutoLayer(args) => auto_layer::run(args),
        Command::Pipeline(args) => pipeline::run(args),
        Command::Conf(args) => conf::run(*args),
        Command::CustomisationLayer(args) => customisation_layer::run(args),
        Command::Digests(args) => digests::run(args),
        Command::Copy(args) => copy::run(args),
        Command::Layer(args) => layer::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Sbom(args) => sbom::run(*args),
        Command::Provenance(args) => sbom::run_provenance(*args),
        Command::Explain(args) => explain::run(*args),
        Command::Diff(args) => diff::run(*args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            layered_image::diag::line(&format!("layered-image: error: {}", chain_text(&err)));
            ExitCode::FAILURE
        }
    }
}

/// Help and version go out as clap prints them; a usage error becomes one
/// `layered-image: error:` line like every other error (exit 2, as with
/// argparse in nixpkgs' scripts), its detail lines joined.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) {
        e.exit();
    }
    let text = e.render().to_string();
    let detail: Vec<&str> = text
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let msg = detail.join(" ");
    let msg = msg.strip_prefix("error: ").unwrap_or(&msg);
    layered_image::diag::line(&format!("layered-image: error: {msg} (see layered-image --help)"));
    ExitCode::from(2)
}

/// `{err:#}` without repeats: many library errors show their source in
/// their own message and also expose it as `source()`, which would print
/// "No such file or directory" twice.
fn chain_text(err: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if msg.is_empty() {
            msg = text;
        } else if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every subcommand says what it does, shows an example, and explains
    /// each of its arguments in `--help`.
    #[test]
    fn help_for_every_flag_and_an_example_per_subcommand() {
        let cli = Cli::command();
        let mut missing = Vec::new();
        for sub in cli.get_subcommands() {
            let name = sub.get_name();
            if sub.get_about().is_none() {
                missing.push(format!("{name}: no about"));
            }
            if !sub.get_after_help().is_some_and(|h| h.to_string().contains("layered-image ")) {
                missing.push(format!("{name}: no example (after_help)"));
            }
            for arg in sub.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{name} {id}: no help text"));
                }
            }
        }
        assert!(missing.is_empty(), "{}", missing.join("\n"));
        cli.debug_assert();
    }
}
