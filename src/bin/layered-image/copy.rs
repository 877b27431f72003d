use crate::progress::{Stderr, cancel_on_signals};
use anyhow::Context;
use layered_image::base_image::BaseImage;
use layered_image::blob::BlobStore;
use layered_image::blob_cache::BlobCache;
use layered_image::compress::Compression;
use layered_image::conf::Conf;
use layered_image::copy::{self, Fate, Image};
use layered_image::daemon::Daemon;
use layered_image::destination::Destination;
use layered_image::oci::{self, OciLayout, PlatformManifest};
use layered_image::reference;
use layered_image::registry::{self, Registry};
use layered_image::stream::Progress;
use layered_image::time::DateTime;
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// `copy CONF DEST`, `copy --index CONF... DEST`
// A later option wins (copyTo scripts pass defaults users may override).
#[derive(clap::Args)]
#[command(args_override_self = true)]
#[command(after_help = "Examples:\n  \
    layered-image copy conf.json oci:./out:latest\n  \
    layered-image copy conf.json oci-archive:image.tar --compress zstd\n  \
    layered-image copy conf.json docker://registry.example.com/team/app:1.0 --dest-creds user:pass\n  \
    layered-image copy --index amd64.json arm64.json docker://localhost:5000/app:1.0 --dest-tls-verify=false\n  \
    layered-image copy conf.json docker-daemon:app:1.0\n  \
    layered-image copy conf.json docker-archive:image.tar:hello:1.0")]
pub struct Args {
    /// CONF DEST: the conf.json (as for `stream`) and where the image goes:
    /// docker://HOST[:PORT]/REPO[:TAG|@DIGEST], docker-daemon:NAME:TAG,
    /// docker-archive:PATH[:NAME:TAG], oci:DIR[:REF] or oci-archive:PATH[:REF].
    /// With --index: several CONFs (one per platform), then DEST.
    #[arg(required = true, num_args = 1.., value_name = "CONF... DEST")]
    pub args: Vec<String>,
    /// The destination when the last argument is a CONF, not a destination (Nix's
    /// copyIndex script: its images' CONFs, then the user's DEST if one is given).
    #[arg(long, value_name = "DEST")]
    pub default_dest: Option<String>,
    /// The engine behind docker-daemon: docker ($DOCKER_HOST, else
    /// /var/run/docker.sock) or podman's Docker-compatible service ($CONTAINER_HOST,
    /// else $XDG_RUNTIME_DIR/podman/podman.sock if it exists, else
    /// /run/podman/podman.sock).
    #[arg(long, value_enum, default_value_t = Engine::Docker)]
    pub engine: Engine,
    /// Push one image per CONF and an OCI image index naming them by platform
    /// (each conf's architecture and os) under DEST's tag or REF.
    #[arg(long)]
    pub index: bool,
    /// Layer compression for OCI and registry destinations (docker-archive layers are
    /// always uncompressed); default: $LAYERED_IMAGE_COMPRESS (set by Nix's copyTo
    /// scripts), else gzip.
    #[arg(long, value_name = "none|gzip|zstd")]
    pub compress: Option<String>,
    /// Compression level: gzip 1-9 (default 6), zstd 1-19 (default 3).
    #[arg(long, value_name = "N")]
    pub compress_level: Option<i64>,
    /// Threads for compression and layers produced (or uploaded) at once (default: all
    /// cores). Never changes the bytes.
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// The image's NAME:TAG (default: the conf's repo_tag).
    #[arg(short = 't', long = "repo-tag", value_name = "NAME:TAG")]
    pub repo_tag: Option<String>,
    /// Also write the manifest digest (sha256:...) to FILE.
    #[arg(long, value_name = "FILE")]
    pub digestfile: Option<PathBuf>,
    /// Registry credentials USER:PASSWORD (default: --dest-authfile, $REGISTRY_AUTH_FILE,
    /// containers' auth.json, ~/.docker/config.json and its credential helpers).
    #[arg(long, value_name = "USER:PASSWORD")]
    pub dest_creds: Option<String>,
    /// An auth.json (or Docker config.json) to take registry credentials from.
    #[arg(long, value_name = "FILE")]
    pub dest_authfile: Option<PathBuf>,
    /// A directory of extra CA certificates (*.crt) to trust for the registry.
    #[arg(long, value_name = "DIR")]
    pub dest_cert_dir: Option<PathBuf>,
    /// Check the registry's TLS certificate (false: don't, and fall back to plain HTTP
    /// when the registry does not speak TLS).
    #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub dest_tls_verify: bool,
    /// Another repository of the same registry to mount existing blobs from; repeatable.
    #[arg(long, value_name = "REPO")]
    pub mount_from: Vec<String>,
    /// Attempts per request and per layer when the registry fails in a way that may pass
    /// (connection errors, 429, 5xx), with backoff.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub retries: u32,
    /// Neither use nor add to the blob cache ($LAYERED_IMAGE_CACHE_DIR, else
    /// ~/.cache/layered-image), which remembers what each layer compressed to so
    /// that a layer the destination holds is read once, not compressed or sent.
    #[arg(long)]
    pub no_blob_cache: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    Docker,
    Podman,
}

/// DEST and the CONFs: the last argument, unless it is no destination at
/// all (no transport) and --default-dest names one.
fn dest_and_confs(args: &Args) -> anyhow::Result<(&str, &[String])> {
    let (last, rest) = args.args.split_last().expect("clap requires an argument");
    let names_no_transport = matches!(last.parse::<Destination>(), Err(layered_image::destination::DestinationError::NoTransport(_)));
    let (dest, confs) = match &args.default_dest {
        Some(d) if names_no_transport => (d.as_str(), &args.args[..]),
        _ => (last.as_str(), rest),
    };
    if confs.is_empty() {
        anyhow::bail!("copy takes a CONF and a DEST (got only {dest:?})");
    }
    Ok((dest, confs))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cancel = cancel_on_signals()?;
    let (dest_text, confs) = dest_and_confs(&args)?;
    if !args.index && confs.len() != 1 {
        anyhow::bail!("copy takes one CONF and a DEST (several CONFs need --index)");
    }
    let dest: Destination = dest_text.parse()?;
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
    let blob_cache = if args.no_blob_cache { None } else { BlobCache::from_env() };
    let opts = copy::Options { compression, jobs, retries: args.retries.max(1), blob_cache };
    let progress = Stderr::new("read");
    let result = match &dest {
        Destination::DockerArchive { .. } | Destination::DockerDaemon { .. } if args.index => {
            Err(anyhow::anyhow!("--index needs an OCI or registry destination (docker-archive and docker-daemon hold one platform)"))
        }
        Destination::DockerArchive { .. } | Destination::DockerDaemon { .. } if args.compress.as_deref().is_some_and(|c| c != "none") => {
            Err(anyhow::anyhow!("docker-archive layers are uncompressed; --compress applies to oci:, oci-archive: and docker://"))
        }
        _ => copy_to(&args, confs, &dest, &opts, &progress, &cancel),
    };
    progress.finish();
    if cancel.load(Ordering::Relaxed) && result.is_err() {
        return result.map(|_| ()).context("copy stopped; the destination's tag was not changed");
    }
    let digest = result?;
    if let (Some(file), Some(d)) = (&args.digestfile, digest) {
        layered_image::output::write_whole(file, d.as_bytes())?;
    }
    Ok(())
}

/// Copies; returns the manifest (or index) digest where there is one.
fn copy_to(
    args: &Args,
    confs: &[String],
    dest: &Destination,
    opts: &copy::Options,
    progress: &Stderr,
    cancel: &AtomicBool,
) -> anyhow::Result<Option<String>> {
    let load = |c: &String| -> anyhow::Result<(Conf, Option<BaseImage>)> {
        let conf = Conf::load(Path::new(c), DateTime::now_utc())?;
        let base = conf.from_image.as_deref().map(BaseImage::open).transpose()?;
        Ok((conf, base))
    };
    let repo_tag = |conf: &Conf| args.repo_tag.clone().unwrap_or_else(|| conf.repo_tag.clone());
    match dest {
        Destination::DockerArchive { path, reference } => {
            let (conf, base) = load(&confs[0])?;
            let tag = reference.clone().unwrap_or_else(|| repo_tag(&conf));
            if let Some(w) = reference::refusal_warning(&tag) {
                progress.line(&w);
            }
            crate::stream::write_file(path, &conf, base.as_ref(), &tag, progress, cancel, false)?;
            Ok(None)
        }
        Destination::DockerDaemon { reference } => {
            let (conf, base) = load(&confs[0])?;
            let daemon = match args.engine {
                Engine::Docker => Daemon::from_env()?,
                Engine::Podman => Daemon::at(layered_image::podman_host::from_env()?),
            };
            to_daemon(&daemon, &conf, base.as_ref(), reference, progress, cancel).map(|()| None)
        }
        Destination::Oci { dir, reference } | Destination::OciArchive { path: dir, reference } => {
            let archive = matches!(dest, Destination::OciArchive { .. });
            let first = load(&confs[0])?;
            // A tag the layout's grammar refuses names nothing (nixpkgs' tags may be anything).
            let name =
                reference.clone().or_else(|| reference::tag_of(&repo_tag(&first.0)).filter(|t| reference::is_oci_ref_name(t)).map(str::to_string));
            // An oci-archive is a layout built beside PATH, then archived into it.
            let tmp;
            let layout_dir = if archive {
                let parent = match dir.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                tmp = tempfile::Builder::new()
                    .prefix(".layered-image-")
                    .tempdir_in(&parent)
                    .with_context(|| format!("cannot create a temporary directory in {}", parent.display()))?;
                tmp.path().join("layout")
            } else {
                dir.clone()
            };
            let layout = OciLayout::open_or_create(&layout_dir)?;
            // With an index, a layout keeps each platform's manifest as a blob.
            let mut as_blob = |(bytes, _): (&[u8], &str)| -> anyhow::Result<()> {
                layout.put_blob(bytes)?;
                Ok(())
            };
            let (bytes, media_type) = images(confs, Some(first), &load, &layout, opts, progress, cancel, &mut as_blob)?;
            let digest = layout.tag(&bytes, media_type, name.as_deref())?;
            if archive {
                if cancel.load(Ordering::Relaxed) {
                    anyhow::bail!("interrupted; {} was not written", dir.display());
                }
                oci::write_archive(&layout_dir, dir).with_context(|| format!("cannot write {}", dir.display()))?;
            }
            let named = args.args.last().expect("clap requires a DEST");
            progress.line(&format!("Wrote {named} as sha256:{}", digest.sha256));
            Ok(Some(format!("sha256:{}", digest.sha256)))
        }
        Destination::Registry(target) => {
            let reg = Registry::new(
                target.clone(),
                &registry::Options {
                    creds: args.dest_creds.clone(),
                    authfile: args.dest_authfile.clone(),
                    cert_dir: args.dest_cert_dir.clone(),
                    tls_verify: args.dest_tls_verify,
                    mount_from: args.mount_from.clone(),
                    retries: args.retries.max(1),
                },
            )?;
            reg.ping()?;
            // With an index, each platform's manifest goes up by digest first.
            let mut by_digest = |(bytes, media_type): (&[u8], &str)| -> anyhow::Result<()> {
                let d = format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)));
                reg.put_manifest(bytes, media_type, &d)?;
                Ok(())
            };
            let (bytes, media_type) = images(confs, None, &load, &reg, opts, progress, cancel, &mut by_digest)?;
            if cancel.load(Ordering::Relaxed) {
                anyhow::bail!("interrupted before the manifest was pushed");
            }
            reg.put_manifest(&bytes, media_type, target.reference())?;
            let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
            summary(&reg, progress);
            progress.line(&format!("Pushed {target} as {digest}"));
            Ok(Some(digest))
        }
    }
}

type Loaded = (Conf, Option<BaseImage>);
/// Receives each platform's manifest (bytes, media type) of an index.
type ManifestSink<'a> = &'a mut dyn FnMut((&[u8], &str)) -> anyhow::Result<()>;

/// Writes the image of each conf into `store`; returns what names them:
/// the one manifest, or an index of one manifest per platform (each
/// handed to `each_manifest` first).
#[allow(clippy::too_many_arguments)]
fn images(
    confs: &[String],
    first: Option<Loaded>,
    load: &dyn Fn(&String) -> anyhow::Result<Loaded>,
    store: &dyn BlobStore,
    opts: &copy::Options,
    progress: &Stderr,
    cancel: &AtomicBool,
    each_manifest: ManifestSink<'_>,
) -> anyhow::Result<(Vec<u8>, &'static str)> {
    let mut first = first;
    let mut platforms = Vec::new();
    let mut single = None;
    for c in confs {
        let (conf, base) = match first.take() {
            Some(f) => f,
            None => load(c)?,
        };
        if confs.len() > 1 {
            progress.line(&format!("Image {c}:"));
        }
        let image: Image = copy::write_image(&conf, base.as_ref(), store, opts, progress, cancel)?;
        let written = image.layers.iter().filter(|l| l.fate == Fate::Written).count();
        progress.line(&format!(
            "Image of {c}: config sha256:{}, manifest sha256:{}, {} layers ({} written, {} already present)",
            image.config.digest.sha256,
            image.manifest.sha256,
            image.layers.len(),
            written,
            image.layers.len() - written
        ));
        let architecture = conf.architecture.as_str().unwrap_or("amd64").to_string();
        platforms.push(PlatformManifest { manifest: image.manifest.clone(), architecture, os: "linux".into(), variant: conf.variant.clone() });
        if confs.len() > 1 {
            each_manifest((&image.manifest_bytes, oci::MANIFEST_MEDIA_TYPE))?;
        }
        single = Some(image.manifest_bytes);
    }
    if confs.len() == 1 {
        return Ok((single.expect("one conf"), oci::MANIFEST_MEDIA_TYPE));
    }
    Ok((oci::image_index(&platforms), oci::INDEX_MEDIA_TYPE))
}

/// One line per blob: uploaded, already there, or mounted.
fn summary(reg: &Registry, progress: &Stderr) {
    let mut outcomes: Vec<_> = reg.outcomes().into_iter().collect();
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    for (digest, o) in outcomes {
        let what = match o {
            registry::BlobOutcome::Uploaded => "uploaded".to_string(),
            registry::BlobOutcome::AlreadyThere => "already there".to_string(),
            registry::BlobOutcome::Mounted(from) => format!("mounted from {from}"),
        };
        progress.line(&format!("blob sha256:{digest}: {what}"));
    }
}

/// Streams the docker-archive into the engine, unless it has the image
/// already (its ID, the config digest, is known when every layer digest
/// is): then it is only tagged.
fn to_daemon(daemon: &Daemon, conf: &Conf, base: Option<&BaseImage>, reference: &str, progress: &Stderr, cancel: &AtomicBool) -> anyhow::Result<()> {
    if let Some(config) = copy::known_config(conf, base)? {
        let id = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&config)));
        if daemon.image_id(&id)?.as_deref() == Some(id.as_str()) {
            daemon.tag(&id, reference)?;
            progress.line(&format!("The engine has image {id} already; tagged it {reference}"));
            return Ok(());
        }
    }
    let loaded = daemon.load(|w| layered_image::stream::stream(conf, base, reference, w, progress, cancel))??;
    progress.line(&format!("Loaded into the engine: {loaded}"));
    Ok(())
}
