use crate::progress::{Stderr, cancel_on_signals};
use anyhow::Context;
use layered_image::blob::cache::BlobCache;
use layered_image::blob::compress::Compression;
use layered_image::blob::produce;
use layered_image::conf::Conf;
use layered_image::dest::{self, Name, registry};
use layered_image::image::base::BaseImage;
use layered_image::reference;
use layered_image::sbom;
use layered_image::source::ImageSource;
use layered_image::time::DateTime;
use std::path::{Path, PathBuf};

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
    /// scripts), else gzip. Image sources keep their gzip and zstd layers unless
    /// --compress is given (their uncompressed layers take the default).
    #[arg(long, value_name = "none|gzip|zstd")]
    pub compress: Option<String>,
    /// Compression level: gzip 1-9 (libdeflate; default 2), zstd 1-19 (default 3).
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
    /// Also put the manifest under TAG in DEST's repository (blobs go up once); a tag
    /// that names the image already is left as it is. Repeatable.
    #[arg(long, value_name = "TAG")]
    pub additional_tag: Vec<String>,
    /// Registry destinations: print what the push would do with each blob (already
    /// there, mount, upload and its size) and the manifest, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// No progress: no bar, no periodic or per-layer lines (warnings and errors
    /// are still printed; --dry-run's plan still goes to stdout).
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Attach an SBOM of each image (from the conf's closure_graph, see `conf
    /// --closure-graph`) as an OCI referrer: in oci: and oci-archive: layouts, and in
    /// registries (their referrers API, else the sha256-<digest> referrers tag).
    #[arg(long, value_enum, value_name = "spdx|cyclonedx")]
    pub sbom: Option<SbomFormat>,
    /// Attach an in-toto SLSA provenance statement of each image, as --sbom does.
    #[arg(long)]
    pub provenance: bool,
    /// What Nix knows of the direct contents, for --sbom (as `sbom --meta`).
    #[arg(long, value_name = "FILE", requires = "sbom")]
    pub sbom_meta: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SbomFormat {
    Spdx,
    Cyclonedx,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    Docker,
    Podman,
}

impl From<Engine> for dest::daemon::Engine {
    fn from(e: Engine) -> Self {
        match e {
            Engine::Docker => dest::daemon::Engine::Docker,
            Engine::Podman => dest::daemon::Engine::Podman,
        }
    }
}

/// DEST and the CONFs: the last argument, unless it is no destination at
/// all (no transport) and --default-dest names one.
fn dest_and_confs(args: &Args) -> anyhow::Result<(&str, &[String])> {
    let (last, rest) = args.args.split_last().expect("clap requires an argument");
    let names_no_transport = matches!(last.parse::<Name>(), Err(dest::DestinationError::NoTransport(_)));
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
    let name: Name = dest_text.parse()?;
    let default = std::env::var("LAYERED_IMAGE_COMPRESS").unwrap_or_else(|_| "gzip".into());
    let compression = Compression::parse(args.compress.as_deref().unwrap_or(&default), args.compress_level)
        .with_context(|| if args.compress.is_none() { "$LAYERED_IMAGE_COMPRESS".to_string() } else { "--compress".to_string() })?;
    let jobs = match args.jobs {
        Some(0) => anyhow::bail!("--jobs must be at least 1"),
        Some(j) => j,
        None => std::thread::available_parallelism().map_or(2, |c| c.get()),
    };
    if let Some(t) = &args.repo_tag {
        if !reference::is_docker_reference(t) {
            anyhow::bail!("-t {t:?} is not a valid NAME:TAG image reference");
        }
    }
    if (args.dry_run || !args.additional_tag.is_empty()) && !matches!(name, Name::Registry(_)) {
        anyhow::bail!("--dry-run and --additional-tag apply to docker:// destinations");
    }
    if let Some(t) = args.additional_tag.iter().find(|t| !reference::is_docker_reference(&format!("x:{t}")) || t.contains([':', '/', '@'])) {
        anyhow::bail!("--additional-tag {t:?} is not a valid tag");
    }
    let single_platform = matches!(name, Name::DockerArchive { .. } | Name::DockerDaemon { .. });
    let attaching = args.sbom.is_some() || args.provenance;
    if attaching && (single_platform || args.dry_run) {
        anyhow::bail!("--sbom and --provenance attach OCI referrers: they apply to oci:, oci-archive: and docker:// (not --dry-run)");
    }
    if single_platform && args.index {
        anyhow::bail!("--index needs an OCI or registry destination (docker-archive and docker-daemon hold one platform)");
    }
    if single_platform && args.compress.as_deref().is_some_and(|c| c != "none") {
        anyhow::bail!("docker-archive layers are uncompressed; --compress applies to oci:, oci-archive: and docker://");
    }
    let opts = dest::Options {
        blobs: produce::Options {
            compression,
            jobs,
            retries: args.retries.max(1),
            blob_cache: if args.no_blob_cache { None } else { BlobCache::from_env() },
            // As skopeo: an image's gzip and zstd layers keep their bytes
            // (and digests) unless --compress asks otherwise.
            keep_compression: args.compress.is_none() && confs.iter().all(|c| IMAGE_TRANSPORTS.iter().any(|t| c.starts_with(t))),
        },
        repo_tag: args.repo_tag.clone(),
        registry: registry::Options {
            creds: args.dest_creds.clone(),
            authfile: args.dest_authfile.clone(),
            cert_dir: args.dest_cert_dir.clone(),
            tls_verify: args.dest_tls_verify,
            mount_from: args.mount_from.clone(),
            retries: args.retries.max(1),
            cancel: Some(std::sync::Arc::clone(&cancel)),
            idle_timeout: registry::idle_timeout_from_env()?,
        },
        fsync: false,
        additional_tags: args.additional_tag.clone(),
        engine: args.engine.into(),
        dry_run: args.dry_run,
    };
    let loaded = confs.iter().map(|c| Loaded::open(c)).collect::<anyhow::Result<Vec<_>>>()?;
    let sources: Vec<dest::Source> = loaded.iter().zip(confs).map(|(l, label)| dest::Source { input: l.input(), label: label.clone() }).collect();
    let progress = if args.quiet { Stderr::quiet("read") } else { Stderr::new("read") };
    let totals: Option<Vec<u64>> = loaded
        .iter()
        .map(|l| match l {
            Loaded::Conf(c, b) => crate::progress::image_total(c, b.as_ref(), progress.is_terminal()),
            Loaded::Image(_) => None,
        })
        .collect();
    if let Some(t) = totals {
        progress.set_total(t.iter().sum());
    }
    let documents = if attaching { Some(documents(&args, &loaded, confs)?) } else { None };
    let attach = documents.as_ref().map(|d| d as &dyn dest::referrers::Attachments);
    let result = dest::copy(&name, &sources, &opts, &progress, &cancel, attach);
    progress.finish();
    let written = result?;
    if let Some(plan) = &written.plan {
        // The plan is the command's output.
        use std::io::Write;
        std::io::stdout().lock().write_all(plan.as_bytes()).context("cannot write the plan to stdout")?;
    }
    if let (Some(file), Some(d)) = (&args.digestfile, written.digest) {
        layered_image::output::write_whole(file, d.to_string().as_bytes())?;
    }
    Ok(())
}

/// The documents --sbom and --provenance attach, for each conf (an image
/// source carries the referrers it has).
fn documents<'a>(args: &Args, loaded: &'a [Loaded], confs: &[String]) -> anyhow::Result<sbom::attach::Documents<'a>> {
    let meta = args.sbom_meta.as_deref().map(sbom::meta::read).transpose()?.unwrap_or_default();
    let inputs = loaded
        .iter()
        .zip(confs)
        .map(|(l, path)| match l {
            Loaded::Conf(conf, base) => {
                let closure = sbom::attach::conf_closure(Path::new(path))?;
                let conf_in_store = std::fs::canonicalize(path)
                    .ok()
                    .map(|p| p.display().to_string())
                    .filter(|p| p.starts_with(&format!("{}/", conf.store_dir.trim_end_matches('/'))));
                let build = sbom::provenance::BuildInputs {
                    conf: conf_in_store,
                    builder_id: sbom::provenance::DEFAULT_BUILDER_ID.into(),
                    ..Default::default()
                };
                Ok(Some(sbom::attach::Input { conf, base: base.as_ref(), closure, meta: meta.clone(), build }))
            }
            Loaded::Image(i) => {
                anyhow::bail!("{}: --sbom and --provenance describe an image made from a conf; an image source carries the referrers it has", i.label)
            }
        })
        .collect::<anyhow::Result<_>>()?;
    let sbom = args.sbom.map(|f| match f {
        SbomFormat::Spdx => sbom::attach::Format::Spdx,
        SbomFormat::Cyclonedx => sbom::attach::Format::CycloneDx,
    });
    Ok(sbom::attach::Documents { sbom, provenance: args.provenance, inputs })
}

/// Transports a CONF argument may name instead of a conf.
const IMAGE_TRANSPORTS: [&str; 5] = ["oci:", "oci-archive:", "docker-archive:", "docker://", "docker-daemon:"];

/// What a CONF argument names: a conf.json, or an image in skopeo's names.
enum Loaded {
    Conf(Box<Conf>, Option<BaseImage>),
    Image(Box<ImageSource>),
}

impl Loaded {
    fn open(arg: &str) -> anyhow::Result<Loaded> {
        if arg.starts_with("dir:") {
            anyhow::bail!(
                "{arg}: dir: is not a copy source; use oci:, oci-archive: or docker-archive: (skopeo copy dir:... oci:DIR:REF makes a layout)"
            );
        }
        if IMAGE_TRANSPORTS.iter().any(|t| arg.starts_with(t)) {
            let name: Name = arg.parse()?;
            return match ImageSource::open(&name)? {
                Some(image) => Ok(Loaded::Image(Box::new(image))),
                None => anyhow::bail!("{arg}: copy reads images from oci:, oci-archive: and docker-archive: (and confs)"),
            };
        }
        let (conf, base) = load(Path::new(arg))?;
        Ok(Loaded::Conf(Box::new(conf), base))
    }

    fn input(&self) -> dest::Input<'_> {
        match self {
            Loaded::Conf(conf, base) => dest::Input::Conf { conf, base: base.as_ref() },
            Loaded::Image(image) => dest::Input::Image(image),
        }
    }
}

/// A conf and the base image it names.
pub fn load(conf: &Path) -> anyhow::Result<(Conf, Option<BaseImage>)> {
    let conf = Conf::load(conf, DateTime::now_utc())?;
    let base = conf.from_image.as_deref().map(BaseImage::open).transpose()?;
    Ok((conf, base))
}
