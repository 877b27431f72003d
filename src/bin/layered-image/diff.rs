use crate::args::BlobArgs;
use crate::explain::{finish, load};
use layered_image::explain;
use std::path::PathBuf;

/// `diff A B [--json] [--html FILE] [--fail-over BYTES]`
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    layered-image diff old/conf.json new/conf.json\n  \
    layered-image diff old/conf.json new/conf.json --json | jq .upload_bytes\n  \
    layered-image diff oci-archive:released.tar new/conf.json   # what a release after this one uploads\n  \
    layered-image diff old/conf.json new/conf.json --fail-over 50000000   # CI: exit 3 if a push would upload more")]
pub struct Args {
    /// The earlier image (what the registry holds): its conf.json, or an image as
    /// `copy` reads them (oci:DIR[:REF], oci-archive:PATH[:REF], docker-archive:PATH).
    #[arg(value_name = "A")]
    pub a: PathBuf,
    /// The later image (what is pushed): a conf.json or an image, as A.
    #[arg(value_name = "B")]
    pub b: PathBuf,
    // The HTML page shows B's treemap, the changes highlighted.
    #[command(flatten)]
    pub report: crate::args::ReportArgs,
    /// Exit with status 3 when a push of B to a registry holding A would upload more than BYTES (compressed).
    #[arg(long, value_name = "BYTES")]
    pub fail_over: Option<u64>,
    #[command(flatten)]
    pub blobs: BlobArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cancel = crate::progress::cancel_on_signals()?;
    let (_, a) = load(&args.a, None, &args.blobs, &cancel)?;
    let (input_b, b) = load(&args.b, None, &args.blobs, &cancel)?;
    let jobs = args.blobs.jobs();
    let d = explain::diff::diff(a, b, input_b.input(), jobs, &cancel)?;
    let text = if args.report.json {
        let mut v = serde_json::to_vec_pretty(&explain::diff::json(&d))?;
        v.push(b'\n');
        v
    } else {
        explain::diff::text(&d).into_bytes()
    };
    let up = d.upload_bytes();
    let over = args
        .fail_over
        .filter(|&max| up > max)
        .map(|max| format!("a push of {} after {} uploads {up} bytes, over --fail-over {max}", args.b.display(), args.a.display()));
    finish(&text, args.report.html.as_deref().map(|f| (f, explain::html::diff_page(&d))), over)
}
