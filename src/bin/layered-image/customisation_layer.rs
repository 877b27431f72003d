use anyhow::Context;
use layered_image::layer::customisation::{Options, build, default_mtime};
use std::path::PathBuf;

/// `customisation-layer DIR OUTDIR [--mtime EPOCH] [--exclude PATTERN]...`
#[derive(clap::Args)]
#[command(
    after_help = "Example (what the Nix customisation layer runs under fakeroot):\n  layered-image customisation-layer old_out $out --mtime \"$SOURCE_DATE_EPOCH\"   # writes $out/layer.tar and $out/checksum"
)]
pub struct Args {
    /// Directory whose contents become the layer (archived as `.`).
    pub dir: PathBuf,
    /// Where to write `layer.tar` and `checksum`.
    pub outdir: PathBuf,
    /// mtime of every member (default: $SOURCE_DATE_EPOCH, else 315532800).
    #[arg(long, allow_negative_numbers = true)]
    pub mtime: Option<i64>,
    /// Leave out members matching PATTERN, like GNU tar's --exclude (e.g. ./proc).
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mtime = match args.mtime {
        Some(m) => m,
        None => default_mtime(std::env::var_os("SOURCE_DATE_EPOCH").as_deref()).map_err(anyhow::Error::msg)?,
    };
    let opts = Options { mtime, exclude: args.exclude };
    build(&args.dir, &args.outdir, &opts).with_context(|| format!("building the customisation layer of {}", args.dir.display()))?;
    Ok(())
}
