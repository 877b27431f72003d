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
#[command(
    after_help = "Examples:\n  layered-image stream conf.json | docker load\n  layered-image stream conf.json -t example.com/app:1.0 -o image.tar"
)]
pub struct Args {
    /// The conf.json (seed or newest nixpkgs schema).
    pub conf: PathBuf,
    /// Override the image's RepoTags entry (NAME:TAG by distribution's reference grammar).
    #[arg(short = 't', long = "repo-tag", visible_alias = "repo_tag", value_name = "NAME:TAG")]
    pub repo_tag: Option<String>,
    /// Write the image to FILE instead of stdout; FILE appears only once
    /// the image is complete.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// With -o: make FILE durable (fsync) before it appears. Off by default, as with tar,
    /// cp and skopeo: it costs as long again as writing the image to disk.
    #[arg(long, requires = "output")]
    pub fsync: bool,
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
    // As nixpkgs' script, any name is written; docker load wants NAME:TAG
    // by distribution's grammar, so say now that it will refuse this one.
    if let Some(w) = layered_image::reference::refusal_warning(&repo_tag) {
        progress.line(&w);
    }
    let layers = base.as_ref().map_or(0, |b| b.layers.len()) + conf.store_layers.len() + 1;
    if let Some(w) = stream::layer_count_warning(layers) {
        progress.line(&w);
    }
    let result = match &args.output {
        None => {
            let stdout = std::io::stdout().as_fd_owned().context("cannot use stdout")?;
            // A 64 KiB pipe costs a context switch per 64 KiB; a larger one
            // lets `docker load` and us run in longer stretches. Best effort
            // (Linux only: Darwin's pipes size themselves).
            #[cfg(any(target_os = "linux", target_os = "android"))]
            let _ = nix::fcntl::fcntl(&stdout, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
            let file = std::fs::File::from(stdout);
            // Smaller than a layer chunk, so chunks go straight to the pipe.
            let w = BufWriter::with_capacity(64 << 10, &file);
            match seekable_at(&file) {
                // `> FILE`: layers are read once and their headers rewritten in place.
                Some(start) => stream::stream_seekable(&conf, base.as_ref(), &repo_tag, w, stream::Patch { file: &file, start }, &progress, &cancel),
                None => stream::stream(&conf, base.as_ref(), &repo_tag, w, &progress, &cancel),
            }
            .map_err(|e| name_output(e, "stdout"))
        }
        Some(path) => write_file(path, &conf, base.as_ref(), &repo_tag, &progress, &cancel, args.fsync),
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
    fsync: bool,
) -> anyhow::Result<()> {
    let out = OutputFile::create(path, Accept::Any)?;
    let mut w = BufWriter::with_capacity(64 << 10, out.file());
    // A new file (not a FIFO or device written into) takes each layer in
    // one pass, its header rewritten in place.
    match out.temp_path() {
        Some(_) => {
            let patch = stream::Patch { file: out.file(), start: 0 };
            stream::stream_seekable(conf, base, repo_tag, &mut w, patch, progress, cancel)
        }
        None => stream::stream(conf, base, repo_tag, &mut w, progress, cancel),
    }
    .map_err(|e| name_output(e, &path.display().to_string()))?;
    w.flush().with_context(|| format!("cannot write {}", path.display()))?;
    drop(w);
    if fsync {
        out.commit()?
    } else {
        out.commit_unsynced()?
    }
    Ok(())
}

/// Where the archive starts, if `file` is a regular file we may write at
/// offsets of (not opened for appending: pwrite would append there).
fn seekable_at(file: &std::fs::File) -> Option<u64> {
    use std::io::Seek;
    let meta = file.metadata().ok()?;
    let flags = nix::fcntl::fcntl(file, nix::fcntl::FcntlArg::F_GETFL).ok()?;
    if !meta.is_file() || flags & libc::O_APPEND != 0 {
        return None;
    }
    (&*file).stream_position().ok()
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
