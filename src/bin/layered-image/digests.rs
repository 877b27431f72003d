use anyhow::Context;
use layered_image::blob::compress::Compression;
use layered_image::blob::record;
use layered_image::conf::{CUSTOMISATION_DIGEST_KEY, Conf, DIGESTS_KEY, LayerDigest};
use layered_image::image::base::BaseImage;
use layered_image::time::DateTime;
use std::io::Write;
use std::path::PathBuf;

/// `digests CONF [-o FILE] [--compress gzip|zstd [--compress-level N]]`
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    layered-image digests conf.json -o conf-digests.json\n  \
    layered-image digests conf.json --compress gzip -o conf-digests.json   # then: copy conf-digests.json oci:out")]
pub struct Args {
    /// The conf.json whose store layers to hash.
    pub conf: PathBuf,
    /// Write the new conf to FILE (atomically) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also record each layer's blob digest and size under this compression, as `copy` makes it
    /// (so `copy` can skip layers a destination already holds without reading them).
    #[arg(long, value_name = "gzip|zstd")]
    pub compress: Option<String>,
    /// Compression level for --compress: gzip 1-9 (libdeflate; default 2), zstd 1-19 (default 3).
    #[arg(long, value_name = "N", requires = "compress")]
    pub compress_level: Option<i64>,
    /// Threads (default: all cores). Never changes the digests.
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// With --compress: recompute the digests the conf already records too
    /// (by default a layer whose digests for this compression are recorded,
    /// e.g. by the layer's own Nix derivation, is not read again).
    #[arg(long, requires = "compress")]
    pub recompute: bool,
}

/// Adds `store_layer_digests` (and, with --compress, each layer's blob
/// digests and `customisation_layer_digest`) to a conf, so that `stream`
/// reads each layer once and `copy` knows every blob before reading one.
/// The rest of the conf is kept as it is, key order included.
pub fn run(args: Args) -> anyhow::Result<()> {
    let text = layered_image::input::read_limited(&args.conf, layered_image::input::JSON_LIMIT)
        .with_context(|| format!("cannot read {}", args.conf.display()))?;
    let mut raw: serde_json::Value = serde_json::from_slice(&text).with_context(|| format!("{} is not valid JSON", args.conf.display()))?;
    let conf = Conf::load(&args.conf, DateTime::now_utc())?;
    // Digests depend on the files' mtime; "now" would make them stale at once.
    let mtime = raw.get("mtime").or_else(|| raw.get("created"));
    if mtime.and_then(|v| v.as_str()) == Some("now") {
        anyhow::bail!("{}: file mtimes are \"now\", so layer digests cannot be computed ahead of streaming", args.conf.display());
    }
    let cancel = crate::progress::cancel_on_signals()?;
    let obj = raw.as_object_mut().context("the conf must be a JSON object")?;
    let compression = args.compress.as_deref().map(|name| Compression::parse(name, args.compress_level)).transpose()?;
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |c| c.get()));
    let base = conf.from_image.as_deref().map(BaseImage::open).transpose()?;
    let recorded = record::record(&conf, base.as_ref(), compression, jobs, args.recompute, &cancel)?;
    obj.insert(DIGESTS_KEY.into(), recorded.store_layers.iter().map(LayerDigest::to_json).collect::<Vec<_>>().into());
    if let Some(c) = recorded.customisation {
        obj.insert(CUSTOMISATION_DIGEST_KEY.into(), c.to_json());
    }
    let mut bytes = serde_json::to_vec_pretty(&raw)?;
    bytes.push(b'\n');
    match &args.output {
        None => std::io::stdout().write_all(&bytes).context("cannot write to stdout")?,
        Some(path) => layered_image::output::write_whole(path, &bytes)?,
    }
    Ok(())
}
