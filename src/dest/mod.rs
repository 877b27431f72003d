//! Where images go, one module per transport, named as skopeo names them
//! ([`name`]), all behind one interface: [`Destination::write`] takes the
//! images (one, or one per platform for an index), writes them and names
//! them. `copy`, `stream -o` and the Nix scripts all come through [`copy`].

pub mod daemon;
pub mod docker_archive;
pub mod name;
pub mod oci_archive;
pub mod oci_layout;
pub mod podman_host;
pub mod referrers;
pub mod registry;

use crate::blob::produce::{self, Fate, Image, ProduceError};
use crate::blob::{BlobStore, StoreError};
use crate::conf::Conf;
use crate::digest::Digest;
use crate::image::base::BaseImage;
use crate::image::manifest::{self, PlatformManifest};
use crate::image::{ImageError, Progress};
use crate::source::ImageSource;
use std::sync::atomic::{AtomicBool, Ordering};

pub use name::{DestinationError, Name};

/// What an image is made from.
pub enum Input<'a> {
    /// A conf, and the base image it builds on: the image is made.
    Conf { conf: &'a Conf, base: Option<&'a BaseImage> },
    /// An image read from elsewhere: its blobs are copied.
    Image(&'a ImageSource),
}

/// An image to write.
pub struct Source<'a> {
    pub input: Input<'a>,
    /// How progress lines name it (the conf's path, the source's name).
    pub label: String,
}

impl<'a> Source<'a> {
    /// The conf and base image, for destinations that make the image from
    /// them (a docker-archive is written as nixpkgs writes it).
    fn conf(&self, what: &str) -> Result<(&'a Conf, Option<&'a BaseImage>), CopyError> {
        match self.input {
            Input::Conf { conf, base } => Ok((conf, base)),
            Input::Image(i) => Err(CopyError::Unsupported(format!(
                "{} is an image, and {what} is written from a conf; copy an image to oci:, oci-archive: or docker://",
                i.label
            ))),
        }
    }
}

/// How to write: what `copy` takes from its flags.
#[derive(Debug, Clone)]
pub struct Options {
    /// How layers become blobs (OCI and registry destinations).
    pub blobs: produce::Options,
    /// The image's NAME:TAG where the destination's name gives none.
    pub repo_tag: Option<String>,
    /// Registry credentials, TLS and mounts.
    pub registry: registry::Options,
    /// Make a file durable before it appears (docker-archive).
    pub fsync: bool,
    /// More tags for the same manifest (registries).
    pub additional_tags: Vec<String>,
    /// Say what a push would do (registries), writing nothing.
    pub dry_run: bool,
    /// The engine behind `docker-daemon:`.
    pub engine: daemon::Engine,
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Produce(#[from] ProduceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    /// A failure while writing to `target`, which the error names: a full
    /// disk under `-o`, a closed stdout.
    #[error("{}", write_message(target, source))]
    Write { target: String, source: ImageError },
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    #[error(transparent)]
    Archive(#[from] oci_archive::ArchiveError),
    #[error(transparent)]
    Daemon(#[from] daemon::DaemonError),
    #[error(transparent)]
    PodmanHost(#[from] podman_host::PodmanHostError),
    #[error(transparent)]
    Sbom(#[from] crate::sbom::SbomError),
    #[error("{0}")]
    Unsupported(String),
    #[error("interrupted; {0}")]
    Interrupted(String),
}

fn write_message(target: &str, e: &ImageError) -> String {
    match e {
        ImageError::Output(_) => format!("writing {target}: {e}"),
        e => e.to_string(),
    }
}

/// What was written: the digest naming it (manifest or index), where the
/// destination has one.
#[derive(Debug, Clone, Default)]
pub struct Written {
    pub digest: Option<Digest>,
    /// A dry run's plan: one line per blob, then the manifest.
    pub plan: Option<String>,
}

/// What a destination is asked to write, and how.
pub struct Job<'a> {
    /// One image, or one per platform (an index).
    pub images: &'a [Source<'a>],
    pub opts: &'a Options,
    pub progress: &'a dyn Progress,
    pub cancel: &'a AtomicBool,
    /// Documents to attach to each image as OCI referrers (layouts, registries).
    pub attach: Option<&'a dyn referrers::Attachments>,
}

impl Job<'_> {
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Destinations that hold one platform only.
    fn single(&self, what: &str) -> Result<&Source<'_>, CopyError> {
        match self.images {
            [one] => Ok(one),
            _ => Err(CopyError::Unsupported(format!("{what} holds one platform; an index needs an OCI or registry destination"))),
        }
    }

    /// The NAME:TAG an image is tagged with where the destination names
    /// none: `-t`, else the conf's; an image source has its reference only.
    fn repo_tag(&self, source: &Source<'_>) -> Option<String> {
        self.opts.repo_tag.clone().or_else(|| match source.input {
            Input::Conf { conf, .. } => Some(conf.repo_tag.clone()),
            Input::Image(_) => None,
        })
    }
}

/// One transport.
pub trait Destination {
    /// Writes the job's images (several make a multi-platform index) and names them.
    fn write(&self, job: &Job<'_>) -> Result<Written, CopyError>;
}

/// The destination `name` stands for.
pub fn open(name: &Name) -> Box<dyn Destination + '_> {
    match name {
        Name::DockerArchive { path, reference } => Box::new(docker_archive::DockerArchive { path, reference: reference.as_deref() }),
        Name::Oci { dir, reference } => Box::new(oci_layout::Layout { dir, reference: reference.as_deref() }),
        Name::OciArchive { path, reference } => Box::new(oci_archive::OciArchive { path, reference: reference.as_deref() }),
        Name::Registry(target) => Box::new(registry::Push { target }),
        Name::DockerDaemon { reference } => Box::new(daemon::Load { reference }),
    }
}

/// Writes `images` to the destination `name` (with the referrers `attach`
/// makes for them): the library's one entry point.
pub fn copy(
    name: &Name,
    images: &[Source<'_>],
    opts: &Options,
    progress: &dyn Progress,
    cancel: &AtomicBool,
    attach: Option<&dyn referrers::Attachments>,
) -> Result<Written, CopyError> {
    let result = open(name).write(&Job { images, opts, progress, cancel, attach });
    match result {
        // Stopped by a signal: whatever failed on the way, say so, once.
        Err(e) if cancel.load(Ordering::Relaxed) && !e.to_string().contains("tag was not changed") => {
            let text = e.to_string();
            let what = text.strip_prefix("interrupted; ").or_else(|| text.strip_prefix("interrupted: ")).unwrap_or(&text);
            Err(CopyError::Interrupted(format!("{what}; the destination's tag was not changed")))
        }
        r => r,
    }
}

/// A manifest (or index) and its media type, and the images it names.
pub struct Named {
    pub bytes: Vec<u8>,
    pub media_type: &'static str,
    /// Each source's image as written, in the job's order.
    pub images: Vec<Image>,
}

impl Job<'_> {
    /// The referrers to write beside each image written (by index into
    /// `named.images`), made or carried.
    pub fn referrers(&self, named: &Named) -> Result<Vec<(usize, Vec<referrers::Referrer>)>, CopyError> {
        let mut out = Vec::new();
        for (i, image) in named.images.iter().enumerate() {
            let r = referrers::for_image(self, self.attach, i, image)?;
            if !r.is_empty() {
                out.push((i, r));
            }
        }
        Ok(out)
    }
}

/// Writes the image of each source into `store`; returns what names them:
/// the one manifest, or an index of one manifest per platform (each handed
/// to `each_manifest` first).
pub fn write_images(
    job: &Job<'_>,
    store: &dyn BlobStore,
    each_manifest: &mut dyn FnMut(&Image) -> Result<(), CopyError>,
) -> Result<Named, CopyError> {
    let (images, progress) = (job.images, job.progress);
    let mut platforms = Vec::new();
    let mut written_images = Vec::new();
    for source in images {
        if images.len() > 1 {
            progress.line(&format!("Image {}:", source.label));
        }
        let (image, architecture, os, variant) = match source.input {
            Input::Conf { conf, base } => {
                let image = produce::write_image(conf, base, store, &job.opts.blobs, progress, job.cancel)?;
                (image, conf.architecture.as_str().unwrap_or("amd64").to_string(), "linux".to_string(), conf.variant.clone())
            }
            Input::Image(i) => {
                let layers = i.layers();
                let image = i.own_manifest(produce::copy_image(&i.config_bytes, &layers, store, &job.opts.blobs, progress, job.cancel)?);
                (image, i.architecture.clone(), i.os.clone(), i.variant.clone())
            }
        };
        let written = image.layers.iter().filter(|l| l.fate == Fate::Written).count();
        progress.line(&format!(
            "Image of {}: config {}, manifest {}, {} layers ({} written, {} already present)",
            source.label,
            image.config.digest.digest,
            image.manifest.digest,
            image.layers.len(),
            written,
            image.layers.len() - written
        ));
        platforms.push(PlatformManifest { manifest: image.manifest, architecture, os, variant });
        if images.len() > 1 {
            each_manifest(&image)?;
        }
        written_images.push(image);
    }
    match written_images.len() {
        0 => Err(CopyError::Unsupported("no image to write".into())),
        1 => Ok(Named { bytes: written_images[0].manifest_bytes.clone(), media_type: manifest::MANIFEST_MEDIA_TYPE, images: written_images }),
        _ => Ok(Named { bytes: manifest::image_index(&platforms), media_type: manifest::INDEX_MEDIA_TYPE, images: written_images }),
    }
}
