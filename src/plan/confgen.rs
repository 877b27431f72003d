//! The image conf (`conf.json`) the stream step reads, generated the way
//! nixpkgs' `conf` derivation does with shell and jq: helper paths
//! excluded, layers split by the chosen strategy, times normalised.

pub mod date;

use crate::plan::graph::{Graph, GraphError, RawNode};
use crate::plan::layer_spec::LayerSpec;
use crate::plan::layering::{self, auto_layer, classic, pipeline};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    #[error(
        "usedLayers {used} layers to store 'fromImage' and 'extraCommands', but only maxLayers={max} were allowed. \
         At least 1 layer is required to store contents."
    )]
    NotEnoughLayers { used: i64, max: i64 },
    #[error("base json {file}: {what}")]
    BaseJson { file: String, what: String },
    #[error(transparent)]
    BaseImage(#[from] crate::image::base::BaseImageError),
    #[error("invalid --{option}")]
    Date { option: &'static str, source: date::DateError },
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Pipeline(#[from] pipeline::PipelineError),
    #[error("{explicit} explicit layers leave no layer for the rest of the closure within maxLayers={max}")]
    TooManyExplicit { explicit: usize, max: i64 },
}

#[derive(Debug, Clone)]
pub enum Layering {
    /// Seed era: popularity contest, then the jq split.
    Popularity,
    /// nixpkgs ≥ 25.11 default: auto-layer.py.
    Auto,
    /// `layeringPipeline`: maxLayers and fromImage do not count.
    Pipeline(Vec<pipeline::Step>),
}

#[derive(Debug, Clone)]
pub struct ConfOptions {
    pub store_dir: String,
    pub from_image: Option<PathBuf>,
    pub customisation_layer: String,
    pub repo_tag: String,
    pub created: String,
    pub mtime: String,
    pub uid: u32,
    pub gid: u32,
    pub uname: String,
    pub gname: String,
    pub layering: Layering,
    pub max_layers: i64,
    pub exclude: Vec<String>,
    /// Explicit layers (`buildLayer`), flattened: they come first, and the
    /// rest of the closure is layered without their paths.
    pub explicit: Vec<LayerSpec>,
    /// Print layering diagnostics to stderr, as the reference's `DEBUG=1`.
    pub debug: bool,
}

/// Layers left for store paths once the base image and the customisation
/// layer are counted, with the conf derivation's check.
pub fn available_layers(opts: &ConfOptions) -> Result<i64, ConfError> {
    let mut used = 1;
    if let Some(image) = &opts.from_image {
        used += crate::image::base::manifest_layer_count(image)? as i64;
    }
    if used >= opts.max_layers {
        return Err(ConfError::NotEnoughLayers { used, max: opts.max_layers });
    }
    Ok(opts.max_layers - used)
}

/// The `store_layers` value for a graph given as raw nodes: the explicit
/// layers, then the rest of the closure as the layering strategy splits it.
pub fn store_layers(raw: &[RawNode], graph_file: &str, opts: &ConfOptions) -> Result<Vec<Vec<String>>, ConfError> {
    let mut exclude: HashSet<String> = opts.exclude.iter().cloned().collect();
    exclude.extend(opts.explicit.iter().flat_map(|l| l.paths.iter().cloned()));
    let mut layers: Vec<Vec<String>> = opts.explicit.iter().map(|l| l.paths.clone()).collect();
    let available = || -> Result<i64, ConfError> {
        let left = available_layers(opts)? - opts.explicit.len() as i64;
        if left < 1 {
            return Err(ConfError::TooManyExplicit { explicit: opts.explicit.len(), max: opts.max_layers });
        }
        Ok(left)
    };
    layers.extend(match &opts.layering {
        Layering::Popularity => {
            let available = available()?;
            let graph = Graph::build(raw, graph_file)?;
            let paths: Vec<String> = layering::popularity_paths(&graph).into_iter().filter(|p| !exclude.contains(p)).collect();
            classic::classic_split(&paths, available as usize)
        }
        Layering::Auto => {
            let available = available()?;
            let graph = Graph::build(raw, graph_file)?;
            auto_layer::auto_layer(&graph, &exclude, available, opts.debug)
        }
        Layering::Pipeline(steps) => pipeline::run_pipeline(raw, &exclude, steps, graph_file)?,
    });
    Ok(layers)
}

/// `store_layer_digests` for the explicit layers whose tars were made
/// with this image's owners, time and `perms` (a layer made with others
/// would come out with other bytes here); `None` when no digest is known
/// at all. `perms` is the conf's (see [`conf_value`]).
pub fn explicit_digests(opts: &ConfOptions, n_layers: usize, perms: Option<&Value>) -> Result<Option<Value>, ConfError> {
    let mtime = date::normalize(&opts.mtime).map_err(|source| ConfError::Date { option: "mtime", source })?;
    let ours = crate::plan::layer_spec::Stamp { uid: opts.uid, gid: opts.gid, uname: opts.uname.clone(), gname: opts.gname.clone(), mtime };
    let rules = perms.and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    let known: Vec<Value> = opts
        .explicit
        .iter()
        .map(|l| match &l.digest {
            Some(d) if l.stamp == ours && rules_on(rules, &l.paths, &opts.store_dir) == l.perms.iter().collect::<Vec<_>>() => d.to_json(),
            _ => Value::Null,
        })
        .collect();
    if known.iter().all(Value::is_null) {
        return Ok(None);
    }
    let mut all = known;
    all.resize(n_layers, Value::Null);
    Ok(Some(Value::Array(all)))
}

/// The rules, in order, whose `path` is one of `paths`: all that can
/// change those paths' headers (a rule applies only under its path, and
/// store paths do not nest).
fn rules_on<'a>(rules: &'a [Value], paths: &[String], store_dir: &str) -> Vec<&'a Value> {
    let norm = |p: &str| crate::conf::store_path(std::path::Path::new(""), store_dir, p, PathBuf::new()).ok().map(|s| s.member_name);
    let mine: HashSet<Vec<u8>> = paths.iter().filter_map(|p| norm(p)).collect();
    rules.iter().filter(|r| r.get("path").and_then(Value::as_str).and_then(norm).is_some_and(|m| mine.contains(&m))).collect()
}

/// The conf object: the base json's keys, then the keys jq adds.
pub fn conf_value(base: &Value, base_file: &str, store_layers: Vec<Vec<String>>, opts: &ConfOptions) -> Result<Value, ConfError> {
    let mut conf: Map<String, Value> = match base {
        Value::Object(m) => m.clone(),
        _ => {
            return Err(ConfError::BaseJson { file: base_file.to_string(), what: "not a JSON object".into() });
        }
    };
    let created = date::normalize(&opts.created).map_err(|source| ConfError::Date { option: "created", source })?;
    let mtime = date::normalize(&opts.mtime).map_err(|source| ConfError::Date { option: "mtime", source })?;
    let layers = store_layers.into_iter().map(|l| Value::Array(l.into_iter().map(Value::String).collect())).collect();
    let from_image = opts.from_image.as_ref().map_or(Value::Null, |p| Value::String(p.display().to_string()));
    // jq's `--arg` makes uid and gid strings; the stream script int()s them.
    let added = [
        ("store_dir", Value::String(opts.store_dir.clone())),
        ("from_image", from_image),
        ("store_layers", Value::Array(layers)),
        ("customisation_layer", Value::String(opts.customisation_layer.clone())),
        ("repo_tag", Value::String(opts.repo_tag.clone())),
        ("created", Value::String(created)),
        ("mtime", Value::String(mtime)),
        ("uid", Value::String(opts.uid.to_string())),
        ("gid", Value::String(opts.gid.to_string())),
        ("uname", Value::String(opts.uname.clone())),
        ("gname", Value::String(opts.gname.clone())),
    ];
    for (k, v) in added {
        conf.insert(k.to_string(), v);
    }
    // The rules explicit layers were made with come first, so that the
    // image's own (later) win where both set a field, as within one list.
    let from_layers: Vec<Value> = opts.explicit.iter().flat_map(|l| l.perms.iter().cloned()).collect();
    if !from_layers.is_empty() {
        let own = match conf.get("perms") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(rules)) => rules.clone(),
            Some(_) => return Err(ConfError::BaseJson { file: base_file.to_string(), what: "key \"perms\" must be a list".into() }),
        };
        conf.insert("perms".into(), Value::Array(from_layers.into_iter().chain(own).collect()));
    }
    Ok(Value::Object(conf))
}

/// jq's default pretty output: 2-space indent, UTF-8 kept, newline at end.
pub fn render_jq(value: &Value) -> String {
    let mut out = String::new();
    write_jq(value, 0, &mut out);
    out.push('\n');
    out
}

fn write_jq(value: &Value, depth: usize, out: &mut String) {
    let pad = |d: usize, out: &mut String| out.extend(std::iter::repeat_n("  ", d));
    match value {
        Value::Array(items) if !items.is_empty() => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                pad(depth + 1, out);
                write_jq(item, depth + 1, out);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            pad(depth, out);
            out.push(']');
        }
        Value::Object(map) if !map.is_empty() => {
            out.push_str("{\n");
            for (i, (k, v)) in map.iter().enumerate() {
                pad(depth + 1, out);
                write_jq_string(k, out);
                out.push_str(": ");
                write_jq(v, depth + 1, out);
                out.push_str(if i + 1 < map.len() { ",\n" } else { "\n" });
            }
            pad(depth, out);
            out.push('}');
        }
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
        Value::String(s) => write_jq_string(s, out),
        other => out.push_str(&other.to_string()),
    }
}

fn write_jq_string(s: &str, out: &mut String) {
    crate::pyjson::write_escaped(out, s, |c| c >= ' ' && c != '\u{7f}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_rules_on_a_layer_are_those_on_its_paths_in_order() {
        let rules = [
            json!({"path": "/nix/store/aaa-lib", "mode": "0700"}),
            json!({"path": "/nix/store/bbb-app", "mode": "0755"}),
            json!({"path": "/nix//store/aaa-lib/", "regex": "x$", "uid": 5}),
            json!({"path": "/nix/store/aaa-libx"}),
        ];
        let paths = ["/nix/store/aaa-lib".to_string()];
        assert_eq!(rules_on(&rules, &paths, "/nix/store"), vec![&rules[0], &rules[2]]);
        assert!(rules_on(&rules, &["/nix/store/ccc".into()], "/nix/store").is_empty());
    }
}
