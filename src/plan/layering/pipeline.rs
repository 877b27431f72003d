//! nixpkgs' `layeringPipeline` language (`flatten_references_graph`): a
//! JSON list of `[step, args...]` applied to the closure graph, whose
//! flattened result is the list of layers.

mod vgraph;

use super::popularity::popularity_order;
use crate::plan::graph::{Graph, GraphError, RawNode};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use vgraph::VGraph;

pub const STEP_NAMES: &[&str] = &[
    "popularity_contest",
    "limit_layers",
    "split_every",
    "subcomponent_in",
    "subcomponent_out",
    "split_paths",
    "over",
    "pipe",
    "map",
    "flatten",
    "remove_paths",
    "reverse",
];

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("pipeline: unknown step {name:?} (known steps: {})", STEP_NAMES.join(", "))]
    UnknownStep { name: String },
    #[error("pipeline step {step}: {what}")]
    BadStep { step: String, what: String },
    #[error("pipeline step {step}: {what}")]
    BadData { step: String, what: String },
    #[error("pipeline: {0}")]
    Malformed(String),
    #[error(transparent)]
    Graph(#[from] GraphError),
}

#[derive(Debug, Clone)]
pub enum Spec {
    Path(String),
    ChildrenOf(Vec<String>),
}

#[derive(Debug, Clone)]
pub enum Step {
    PopularityContest,
    LimitLayers(usize),
    SplitEvery(usize),
    Subcomponent { inward: bool, paths: Vec<String> },
    SplitPaths(Vec<Spec>),
    Over(String, Box<Step>),
    Pipe(Vec<Step>),
    Map(Box<Step>),
    Flatten,
    RemovePaths(Vec<String>),
    Reverse,
}

impl Step {
    fn name(&self) -> &'static str {
        match self {
            Step::PopularityContest => "popularity_contest",
            Step::LimitLayers(_) => "limit_layers",
            Step::SplitEvery(_) => "split_every",
            Step::Subcomponent { inward: true, .. } => "subcomponent_in",
            Step::Subcomponent { inward: false, .. } => "subcomponent_out",
            Step::SplitPaths(_) => "split_paths",
            Step::Over(..) => "over",
            Step::Pipe(_) => "pipe",
            Step::Map(_) => "map",
            Step::Flatten => "flatten",
            Step::RemovePaths(_) => "remove_paths",
            Step::Reverse => "reverse",
        }
    }
}

/// Parses a whole pipeline (a JSON list of steps).
pub fn parse_pipeline(value: &Value) -> Result<Vec<Step>, PipelineError> {
    let steps = value.as_array().ok_or_else(|| PipelineError::Malformed(format!("expected a list of steps, got {}", short(value))))?;
    steps.iter().map(parse_step).collect()
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() <= 80 {
        return s;
    }
    // The last character boundary at or before byte 77.
    let end = (0..=77).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
    format!("{}...", &s[..end])
}

pub fn parse_step(value: &Value) -> Result<Step, PipelineError> {
    let items = value
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| PipelineError::Malformed(format!("a step must be a list [name, args...], got {}", short(value))))?;
    let name = items[0].as_str().ok_or_else(|| PipelineError::Malformed(format!("step name must be a string, got {}", short(&items[0]))))?;
    let args = &items[1..];
    let bad = |what: String| PipelineError::BadStep { step: name.to_string(), what };
    let arity = |n: usize| {
        if args.len() == n { Ok(()) } else { Err(bad(format!("takes {n} argument(s), got {}", args.len()))) }
    };
    let count = |v: &Value| match v.as_u64() {
        Some(n) if n > 0 => Ok(n as usize),
        _ => Err(bad(format!("expected a positive integer, got {}", short(v)))),
    };
    let path_list = |v: &Value| -> Result<Vec<String>, PipelineError> {
        v.as_array()
            .ok_or_else(|| bad(format!("expected a list of store paths, got {}", short(v))))?
            .iter()
            .map(|p| p.as_str().map(str::to_string).ok_or_else(|| bad(format!("not a store path: {}", short(p)))))
            .collect()
    };
    Ok(match name {
        "popularity_contest" => {
            arity(0)?;
            Step::PopularityContest
        }
        "flatten" => {
            arity(0)?;
            Step::Flatten
        }
        "reverse" => {
            arity(0)?;
            Step::Reverse
        }
        "limit_layers" => {
            arity(1)?;
            Step::LimitLayers(count(&args[0]).map_err(|_| bad(format!("max count needs to be > 0, got {}", short(&args[0]))))?)
        }
        "split_every" => {
            arity(1)?;
            Step::SplitEvery(count(&args[0])?)
        }
        "subcomponent_in" | "subcomponent_out" => {
            arity(1)?;
            Step::Subcomponent { inward: name == "subcomponent_in", paths: path_list(&args[0])? }
        }
        "remove_paths" => {
            arity(1)?;
            match &args[0] {
                Value::String(s) => Step::RemovePaths(vec![s.clone()]),
                other => Step::RemovePaths(path_list(other)?),
            }
        }
        "split_paths" => {
            arity(1)?;
            let specs = args[0].as_array().ok_or_else(|| bad(format!("expected a list of specs, got {}", short(&args[0]))))?;
            Step::SplitPaths(
                specs
                    .iter()
                    .map(|s| match s {
                        Value::String(p) => Ok(Spec::Path(p.clone())),
                        Value::Object(o) => match (o.get("children_of"), o.len()) {
                            (Some(Value::String(p)), 1) => Ok(Spec::ChildrenOf(vec![p.clone()])),
                            (Some(v @ Value::Array(_)), 1) => Ok(Spec::ChildrenOf(path_list(v)?)),
                            _ => Err(bad(format!("unexpected split path spec {}: valid keys: [\"children_of\"]", short(s)))),
                        },
                        _ => Err(bad(format!("unexpected split path spec {}", short(s)))),
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        "over" => {
            arity(2)?;
            let key = args[0].as_str().ok_or_else(|| bad(format!("key must be a string, got {}", short(&args[0]))))?;
            Step::Over(key.to_string(), Box::new(parse_step(&args[1])?))
        }
        "map" => {
            arity(1)?;
            Step::Map(Box::new(parse_step(&args[0])?))
        }
        "pipe" => {
            arity(1)?;
            Step::Pipe(parse_pipeline(&args[0]).map_err(|e| bad(e.to_string()))?)
        }
        other => {
            return Err(PipelineError::UnknownStep { name: other.to_string() });
        }
    })
}

/// Data flowing through a pipeline.
#[derive(Debug, Clone)]
enum Data {
    Graph(VGraph),
    List(Vec<Data>),
    Dict(Vec<(String, Data)>),
}

struct Ctx<'a> {
    paths: &'a [String],
    index: &'a HashMap<String, u32>,
}

impl Ctx<'_> {
    fn find(&self, g: &VGraph, path: &str) -> Option<u32> {
        self.index.get(path).and_then(|&node| g.find(node))
    }
}

fn data_err(step: &Step, what: &str) -> PipelineError {
    PipelineError::BadData { step: step.name().to_string(), what: what.to_string() }
}

fn run_step(ctx: &Ctx, step: &Step, data: Data) -> Result<Data, PipelineError> {
    let graph = |data: Data| match data {
        Data::Graph(g) => Ok(g),
        _ => Err(data_err(step, "expects a graph (use \"over\" or \"map\" to reach one)")),
    };
    let list = |data: Data| match data {
        Data::List(xs) => Ok(xs),
        _ => Err(data_err(step, "expects a list of graphs")),
    };
    Ok(match step {
        Step::PopularityContest => {
            let g = graph(data)?;
            let names: Vec<&str> = g.vs.iter().map(|&v| ctx.paths[v as usize].as_str()).collect();
            let order = popularity_order(&g.succ, &names);
            Data::List(order.into_iter().map(|i| Data::Graph(VGraph::single(g.vs[i as usize]))).collect())
        }
        Step::LimitLayers(n) => {
            let mut xs = list(data)?;
            let rest = xs.split_off((n - 1).min(xs.len()));
            let mut merged = VGraph::default();
            for x in rest {
                match x {
                    Data::Graph(g) => merged.append(&g),
                    _ => return Err(data_err(step, "can only merge graphs")),
                }
            }
            xs.push(Data::Graph(merged));
            Data::List(xs)
        }
        Step::SplitEvery(n) => {
            let g = graph(data)?;
            Data::List((0..g.len()).step_by(*n).map(|start| Data::Graph(g.range(start, (start + n).min(g.len())))).collect())
        }
        Step::Subcomponent { inward, paths } => {
            let g = graph(data)?;
            let starts: Vec<u32> = paths.iter().filter_map(|p| ctx.find(&g, p)).collect();
            let edges = if *inward { g.preds() } else { g.succ.clone() };
            let main = g.reach_mask(&edges, &starts);
            Data::Dict(vec![("main".into(), Data::Graph(g.induced(&main))), ("rest".into(), Data::Graph(g.without(&main)))])
        }
        Step::SplitPaths(specs) => split_paths(ctx, specs, graph(data)?),
        Step::Over(key, inner) => match data {
            Data::Dict(mut entries) => {
                let slot = entries.iter_mut().find(|(k, _)| k == key).ok_or_else(|| data_err(step, &format!("key {key:?} not found")))?;
                let value = std::mem::replace(&mut slot.1, Data::List(Vec::new()));
                slot.1 = run_step(ctx, inner, value)?;
                Data::Dict(entries)
            }
            _ => {
                return Err(data_err(step, "expects a dict (the result of split_paths or subcomponent_*)"));
            }
        },
        Step::Pipe(steps) => run_steps(ctx, steps, data)?,
        Step::Map(inner) => Data::List(list(data)?.into_iter().map(|x| run_step(ctx, inner, x)).collect::<Result<_, _>>()?),
        Step::Flatten => {
            let mut out = Vec::new();
            flatten_into(data, &mut out);
            Data::List(out.into_iter().map(Data::Graph).collect())
        }
        Step::RemovePaths(paths) => {
            let g = graph(data)?;
            let mut drop = vec![false; g.len()];
            for p in paths {
                if let Some(i) = ctx.find(&g, p) {
                    drop[i as usize] = true;
                }
            }
            Data::Graph(g.without(&drop))
        }
        Step::Reverse => {
            let mut xs = list(data)?;
            xs.reverse();
            Data::List(xs)
        }
    })
}

fn run_steps(ctx: &Ctx, steps: &[Step], mut data: Data) -> Result<Data, PipelineError> {
    for step in steps {
        data = run_step(ctx, step, data)?;
    }
    Ok(data)
}

fn flatten_into(data: Data, out: &mut Vec<VGraph>) {
    match data {
        Data::Graph(g) => out.push(g),
        Data::List(xs) => xs.into_iter().for_each(|x| flatten_into(x, out)),
        Data::Dict(entries) => entries.into_iter().for_each(|(_, x)| flatten_into(x, out)),
    }
}

fn split_paths(ctx: &Ctx, specs: &[Spec], g: VGraph) -> Data {
    let mut split: Vec<u32> = Vec::new();
    for spec in specs {
        match spec {
            Spec::Path(p) => split.extend(ctx.find(&g, p)),
            Spec::ChildrenOf(ps) => {
                for p in ps {
                    if let Some(i) = ctx.find(&g, p) {
                        split.extend(&g.succ[i as usize]);
                    }
                }
            }
        }
    }
    if split.is_empty() {
        return Data::Dict(vec![("rest".into(), Data::Graph(g))]);
    }
    let n = g.len();
    let mut is_split = vec![false; n];
    for &s in &split {
        is_split[s as usize] = true;
    }
    let preds = g.preds();
    let roots: Vec<u32> = (0..n as u32).filter(|&v| preds[v as usize].is_empty()).collect();
    // With several roots the reference adds a fake root above them; it is
    // never one of the split paths, and its edges into split paths go too.
    if roots.len() == 1 && is_split[roots[0] as usize] {
        return Data::Dict(vec![("main".into(), Data::Graph(g))]);
    }
    let split_off = g.reach_mask(&g.succ, &split);
    let cut = VGraph { vs: g.vs.clone(), succ: g.succ.iter().map(|s| s.iter().copied().filter(|&c| !is_split[c as usize]).collect()).collect() };
    let starts: Vec<u32> = roots.into_iter().filter(|&r| !is_split[r as usize]).collect();
    let rest_with_common = cut.reach_mask(&cut.succ, &starts);
    let common: Vec<bool> = (0..n).map(|i| split_off[i] && rest_with_common[i]).collect();
    let main: Vec<bool> = (0..n).map(|i| split_off[i] && !common[i]).collect();
    let rest: Vec<bool> = (0..n).map(|i| rest_with_common[i] && !common[i]).collect();
    let parts = [("main", main), ("common", common), ("rest", rest)];
    Data::Dict(
        parts
            .into_iter()
            .map(|(k, mask)| (k.to_string(), cut.induced(&mask)))
            .filter(|(_, sub)| !sub.is_empty())
            .map(|(k, sub)| (k, Data::Graph(sub)))
            .collect(),
    )
}

/// Runs `pipeline` on the graph given as raw nodes, after removing
/// `exclude` (nodes and references to them), as `flatten_references_graph`.
pub fn run_pipeline(raw: &[RawNode], exclude: &HashSet<String>, steps: &[Step], file: &str) -> Result<Vec<Vec<String>>, PipelineError> {
    let kept: Vec<RawNode> = raw
        .iter()
        .filter(|n| !exclude.contains(&n.path))
        .map(|n| RawNode {
            path: n.path.clone(),
            references: n.references.iter().filter(|r| !exclude.contains(*r)).cloned().collect(),
            nar_size: n.nar_size,
        })
        .collect();
    let graph = Graph::build(&kept, file)?;
    // igraph vertex order: narSize ascending, stable; edges likewise by
    // target size (only their order inside a vertex's list is affected).
    let mut order: Vec<u32> = (0..graph.len() as u32).collect();
    order.sort_by_key(|&v| graph.nar_size[v as usize]);
    let mut local = vec![0u32; graph.len()];
    for (i, &v) in order.iter().enumerate() {
        local[v as usize] = i as u32;
    }
    let start = VGraph {
        vs: order.clone(),
        succ: order
            .iter()
            .map(|&v| {
                let mut kids = graph.children[v as usize].clone();
                kids.sort_by_key(|&c| graph.nar_size[c as usize]);
                kids.into_iter().map(|c| local[c as usize]).collect()
            })
            .collect(),
    };
    let ctx = Ctx { paths: &graph.paths, index: &graph.index };
    let result = run_steps(&ctx, steps, Data::Graph(start))?;
    let mut graphs = Vec::new();
    flatten_into(result, &mut graphs);
    Ok(graphs.into_iter().filter(|g| !g.is_empty()).map(|g| g.vs.iter().map(|&v| graph.paths[v as usize].clone()).collect()).collect())
}
