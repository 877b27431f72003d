use layered_image::verify::{Target, verify_until};
use std::io::Write;

/// `verify IMAGE`
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  layered-image verify image.tar\n  layered-image verify oci:./out:latest\n  layered-image verify oci-archive:image.tar"
)]
pub struct Args {
    /// docker-archive:PATH[:REF], oci:DIR[:REF], oci-archive:PATH[:REF], dir:DIR,
    /// or a path (an OCI layout directory, a dir: directory, an oci-archive or
    /// a docker-archive). Unknown media types in an index are skipped with a
    /// note on stderr; artifacts are checked blob by blob.
    pub image: String,
}

/// Prints one summary line; the first discrepancy is the error.
pub fn run(args: Args) -> anyhow::Result<()> {
    // As copy: a signal stops the reading, and the spool of a compressed
    // archive goes with it.
    let cancel = crate::progress::cancel_on_signals()?;
    let target = Target::parse(&args.image)?;
    let summary = verify_until(&target, &cancel)?;
    for note in &summary.notes {
        eprintln!("layered-image: note: {note}");
    }
    layered_image::verify::shadow::warnings_until(&target, &cancel)?
        .iter()
        .for_each(|w| layered_image::diag::line(&format!("layered-image: warning: {w}")));
    // Best effort: the exit status, not this line, says whether the image is good.
    let _ = writeln!(std::io::stdout(), "{summary}");
    Ok(())
}
