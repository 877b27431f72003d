use crate::progress::{Stderr, cancel_on_signals};
use anyhow::Context;
use layered_image::base_image::BaseImage;
use layered_image::compress::Compression;
use layered_image::conf::Conf;
use layered_image::copy::{self, Fate, Image};
use layered_image::destination::Destination;
use layered_image::oci::{self, OciLayout};
use layered_image::reference;
use layered_image::stream::Progress;
use layered_image::time::DateTime;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// `copy CONF DEST [--compress none|gzip|zstd] [--compress-level N] [-j N] [-t NAME:TAG]`
// A later option wins (copyTo scripts pass defaults users may override).
#[derive(clap::Args)]
#[command(args_override_self = true)]
#[command(after_help = "Examples:\n  \
    layered-image copy conf.json oci:./out:latest\n  \
    layered-image copy conf.json oci-archive:image.tar --compress zstd\n  \
    layered-image copy conf.json docker-archive:image.tar:hello:1.0")]
pub struct Args {
    /// The conf.json (as for `stream`); precomputed digests from `digests --compress` let unchanged layers be skipped unread.
    pub conf: PathBuf,
    /// Where the image goes: docker-archive:PATH[:NAME:TAG], oci:DIR[:REF] or oci-archive:PATH[:REF].
    /// An oci: layout keeps the images already in it and shares their blobs;
    /// REF defaults to the tag of the image's NAME:TAG.
    pub dest: String,
    /// Layer compression for OCI destinations (docker-archive layers are always uncompressed);
    /// default: $LAYERED_IMAGE_COMPRESS (set by Nix's copyTo scripts), else gzip.
    #[arg(long, value_name = "none|gzip|zstd")]
    pub compress: Option<String>,
    /// Compression level: gzip 1-9 (default 6), zstd 1-19 (default 3).
    #[arg(long, value_name = "N")]
    pub compress_level: Option<i64>,
    /// Threads for compression and layers produced at once (default: all cores). Never changes the bytes.
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// The image's NAME:TAG (default: the conf's repo_tag).
    #[arg(short = 't', long = "repo-tag", value_name = "NAME:TAG")]
    pub repo_tag: Option<String>,
    /// Also write the manifest digest (sha256:...) to FILE.
    #[arg(long, value_name = "FILE")]
    pub digestfile: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cancel = cancel_on_signals()?;
    let dest: Destination = args.dest.parse()?;
    let default = std::env::var("LAYERED_IMAGE_COMPRESS").unwrap_or_else(|_| "gzip".into());
    let compression = Compression::parse(args.compress.as_deref().unwrap_or(&default), args.compress_level)
        .with_context(|| if args.compress.is_none() { "$LAYERED_IMAGE_COMPRESS".to_string() } else { "--compress".to_string() })?;
    let jobs = match args.jobs {
        Some(0) => anyhow::bail!("--jobs must be at least 1"),
        Some(j) => j,
        None => std::thread::available_parallelism().map_or(2, |c| c.get()),
    };
    if let Some(t) = &args.repo_tag
        && !reference::is_docker_reference(t)
    {
        anyhow::bail!("-t {t:?} is not a valid NAME:TAG image reference");
    }
    let conf = Conf::load(&args.conf, DateTime::now_utc())?;
    let base = conf.from_image.as_deref().map(BaseImage::open).transpose()?;
    let repo_tag = args.repo_tag.clone().unwrap_or_else(|| conf.repo_tag.clone());
    let progress = Stderr::new("read");
    let opts = copy::Options { compression, jobs };
    let result = match &dest {
        Destination::DockerArchive { path, reference } => {
            if args.compress.as_deref().is_some_and(|c| c != "none") {
                anyhow::bail!("docker-archive layers are uncompressed; --compress applies to oci: and oci-archive:");
            }
            let tag = reference.clone().unwrap_or(repo_tag);
            crate::stream::write_file(path, &conf, base.as_ref(), &tag, &progress, &cancel).map(|()| None)
        }
        Destination::Oci { dir, reference } => {
            let name = reference.clone().or_else(|| reference::tag_of(&repo_tag).map(str::to_string));
            to_layout(dir, name.as_deref(), &conf, base.as_ref(), &opts, &progress, &cancel).map(Some)
        }
        Destination::OciArchive { path, reference } => {
            let name = reference.clone().or_else(|| reference::tag_of(&repo_tag).map(str::to_string));
            to_archive(path, name.as_deref(), &conf, base.as_ref(), &opts, &progress, &cancel).map(Some)
        }
    };
    progress.finish();
    if cancel.load(Ordering::Relaxed) && result.is_err() {
        return result.map(|_| ()).context("copy stopped");
    }
    let Some(image) = result? else { return Ok(()) };
    let written = image.layers.iter().filter(|l| l.fate == Fate::Written).count();
    progress.line(&format!(
        "Copied to {}: manifest sha256:{}, config sha256:{}, {} layers ({} written, {} already present)",
        args.dest,
        image.manifest.sha256,
        image.config.digest.sha256,
        image.layers.len(),
        written,
        image.layers.len() - written
    ));
    if let Some(file) = &args.digestfile {
        layered_image::output::write_whole(file, format!("sha256:{}", image.manifest.sha256).as_bytes())?;
    }
    Ok(())
}

fn to_layout(
    dir: &Path,
    reference: Option<&str>,
    conf: &Conf,
    base: Option<&BaseImage>,
    opts: &copy::Options,
    progress: &Stderr,
    cancel: &AtomicBool,
) -> anyhow::Result<Image> {
    let layout = OciLayout::open_or_create(dir)?;
    let image = copy::write_image(conf, base, &layout, opts, progress, cancel)?;
    layout.tag(&image.manifest, reference)?;
    Ok(image)
}

/// The layout is built in a temporary directory beside PATH and archived
/// into PATH, which appears only once complete.
fn to_archive(
    path: &Path,
    reference: Option<&str>,
    conf: &Conf,
    base: Option<&BaseImage>,
    opts: &copy::Options,
    progress: &Stderr,
    cancel: &AtomicBool,
) -> anyhow::Result<Image> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".layered-image-")
        .tempdir_in(&parent)
        .with_context(|| format!("cannot create a temporary directory in {}", parent.display()))?;
    let image = to_layout(&tmp.path().join("layout"), reference, conf, base, opts, progress, cancel)?;
    if cancel.load(Ordering::Relaxed) {
        anyhow::bail!("interrupted; {} was not written", path.display());
    }
    oci::write_archive(&tmp.path().join("layout"), path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(image)
}
