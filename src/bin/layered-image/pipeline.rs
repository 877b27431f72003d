use anyhow::Context;
use layered_image::input::{JSON_LIMIT, SMALL_JSON_LIMIT, read_limited};
use layered_image::plan::graph::raw_nodes_from_value;
use layered_image::plan::layering::pipeline::{parse_pipeline, run_pipeline};
use layered_image::pyjson;
use serde_json::Value;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `pipeline FILE`
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  echo '{\"graph\": [...], \"pipeline\": [[\"popularity_contest\"], [\"limit_layers\", 2]]}' > in.json\n  layered-image pipeline in.json   # the layers, as flatten_references_graph prints them"
)]
pub struct Args {
    /// JSON object with `graph`, `pipeline` (a list, or the path of a JSON
    /// file holding one) and optional `exclude_paths`.
    pub file: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let name = args.file.display().to_string();
    let text = read_limited(&args.file, JSON_LIMIT).with_context(|| format!("cannot read {name}"))?;
    let data: Value = serde_json::from_slice(&text).with_context(|| format!("{name}: invalid JSON"))?;
    let graph = data.get("graph").with_context(|| format!("{name}: key \"graph\" not found"))?;
    let raw = raw_nodes_from_value(graph, None, &name)?;
    let pipeline = match data.get("pipeline").with_context(|| format!("{name}: key \"pipeline\" not found"))? {
        Value::String(file) => {
            // Relative to the JSON that names it, as conf paths are.
            let path = args.file.parent().unwrap_or(Path::new("")).join(file);
            let text = read_limited(&path, SMALL_JSON_LIMIT).with_context(|| format!("cannot read pipeline file {}", path.display()))?;
            serde_json::from_slice(&text).with_context(|| format!("{}: invalid JSON", path.display()))?
        }
        other => other.clone(),
    };
    let steps = parse_pipeline(&pipeline)?;
    let exclude: HashSet<String> = match data.get("exclude_paths") {
        None | Some(Value::Null) => HashSet::new(),
        Some(Value::Array(xs)) => xs
            .iter()
            .map(|x| x.as_str().map(str::to_string).with_context(|| format!("{name}: exclude_paths: not a string: {x}")))
            .collect::<anyhow::Result<_>>()?,
        Some(_) => anyhow::bail!("{name}: exclude_paths is not a list"),
    };
    let layers = run_pipeline(&raw, &exclude, &steps, &name)?;
    let value = Value::Array(layers.into_iter().map(|l| Value::Array(l.into_iter().map(Value::String).collect())).collect());
    let style = pyjson::Style { sort_keys: true, ..pyjson::Style::indent(2) };
    let mut out = pyjson::dumps(&value, style);
    out.push('\n');
    std::io::stdout().lock().write_all(out.as_bytes()).context("writing to stdout")?;
    Ok(())
}
