use crate::progress::{Stderr, cancel_on_signals};
use anyhow::Context;
use layered_image::base_image::BaseImage;
use layered_image::conf::Conf;
use layered_image::output::{Accept, OutputFile};
use layered_image::stream::{self, Progress};
use layered_image::time::DateTime;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// `stream CONF [-t NAME:TAG] [-o FILE]`
#[derive(clap::Args)]
pub struct Args {
    /// The conf.json (seed or newest nixpkgs schema).
    pub conf: PathBuf,
    /// Override the image's RepoTags entry.
    #[arg(short = 't', long = "repo-tag", visible_alias = "repo_tag", value_name = "NAME:TAG")]
    pub repo_tag: Option<String>,
    /// Write the image to FILE instead of stdout; FILE appears only once
    /// the image is complete.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cancel = cancel_on_signals()?;
    if args.output.is_none() && std::io::stdout().is_terminal() {
        anyhow::bail!("refusing to write an image to a terminal; pipe it (`| docker load`) or use -o FILE");
    }
    let conf = Conf::load(&args.conf, DateTime::now_utc())?;
    let base = conf.from_image.as_deref().map(BaseImage::open).transpose()?;
    let repo_tag = args.repo_tag.clone().unwrap_or_else(|| conf.repo_tag.clone());
    let progress = Stderr::new("written");
    let layers = base.as_ref().map_or(0, |b| b.layers.len()) + conf.store_layers.len() + 1;
    if let Some(w) = stream::layer_count_warning(layers) {
        progress.line(&w);
    }
    let result = match &args.output {
        None => {
            let stdout = std::io::stdout().as_fd_owned().context("cannot use stdout")?;
            // A 64 KiB pipe costs a context switch per 64 KiB; a larger one
            // lets `docker load` and us run in longer stretches. Best effort.
            let _ = nix::fcntl::fcntl(&stdout, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
            // Smaller than a layer chunk, so chunks go straight to the pipe.
            let w = BufWriter::with_capacity(64 << 10, std::fs::File::from(stdout));
            stream::stream(&conf, base.as_ref(), &repo_tag, w, &progress, &cancel).map_err(|e| name_output(e, "stdout"))
        }
        Some(path) => write_file(path, &conf, base.as_ref(), &repo_tag, &progress, &cancel),
    };
    progress.finish();
    if cancel.load(Ordering::Relaxed) && result.is_err() {
        return result.context("stream stopped");
    }
    result
}

/// The image goes to FILE through [`OutputFile`]: a regular file appears
/// only once the image is complete; a FIFO or device is written into.
pub fn write_file(
    path: &std::path::Path,
    conf: &Conf,
    base: Option<&BaseImage>,
    repo_tag: &str,
    progress: &Stderr,
    cancel: &AtomicBool,
) -> anyhow::Result<()> {
    let out = OutputFile::create(path, Accept::Any)?;
    let mut w = BufWriter::with_capacity(64 << 10, out.file());
    stream::stream(conf, base, repo_tag, &mut w, progress, cancel).map_err(|e| name_output(e, &path.display().to_string()))?;
    w.flush().with_context(|| format!("cannot write {}", path.display()))?;
    drop(w);
    out.commit()?;
    Ok(())
}

/// A write failure says where the image was going (a full disk under -o,
/// a full or closed stdout); other failures name their own culprit.
fn name_output(e: stream::StreamError, target: &str) -> anyhow::Error {
    match e {
        stream::StreamError::Output(_) => anyhow::Error::from(e).context(format!("writing {target}")),
        e => e.into(),
    }
}

trait OwnedFd {
    fn as_fd_owned(&self) -> std::io::Result<std::os::fd::OwnedFd>;
}

impl OwnedFd for std::io::Stdout {
    /// A duplicate of fd 1, written without std's line buffering.
    fn as_fd_owned(&self) -> std::io::Result<std::os::fd::OwnedFd> {
        use std::os::fd::AsFd;
        self.as_fd().try_clone_to_owned()
    }
}
