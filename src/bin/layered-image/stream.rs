use crate::progress::{Stderr, cancel_on_signals};
use anyhow::Context;
use layered_image::dest::docker_archive;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

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
    /// No progress: neither nixpkgs' lines nor a bar (warnings and errors are still printed).
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cancel = cancel_on_signals()?;
    if args.output.is_none() && std::io::stdout().is_terminal() {
        anyhow::bail!("refusing to write an image to a terminal; pipe it (`| docker load`) or use -o FILE");
    }
    let (conf, base) = crate::copy::load(&args.conf)?;
    let repo_tag = args.repo_tag.clone().unwrap_or_else(|| conf.repo_tag.clone());
    let progress = if args.quiet { Stderr::quiet("written") } else { Stderr::new("written") };
    // As nixpkgs' script, any name is written; docker load wants NAME:TAG
    // by distribution's grammar, so say now that it will refuse this one.
    if let Some(w) = layered_image::reference::refusal_warning(&repo_tag) {
        progress.warn(&w);
    }
    if let Some(total) = crate::progress::image_total(&conf, base.as_ref(), progress.is_terminal()) {
        progress.set_total(total);
    }
    let layers = base.as_ref().map_or(0, |b| b.layers.len()) + conf.store_layers.len() + 1 + usize::from(conf.users.is_some());
    if let Some(w) = layered_image::image::layer_count_warning(layers) {
        progress.warn(&w);
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
            docker_archive::write_into(&file, "stdout", &conf, base.as_ref(), &repo_tag, &progress, &cancel)
        }
        Some(path) => docker_archive::write_file(path, &conf, base.as_ref(), &repo_tag, args.fsync, &progress, &cancel),
    };
    progress.finish();
    if cancel.load(Ordering::Relaxed) && result.is_err() {
        return result.context("stream stopped");
    }
    Ok(result?)
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
