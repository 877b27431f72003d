//! Flags several commands share, so that they read and behave alike.

use layered_image::blob::compress::Compression;
use std::path::PathBuf;

/// Compression and threads: which blobs' digests or sizes are wanted.
#[derive(clap::Args)]
pub struct BlobArgs {
    /// Compression of the blobs (as `copy --compress`): gzip, zstd or none.
    #[arg(long, default_value = "gzip", value_name = "none|gzip|zstd")]
    pub compress: String,
    /// Compression level: gzip 1-9 (libdeflate; default 2), zstd 1-19 (default 3).
    #[arg(long, value_name = "N")]
    pub compress_level: Option<i64>,
    /// Threads (default: all cores). Never changes a byte.
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
}

impl BlobArgs {
    pub fn compression(&self) -> anyhow::Result<Compression> {
        Ok(Compression::parse(&self.compress, self.compress_level)?)
    }

    pub fn jobs(&self) -> usize {
        self.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |c| c.get())).max(1)
    }
}

/// How a report is given: text or JSON on stdout, and an HTML page.
#[derive(clap::Args)]
pub struct ReportArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also write a self-contained HTML page (treemap and table) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}
