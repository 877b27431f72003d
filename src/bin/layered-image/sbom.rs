//! `sbom` and `provenance`: documents about the image of a conf, from its
//! closure graph (the conf's `closure_graph`, or `--graph`).

use anyhow::Context;
use layered_image::blob::compress::Compression;
use layered_image::conf::Conf;
use layered_image::image::Quiet;
use layered_image::image::base::BaseImage;
use layered_image::sbom::closure::{self, CLOSURE_GRAPH_KEY, Closure};
use layered_image::sbom::provenance::{self, BuildInputs, Subject};
use layered_image::sbom::{self, cyclonedx, meta, spdx};
use layered_image::time::DateTime;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// SPDX 2.3 JSON.
    SpdxJson,
    /// CycloneDX 1.6 JSON.
    CyclonedxJson,
}

/// Where the closure graph comes from.
#[derive(clap::Args)]
pub struct GraphArgs {
    /// The conf.json of the image.
    pub conf: PathBuf,
    /// Closure graph (exportReferencesGraph list, an object holding it, or `nix path-info --json -r`)
    /// to use instead of the conf's `closure_graph` (which `conf --closure-graph` records).
    #[arg(long, value_name = "FILE")]
    pub graph: Option<PathBuf>,
    /// Key of the graph list inside --graph (default: `graph`, or the only list).
    #[arg(long, value_name = "KEY", requires = "graph")]
    pub graph_key: Option<String>,
    /// What Nix knows of the direct contents: a JSON object keyed by store path, each
    /// {pname, version, license (an SPDX expression), homepage, description}.
    #[arg(long, value_name = "FILE")]
    pub meta: Option<PathBuf>,
    /// Write to FILE (atomically) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `sbom CONF [--format spdx-json|cyclonedx-json] [--graph FILE] [-o FILE]`
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    layered-image conf --closure-graph ... -o conf.json && layered-image sbom conf.json -o image.spdx.json\n  \
    layered-image sbom conf.json --format cyclonedx-json --graph <(nix path-info --json -r ./result-closure)")]
pub struct Args {
    #[command(flatten)]
    pub input: GraphArgs,
    /// Document format.
    #[arg(long, value_enum, default_value = "spdx-json")]
    pub format: Format,
}

/// `provenance CONF [--compress none|gzip|zstd]... [--subject-digest sha256:HEX]... [-o FILE]`
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    layered-image provenance conf.json --compress gzip --derivation /nix/store/...-hello.drv -o image.intoto.json\n  \
    layered-image provenance conf.json --subject-digest sha256:$(cut -d: -f2 digestfile)   # the manifest `copy --digestfile` wrote")]
pub struct ProvenanceArgs {
    #[command(flatten)]
    pub input: GraphArgs,
    /// A subject: the manifest `copy` makes with this layer compression (repeatable). Layers
    /// whose blob digests the conf does not record are read and compressed to learn them.
    /// Default, without --subject-digest: $LAYERED_IMAGE_COMPRESS, else gzip (as `copy`).
    #[arg(long, value_name = "none|gzip|zstd")]
    pub compress: Vec<String>,
    /// Compression level for --compress: gzip 1-9 (libdeflate; default 2), zstd 1-19 (default 3).
    #[arg(long, value_name = "N")]
    pub compress_level: Option<i64>,
    /// A subject given by its manifest digest (repeatable), e.g. from `copy --digestfile`.
    #[arg(long, value_name = "sha256:HEX")]
    pub subject_digest: Vec<String>,
    /// The image's derivation (.drv store path), recorded as a build input.
    #[arg(long, value_name = "DRV")]
    pub derivation: Option<String>,
    /// The nixpkgs git revision the image was evaluated from, recorded as a build input.
    #[arg(long, value_name = "REV")]
    pub nixpkgs_revision: Option<String>,
    /// The builder's identity (a URI) recorded in runDetails.
    #[arg(long, value_name = "URI", default_value = provenance::DEFAULT_BUILDER_ID)]
    pub builder_id: String,
    /// Threads for compressing layers (default: all cores). Never changes the digests.
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
}

struct Loaded {
    conf: Conf,
    base: Option<BaseImage>,
    image: sbom::Image,
}

fn load(input: &GraphArgs, cancel: &AtomicBool) -> anyhow::Result<Loaded> {
    let conf = Conf::load(&input.conf, DateTime::now_utc())?;
    let closure = match &input.graph {
        Some(file) => closure::read(file, input.graph_key.as_deref())?,
        None => conf_closure(&input.conf)?,
    };
    let meta = match &input.meta {
        Some(file) => meta::read(file)?,
        None => meta::Meta::new(),
    };
    let base = conf.from_image.as_deref().map(BaseImage::open).transpose()?;
    let image = sbom::describe(&conf, base.as_ref(), &closure, &meta, cancel)?;
    if let Some(stray) = meta.keys().find(|p| image.paths.binary_search_by(|i| i.path.as_str().cmp(p)).is_err()) {
        layered_image::diag::line(&format!("layered-image: warning: --meta names {stray}, which is not a store path of the image"));
    }
    let missing: Vec<&str> = image.paths.iter().filter(|p| !closure.contains_key(&p.path)).map(|p| p.path.as_str()).collect();
    if let Some(first) = missing.first() {
        // Explicit layers may hold paths outside the graph Nix exported.
        layered_image::diag::line(&format!(
            "layered-image: warning: {} store path(s) of the conf are not in the closure graph and are listed without narHash and references, e.g. {first}",
            missing.len()
        ));
    }
    Ok(Loaded { conf, base, image })
}

/// The conf's own `closure_graph`.
fn conf_closure(conf: &Path) -> anyhow::Result<Closure> {
    let text =
        layered_image::input::read_limited(conf, layered_image::input::JSON_LIMIT).with_context(|| format!("cannot read {}", conf.display()))?;
    let value: serde_json::Value = serde_json::from_slice(&text).with_context(|| format!("{} is not valid JSON", conf.display()))?;
    let graph = value.get(CLOSURE_GRAPH_KEY).with_context(|| {
        format!(
            "{}: no \"{CLOSURE_GRAPH_KEY}\" key: make the conf with `layered-image conf --closure-graph`, or give the graph with --graph FILE",
            conf.display()
        )
    })?;
    Ok(closure::from_value(graph, None, &format!("{} key \"{CLOSURE_GRAPH_KEY}\"", conf.display()))?)
}

fn write_out(output: Option<&Path>, bytes: &[u8]) -> anyhow::Result<()> {
    match output {
        None => std::io::stdout().lock().write_all(bytes).context("cannot write to stdout")?,
        Some(path) => layered_image::output::write_whole(path, bytes)?,
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cancel = crate::progress::cancel_on_signals()?;
    let loaded = load(&args.input, &cancel)?;
    let bytes = match args.format {
        Format::SpdxJson => spdx::document(&loaded.image),
        Format::CyclonedxJson => cyclonedx::document(&loaded.image),
    };
    write_out(args.input.output.as_deref(), &bytes)
}

pub fn run_provenance(args: ProvenanceArgs) -> anyhow::Result<()> {
    // Every argument is checked before anything is read.
    let given: Vec<String> = args
        .subject_digest
        .iter()
        .map(|d| {
            d.strip_prefix("sha256:")
                .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
                .map(str::to_string)
                .with_context(|| format!("--subject-digest {d:?}: expected sha256: and 64 lowercase hex digits"))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut names = args.compress.clone();
    if names.is_empty() && given.is_empty() {
        names.push(std::env::var("LAYERED_IMAGE_COMPRESS").unwrap_or_else(|_| "gzip".into()));
    }
    let compressions: Vec<Compression> = names
        .iter()
        .map(|name| Compression::parse(name, args.compress_level).with_context(|| format!("--compress {name}")))
        .collect::<anyhow::Result<_>>()?;
    let jobs = match args.jobs {
        Some(0) => anyhow::bail!("--jobs must be at least 1"),
        Some(j) => j,
        None => std::thread::available_parallelism().map_or(2, |c| c.get()),
    };
    let cancel = crate::progress::cancel_on_signals()?;
    let loaded = load(&args.input, &cancel)?;
    let mut subjects: Vec<Subject> = given.into_iter().map(|hex| Subject { name: loaded.image.name.clone(), manifest_sha256: hex }).collect();
    for compression in compressions {
        let opts = layered_image::blob::produce::Options { compression, jobs, retries: 1, blob_cache: None, keep_compression: false };
        let written =
            layered_image::blob::produce::write_image(&loaded.conf, loaded.base.as_ref(), &layered_image::blob::Discard, &opts, &Quiet, &cancel)?;
        subjects.push(Subject { name: loaded.image.name.clone(), manifest_sha256: written.manifest.digest.hex() });
    }
    subjects.dedup();
    let conf_in_store = std::fs::canonicalize(&args.input.conf)
        .ok()
        .map(|p| p.display().to_string())
        .filter(|p| p.starts_with(&format!("{}/", loaded.conf.store_dir.trim_end_matches('/'))));
    let inputs = BuildInputs {
        derivation: args.derivation.clone(),
        conf: conf_in_store,
        nixpkgs_revision: args.nixpkgs_revision.clone(),
        builder_id: args.builder_id.clone(),
    };
    write_out(args.input.output.as_deref(), &provenance::statement(&loaded.image, &subjects, &inputs))
}
