//! Why each store path is in its layer: the layering decision recomputed
//! from the closure graph with the options the image was built with
//! (calling the same `plan::layering` functions `conf` calls), checked to
//! give exactly the conf's layers before any reason is reported.

use crate::plan::confgen::{self, ConfOptions, Layering};
use crate::plan::graph::{Graph, RawNode};
use crate::plan::layer_spec::LayerSpec;
use crate::plan::layering::{self, auto_layer, classic, pipeline};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum WhyError {
    #[error(transparent)]
    Conf(#[from] confgen::ConfError),
    #[error(transparent)]
    Graph(#[from] crate::plan::graph::GraphError),
    #[error(transparent)]
    Pipeline(#[from] pipeline::PipelineError),
    #[error(
        "the conf's store layers are not what {tried} makes of {graph}: {detail}; \
         pass the --layering, --max-layers, --pipeline, --exclude and --layer the image was built with"
    )]
    Mismatch { tried: String, graph: String, detail: String },
}

/// What placed a store path in its layer.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// An explicit layer (`buildLayer`), first in the image.
    Explicit { file: PathBuf },
    /// closure-graph.py's popularity order, then the classic split: the
    /// `singles` most popular paths get a layer each, the rest share one.
    Popularity { rank: usize, of: usize, singles: usize, max_layers: i64 },
    /// auto-layer.py: the largest paths become primaries until one more
    /// would exceed the limit; a path goes with the others that the same
    /// primaries claim.
    Auto { primaries: std::sync::Arc<[String]>, is_primary: bool, nar_size: u64, limit: i64, max_layers: i64 },
    /// A `layeringPipeline`: output group `group` of `of`.
    Pipeline { group: usize, of: usize, pipeline: String },
}

impl Reason {
    pub fn text(&self) -> String {
        match self {
            Reason::Explicit { file } => format!("explicit layer (buildLayer) {}", file.display()),
            Reason::Popularity { rank, of, singles, max_layers } if rank <= singles => {
                format!("popularity rank {rank} of {of}: among the {singles} most popular paths, which get a layer each (maxLayers={max_layers})")
            }
            Reason::Popularity { rank, of, singles, max_layers } => format!(
                "popularity rank {rank} of {of}: below the {singles} most popular paths, so in the last layer with the rest (maxLayers={max_layers})"
            ),
            Reason::Auto { is_primary: true, nar_size, limit, max_layers, .. } => format!(
                "auto-layer primary: one of the largest paths ({nar_size} bytes of NAR), given a layer of its own before the {limit}-layer limit was reached (maxLayers={max_layers})"
            ),
            Reason::Auto { primaries, limit, max_layers, .. } if primaries.is_empty() => {
                format!("auto-layer: claimed by no primary, so with the rest once the {limit}-layer limit was reached (maxLayers={max_layers})")
            }
            Reason::Auto { primaries, limit, max_layers, .. } => format!(
                "auto-layer: a dependency of {} (grouped with what the same primaries claim; {limit}-layer limit, maxLayers={max_layers})",
                list(primaries)
            ),
            Reason::Pipeline { group, of, pipeline } => format!("layeringPipeline {pipeline}: output group {group} of {of}"),
        }
    }

    /// The reason as data, for `--json`: `rule` names the strategy.
    pub fn to_json(&self) -> Value {
        match self {
            Reason::Explicit { file } => json!({"rule": "explicit", "layer_file": file.display().to_string()}),
            Reason::Popularity { rank, of, singles, max_layers } => {
                json!({"rule": "popularity", "rank": rank, "of": of, "single_layers": singles, "max_layers": max_layers})
            }
            Reason::Auto { primaries, is_primary, nar_size, limit, max_layers } => json!({
                "rule": "auto-layer", "primary": is_primary, "claimed_by": &**primaries, "nar_size": nar_size,
                "limit": limit, "max_layers": max_layers,
            }),
            Reason::Pipeline { group, of, pipeline } => json!({"rule": "pipeline", "group": group, "of": of, "pipeline": pipeline}),
        }
    }
}

fn list(paths: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut s = paths.iter().take(SHOWN).map(String::as_str).collect::<Vec<_>>().join(", ");
    if paths.len() > SHOWN {
        s.push_str(&format!(" and {} more", paths.len() - SHOWN));
    }
    s
}

/// How the image's layers were decided: the `conf` options that matter.
#[derive(Debug, Clone)]
pub struct Decision {
    pub graph_file: String,
    pub raw: Vec<RawNode>,
    /// `None`: try auto-layer, then popularity.
    pub layering: Option<Layering>,
    /// The pipeline as written, for messages.
    pub pipeline_text: String,
    pub max_layers: i64,
    pub exclude: Vec<String>,
    pub explicit: Vec<LayerSpec>,
    pub from_image: Option<PathBuf>,
}

/// Each store layer's paths with the reason that placed them, in the order
/// the layering produced them.
pub type Placed = Vec<Vec<(String, Reason)>>;

fn strategy_name(l: &Layering, d: &Decision) -> String {
    match l {
        Layering::Auto => format!("--layering auto --max-layers {}", d.max_layers),
        Layering::Popularity => format!("--layering popularity --max-layers {}", d.max_layers),
        Layering::Pipeline(_) => format!("--layering pipeline {}", d.pipeline_text),
    }
}

fn options(d: &Decision, layering: Layering) -> ConfOptions {
    ConfOptions {
        store_dir: String::new(),
        from_image: d.from_image.clone(),
        customisation_layer: String::new(),
        repo_tag: String::new(),
        created: String::new(),
        mtime: String::new(),
        uid: 0,
        gid: 0,
        uname: String::new(),
        gname: String::new(),
        layering,
        max_layers: d.max_layers,
        exclude: d.exclude.clone(),
        explicit: d.explicit.clone(),
        debug: false,
    }
}

/// The reasons for one strategy. The layers themselves come from
/// [`confgen::store_layers`], the very function `conf` runs; the reasons
/// are recomputed beside it and must give the same layers.
pub fn place(d: &Decision, layering: &Layering) -> Result<Placed, WhyError> {
    let opts = options(d, layering.clone());
    let layers = confgen::store_layers(&d.raw, &d.graph_file, &opts)?;
    let mut placed: Placed =
        d.explicit.iter().map(|l| l.paths.iter().map(|p| (p.clone(), Reason::Explicit { file: l.file.clone() })).collect()).collect();
    let mut exclude: HashSet<String> = d.exclude.iter().cloned().collect();
    exclude.extend(d.explicit.iter().flat_map(|l| l.paths.iter().cloned()));
    let available = || confgen::available_layers(&opts).map(|a| a - d.explicit.len() as i64);
    match layering {
        Layering::Popularity => {
            let graph = Graph::build(&d.raw, &d.graph_file)?;
            let paths: Vec<String> = layering::popularity_paths(&graph).into_iter().filter(|p| !exclude.contains(p)).collect();
            let available = available()?.max(1) as usize;
            let singles = available.saturating_sub(1).min(paths.len());
            let ranked: Vec<(String, Reason)> = paths
                .iter()
                .enumerate()
                .map(|(i, p)| (p.clone(), Reason::Popularity { rank: i + 1, of: paths.len(), singles, max_layers: d.max_layers }))
                .collect();
            placed.extend(classic::classic_split(&ranked, available));
        }
        Layering::Auto => {
            let graph = Graph::build(&d.raw, &d.graph_file)?;
            let limit = available()?;
            for layer in auto_layer::layers(&graph, limit) {
                let primaries: std::sync::Arc<[String]> = layer.used_by.iter().map(|&v| graph.paths[v as usize].clone()).collect();
                let group: Vec<(String, Reason)> = layer
                    .paths
                    .iter()
                    .filter(|&&v| !exclude.contains(&graph.paths[v as usize]))
                    .map(|&v| {
                        let path = graph.paths[v as usize].clone();
                        let is_primary = layer.used_by == [v];
                        let reason = Reason::Auto {
                            primaries: primaries.clone(),
                            is_primary,
                            nar_size: graph.nar_size[v as usize],
                            limit,
                            max_layers: d.max_layers,
                        };
                        (path, reason)
                    })
                    .collect();
                if !group.is_empty() {
                    placed.push(group);
                }
            }
        }
        Layering::Pipeline(_) => {
            let n = layers.len() - d.explicit.len();
            for (k, layer) in layers[d.explicit.len()..].iter().enumerate() {
                placed.push(layer.iter().map(|p| (p.clone(), Reason::Pipeline { group: k + 1, of: n, pipeline: d.pipeline_text.clone() })).collect());
            }
        }
    }
    let ours: Vec<Vec<&str>> = placed.iter().map(|l| l.iter().map(|(p, _)| p.as_str()).collect()).collect();
    let theirs: Vec<Vec<&str>> = layers.iter().map(|l| l.iter().map(String::as_str).collect()).collect();
    assert_eq!(ours, theirs, "the reasons must describe the layers confgen makes");
    Ok(placed)
}

/// `/`-rooted, pathlib-normalised: how a conf's path and a graph's path are
/// compared (a conf may spell them relative to itself).
pub fn normal(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    format!("/{}", parts.join("/"))
}

/// The reasons for the conf's store layers (`conf_layers`, member names):
/// the given strategy, or auto-layer then popularity when none is given;
/// an error when none yields exactly the conf's layers.
pub fn explain_layers(d: &Decision, conf_layers: &[Vec<String>]) -> Result<Vec<Vec<Reason>>, WhyError> {
    let candidates = match &d.layering {
        Some(l) => vec![l.clone()],
        None => vec![Layering::Auto, Layering::Popularity],
    };
    let mut details = Vec::new();
    for layering in &candidates {
        let placed = match place(d, layering) {
            Ok(p) => p,
            Err(e) if d.layering.is_none() => {
                details.push(format!("{}: {e}", strategy_name(layering, d)));
                continue;
            }
            Err(e) => return Err(e),
        };
        match compare(&placed, conf_layers) {
            None => {
                let mut by_path: HashMap<String, Reason> = placed.into_iter().flatten().map(|(p, r)| (normal(&p), r)).collect();
                return Ok(conf_layers.iter().map(|l| l.iter().map(|p| by_path.remove(p).expect("compared equal")).collect()).collect());
            }
            Some(detail) if candidates.len() > 1 => details.push(format!("{}: {detail}", strategy_name(layering, d))),
            Some(detail) => details.push(detail),
        }
    }
    Err(WhyError::Mismatch {
        tried: candidates.iter().map(|l| strategy_name(l, d)).collect::<Vec<_>>().join(" or "),
        graph: d.graph_file.clone(),
        detail: details.join("; "),
    })
}

/// Where the recomputed layers first differ from the conf's, if anywhere.
fn compare(placed: &Placed, conf_layers: &[Vec<String>]) -> Option<String> {
    for (i, (ours, theirs)) in placed.iter().zip(conf_layers).enumerate() {
        let ours: Vec<String> = ours.iter().map(|(p, _)| normal(p)).collect();
        if &ours != theirs {
            let first = ours
                .iter()
                .zip(theirs)
                .find(|(a, b)| a != b)
                .map_or_else(|| format!("{} paths against the conf's {}", ours.len(), theirs.len()), |(a, b)| format!("{a} where the conf has {b}"));
            return Some(format!("store layer {} differs ({first})", i + 1));
        }
    }
    (placed.len() != conf_layers.len()).then(|| format!("{} store layers against the conf's {}", placed.len(), conf_layers.len()))
}
