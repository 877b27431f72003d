use anyhow::Context;
use layered_image::conf::LayerDigest;
use layered_image::image::Quiet;
use layered_image::plan::confgen::date;
use layered_image::plan::layer_spec::{LayerSpec, Stamp, flatten};
use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::path::PathBuf;

/// `layer --graph FILE [--layer FILE]... [--uid N ...] [--compress gzip] -o FILE`
#[derive(clap::Args)]
#[command(after_help = "Example (what Nix's buildLayer runs):\n  \
    layered-image layer --graph .attrs.json --graph-key graph --layer deps-layer.json --compress gzip -o app-layer.json\n\
    Then: layered-image conf ... --layer app-layer.json")]
pub struct Args {
    /// Closure graph of the layer's contents (as for `conf`).
    #[arg(long, value_name = "FILE")]
    pub graph: PathBuf,
    /// Key of the graph list inside --graph (default: `graph`, or the only list).
    #[arg(long, value_name = "KEY")]
    pub graph_key: Option<String>,
    /// A layer nested in this one (its paths are left out of this one); repeatable.
    #[arg(long = "layer", value_name = "FILE")]
    pub layers: Vec<PathBuf>,
    /// The Nix store directory the paths live in.
    #[arg(long, default_value = "/nix/store", value_name = "DIR")]
    pub store_dir: String,
    #[command(flatten)]
    pub owner: crate::conf::Owner,
    /// Modification time of every entry (any date `conf --mtime` takes; not "now").
    #[arg(long, default_value = "1970-01-01T00:00:01Z", value_name = "DATE")]
    pub mtime: String,
    /// `perms` rules for this layer's paths (docs/perms.md): a JSON file
    /// holding the list, or an object with a `perms` list (Nix's attrs file).
    #[arg(long, value_name = "FILE")]
    pub perms: Option<PathBuf>,
    // The blob digest of this compression is recorded too.
    #[command(flatten)]
    pub blobs: crate::args::BlobArgs,
    /// Write the layer file to FILE (atomically) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// An explicit layer: the closure of its contents, less the layers nested
/// in it, with its digests.
pub fn run(args: Args) -> anyhow::Result<()> {
    let compression = args.blobs.compression()?;
    if args.mtime == "now" {
        anyhow::bail!("--mtime \"now\" would make the layer's digests stale at once; give a fixed date");
    }
    let mtime = date::normalize(&args.mtime).with_context(|| format!("invalid --mtime {:?}", args.mtime))?;
    let epoch = date::parse_epoch(&mtime).with_context(|| format!("invalid --mtime {:?}", args.mtime))?;
    let nested = flatten(&args.layers)?;
    let taken: HashSet<&str> = nested.iter().flat_map(|l| l.paths.iter().map(String::as_str)).collect();
    let raw = layered_image::plan::graph::read_raw(&args.graph, args.graph_key.as_deref())?;
    let paths: BTreeSet<&str> = raw.iter().map(|n| n.path.as_str()).filter(|p| !taken.contains(p)).collect();
    let store_paths =
        paths.iter().map(|p| layered_image::conf::store_path(&args.graph, &args.store_dir, p, PathBuf::from(p))).collect::<Result<Vec<_>, _>>()?;
    let (rules, perms) = match &args.perms {
        None => (Vec::new(), Default::default()),
        Some(file) => read_perms(file, &args.store_dir, &store_paths)?,
    };
    let stamp = layered_image::layer::Stamp {
        uid: args.owner.uid.into(),
        gid: args.owner.gid.into(),
        uname: args.owner.uname.clone(),
        gname: args.owner.gname.clone(),
        mtime: epoch,
        perms,
    };
    let cancel = crate::progress::cancel_on_signals()?;
    let jobs = args.blobs.jobs();
    let opts = layered_image::blob::produce::Options { compression, jobs, retries: 1, blob_cache: None, keep_compression: false };
    let blob = layered_image::blob::produce::store_layer_blob(&store_paths, &stamp, &layered_image::blob::Discard, &opts, &Quiet, &cancel)?;
    let mut digest = LayerDigest { digest: blob.diff_id.digest, size: blob.diff_id.size, ..Default::default() };
    if !compression.is_none() {
        digest.compressed.insert(compression.key(), blob.blob.digest);
    }
    let spec = LayerSpec {
        file: PathBuf::new(),
        paths: paths.iter().map(|p| p.to_string()).collect(),
        nested: args.layers.iter().map(|l| std::fs::canonicalize(l).unwrap_or_else(|_| l.clone())).collect(),
        stamp: Stamp { uid: args.owner.uid, gid: args.owner.gid, uname: args.owner.uname, gname: args.owner.gname, mtime },
        perms: rules,
        digest: Some(digest),
    };
    let mut bytes = serde_json::to_vec_pretty(&spec.to_json())?;
    bytes.push(b'\n');
    match &args.output {
        None => std::io::stdout().write_all(&bytes).context("cannot write to stdout")?,
        Some(path) => layered_image::output::write_whole(path, &bytes)?,
    }
    Ok(())
}

/// The rules of `--perms FILE`, as written (the layer file records them)
/// and parsed; a rule on a path of no store path of this layer is an error,
/// as in a conf.
fn read_perms(
    file: &std::path::Path,
    store_dir: &str,
    paths: &[layered_image::layer::StorePath],
) -> anyhow::Result<(Vec<serde_json::Value>, layered_image::layer::perms::Perms)> {
    let text = layered_image::input::read_limited(file, layered_image::input::JSON_LIMIT)
        .with_context(|| format!("cannot read the perms file {}", file.display()))?;
    let value: serde_json::Value = serde_json::from_slice(&text).with_context(|| format!("perms file {}: invalid JSON", file.display()))?;
    let list = match value {
        serde_json::Value::Object(mut o) => o.remove("perms").with_context(|| format!("perms file {}: no \"perms\" key", file.display()))?,
        other => other,
    };
    let mine: HashSet<&[u8]> = paths.iter().map(|p| &p.member_name[..]).collect();
    let member_name = |s: &str| layered_image::conf::store_path(file, store_dir, s, PathBuf::new()).map(|p| p.member_name).map_err(|e| e.to_string());
    let perms = layered_image::layer::perms::parse(&list, member_name, |m| mine.contains(m))
        .with_context(|| format!("perms file {} (the store paths of this layer)", file.display()))?;
    let rules = list.as_array().cloned().unwrap_or_default();
    Ok((rules, perms))
}
