use anyhow::Context;
use layered_image::plan::graph::{Graph, read_raw};
use layered_image::plan::layering::auto_layer::auto_layer;
use layered_image::pyjson;
use serde_json::Value;
use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;

/// `auto-layer GRAPH [IGNORE_FILE] [LIMIT]`
#[derive(clap::Args)]
#[command(after_help = "Example:\n  layered-image auto-layer graph.json ignore.txt 99 > layers.json   # a JSON list of layers")]
pub struct Args {
    /// Closure graph (exportReferencesGraph JSON).
    pub graph: PathBuf,
    /// Store paths to leave out of the output, one per line.
    pub ignore_file: Option<PathBuf>,
    /// Maximum number of layers.
    #[arg(default_value_t = 100, allow_negative_numbers = true)]
    pub limit: i64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let raw = read_raw(&args.graph, None)?;
    let graph = Graph::build(&raw, &args.graph.display().to_string())?;
    let ignore: HashSet<String> = match &args.ignore_file {
        Some(file) => layered_image::input::read_limited_string(file, layered_image::input::JSON_LIMIT)
            .with_context(|| format!("cannot read ignore file {}", file.display()))?
            .lines()
            .map(|l| l.trim().to_string())
            .collect(),
        None => HashSet::new(),
    };
    // The reference script's switch, read here at the edge.
    let debug = std::env::var_os("DEBUG").is_some_and(|v| !v.is_empty());
    let layers = auto_layer(&graph, &ignore, args.limit, debug);
    let value = Value::Array(layers.into_iter().map(|l| Value::Array(l.into_iter().map(Value::String).collect())).collect());
    let mut text = pyjson::dumps(&value, pyjson::Style::DEFAULT);
    text.push('\n');
    std::io::stdout().lock().write_all(text.as_bytes()).context("writing to stdout")?;
    Ok(())
}
