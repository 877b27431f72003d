use anyhow::Context;
use layered_image::plan::confgen::{ConfOptions, Layering, conf_value, render_jq, store_layers};
use layered_image::plan::graph::read_raw;
use layered_image::plan::layering::pipeline::parse_pipeline;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Strategy {
    Popularity,
    Auto,
    Pipeline,
}

/// The owner every entry of the store layers gets (`conf`, and `layer`,
/// whose digests hold only for an image of the same owner).
#[derive(clap::Args)]
pub struct Owner {
    /// Owner of the store layers' files.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub uid: u32,
    /// Group of the store layers' files.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub gid: u32,
    /// User name recorded in the store layers' tar headers.
    #[arg(long, default_value = "root", value_name = "NAME")]
    pub uname: String,
    /// Group name recorded in the store layers' tar headers.
    #[arg(long, default_value = "root", value_name = "NAME")]
    pub gname: String,
}

/// `conf --graph FILE --base-json FILE --customisation-layer PATH --image-name NAME --image-tag TAG ...`
#[derive(clap::Args)]
#[command(
    after_help = "Example (what the Nix conf derivation runs):\n  layered-image conf --graph .attrs.json --graph-key graph --base-json base.json \\\n    --customisation-layer /nix/store/...-customisation-layer --image-name hello --image-tag latest \\\n    --exclude /nix/store/...-base.json --exclude /nix/store/...-customisation-layer -o conf.json"
)]
pub struct Args {
    /// Closure graph: exportReferencesGraph list, an object holding it, or `nix path-info --json -r`.
    #[arg(long)]
    pub graph: PathBuf,
    /// Key of the graph list inside --graph (default: `graph`, or the only list).
    #[arg(long)]
    pub graph_key: Option<String>,
    /// The base json ({config, architecture, os}).
    #[arg(long)]
    pub base_json: PathBuf,
    /// The customisation layer: a directory holding layer.tar and checksum (customisation-layer's output).
    #[arg(long, value_name = "PATH")]
    pub customisation_layer: String,
    /// The image name (lower case, by distribution's reference grammar), e.g. example.com/app.
    #[arg(long, value_name = "NAME")]
    pub image_name: String,
    /// The image tag, e.g. latest.
    #[arg(long, value_name = "TAG")]
    pub image_tag: String,
    /// The Nix store directory the paths live in.
    #[arg(long, default_value = "/nix/store", value_name = "DIR")]
    pub store_dir: String,
    /// Base image (docker-archive, optionally compressed).
    #[arg(long)]
    pub from_image: Option<PathBuf>,
    /// Creation date of the image: "now" or any date GNU `date -d` reads (UTC unless it says otherwise).
    #[arg(long, default_value = "1970-01-01T00:00:01Z", value_name = "DATE")]
    pub created: String,
    /// Modification time of the files in the store layers: "now" or any date GNU `date -d` reads.
    #[arg(long, default_value = "1970-01-01T00:00:01Z", value_name = "DATE")]
    pub mtime: String,
    #[command(flatten)]
    pub owner: Owner,
    /// How the closure is split into layers: auto (auto-layer.py, nixpkgs' default), popularity (the classic split) or pipeline (a layeringPipeline).
    #[arg(long, value_enum, default_value = "auto")]
    pub layering: Strategy,
    /// Pipeline file for --layering pipeline: a JSON list of steps (or an object with `pipeline`).
    #[arg(long)]
    pub pipeline: Option<PathBuf>,
    /// Most layers of the image, the base image's and the customisation layer included (not for --layering pipeline).
    #[arg(long, default_value_t = 100, allow_negative_numbers = true, value_name = "N")]
    pub max_layers: i64,
    /// Store path to leave out of the layers (exact match; repeatable).
    #[arg(long)]
    pub exclude: Vec<String>,
    /// An explicit layer file written by `layered-image layer` (Nix: buildLayer); repeatable.
    /// Explicit layers (and the layers nested in them) come first; the rest of the closure
    /// is layered without their paths.
    #[arg(long = "layer", value_name = "FILE")]
    pub layers: Vec<PathBuf>,
    /// Record the image's closure graph (each store path's narHash, narSize and references) in
    /// the conf under `closure_graph`, for `layered-image sbom` and `provenance`. Off by default:
    /// the conf is then nixpkgs' byte for byte.
    #[arg(long)]
    pub closure_graph: bool,
    /// Print layering diagnostics to stderr (like DEBUG=1).
    #[arg(long)]
    pub debug: bool,
    /// Write the conf to FILE (atomically) instead of stdout.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
}

fn read_json(file: &Path, what: &str) -> anyhow::Result<Value> {
    let text = layered_image::input::read_limited(file, layered_image::input::SMALL_JSON_LIMIT)
        .with_context(|| format!("cannot read {what} {}", file.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("{what} {}: invalid JSON", file.display()))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // nixpkgs takes any name and tag; say now what will refuse them later.
    if let Some(w) = layered_image::reference::refusal_warning(&format!("{}:{}", args.image_name, args.image_tag)) {
        layered_image::diag::line(&w);
    }
    let layering = match args.layering {
        Strategy::Popularity => Layering::Popularity,
        Strategy::Auto => Layering::Auto,
        Strategy::Pipeline => {
            let file = args.pipeline.as_ref().context("--layering pipeline needs --pipeline FILE")?;
            let value = read_json(file, "pipeline file")?;
            let list = match &value {
                Value::Object(o) => o.get("pipeline").cloned().with_context(|| format!("pipeline file {}: no \"pipeline\" key", file.display()))?,
                _ => value,
            };
            Layering::Pipeline(parse_pipeline(&list).with_context(|| format!("pipeline file {}", file.display()))?)
        }
    };
    let opts = ConfOptions {
        debug: args.debug || std::env::var_os("DEBUG").is_some_and(|v| !v.is_empty()),
        store_dir: args.store_dir,
        from_image: args.from_image,
        customisation_layer: args.customisation_layer,
        repo_tag: format!("{}:{}", args.image_name, args.image_tag),
        created: args.created,
        mtime: args.mtime,
        uid: args.owner.uid,
        gid: args.owner.gid,
        uname: args.owner.uname,
        gname: args.owner.gname,
        layering,
        max_layers: args.max_layers,
        exclude: args.exclude,
        explicit: layered_image::plan::layer_spec::flatten(&args.layers)?,
    };
    let base = read_json(&args.base_json, "base json")?;
    let raw = read_raw(&args.graph, args.graph_key.as_deref())?;
    let layers = store_layers(&raw, &args.graph.display().to_string(), &opts)?;
    let n_layers = layers.len();
    let base_layers = opts.from_image.as_deref().and_then(|i| layered_image::image::base::manifest_layer_count(i).ok()).unwrap_or(0);
    if let Some(w) = layered_image::image::layer_count_warning(base_layers + n_layers + 1) {
        layered_image::diag::line(&w);
    }
    let mut conf = conf_value(&base, &args.base_json.display().to_string(), layers, &opts)?;
    if let Some(digests) = layered_image::plan::confgen::explicit_digests(&opts, n_layers, conf.get("perms"))? {
        conf.as_object_mut().expect("conf_value makes an object").insert(layered_image::conf::DIGESTS_KEY.into(), digests);
    }
    if args.closure_graph {
        let closure = layered_image::sbom::closure::read(&args.graph, args.graph_key.as_deref())?;
        let excluded: std::collections::HashSet<&str> = opts.exclude.iter().map(String::as_str).collect();
        let graph = layered_image::sbom::closure::to_json(&closure, |p| !excluded.contains(p));
        conf.as_object_mut().expect("conf_value makes an object").insert(layered_image::sbom::closure::CLOSURE_GRAPH_KEY.into(), graph);
    }
    let text = render_jq(&conf);
    match &args.output {
        None => std::io::stdout().lock().write_all(text.as_bytes()).context("writing to stdout")?,
        Some(file) => layered_image::output::write_whole(file, text.as_bytes())?,
    }
    Ok(())
}
