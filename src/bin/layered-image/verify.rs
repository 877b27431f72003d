use layered_image::verify::{Target, verify};
use std::io::Write;

/// `verify IMAGE`
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  layered-image verify image.tar\n  layered-image verify oci:./out:latest\n  layered-image verify oci-archive:image.tar"
)]
pub struct Args {
    /// docker-archive:PATH[:REF], oci:DIR[:REF], oci-archive:PATH[:REF], or a
    /// path (an OCI layout directory, an oci-archive or a docker-archive).
    pub image: String,
}

/// Prints one summary line; the first discrepancy is the error.
pub fn run(args: Args) -> anyhow::Result<()> {
    let target = Target::parse(&args.image)?;
    let summary = verify(&target)?;
    layered_image::verify::shadow::warnings(&target)?.iter().for_each(|w| layered_image::diag::line(&format!("layered-image: warning: {w}")));
    // Best effort: the exit status, not this line, says whether the image is good.
    let _ = writeln!(std::io::stdout(), "{summary}");
    Ok(())
}
