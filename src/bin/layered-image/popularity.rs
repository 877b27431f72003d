use anyhow::Context;
use layered_image::plan::graph::{Graph, read_raw};
use std::io::Write;
use std::path::PathBuf;

/// `popularity FILE [KEY]`
#[derive(clap::Args)]
#[command(after_help = "Example:\n  layered-image popularity .attrs.json graph   # one store path per line, most popular first")]
pub struct Args {
    /// Closure graph: a list of {path, references}, or an object holding one.
    pub file: PathBuf,
    /// Key of the list inside FILE (default: `graph`, or its only list).
    pub key: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let raw = read_raw(&args.file, args.key.as_deref())?;
    let graph = Graph::build(&raw, &args.file.display().to_string())?;
    let paths = layered_image::plan::layering::popularity_paths(&graph);
    let mut text = paths.join("\n");
    text.push('\n');
    std::io::stdout().lock().write_all(text.as_bytes()).context("writing to stdout")?;
    Ok(())
}
