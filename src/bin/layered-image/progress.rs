//! Progress on stderr: nixpkgs' lines, and a live byte count when stderr
//! is a terminal. stdout never carries any of it.

use layered_image::stream::Progress;
use std::io::IsTerminal;

pub struct Stderr {
    pub bar: Option<indicatif::ProgressBar>,
}

impl Stderr {
    /// `verb` says what the byte count counts ("written", "read").
    pub fn new(verb: &str) -> Stderr {
        Stderr {
            bar: std::io::stderr().is_terminal().then(|| {
                let bar = indicatif::ProgressBar::new_spinner();
                let template = format!("{{spinner}} {{bytes}} {verb} ({{bytes_per_sec}})");
                bar.set_style(indicatif::ProgressStyle::with_template(&template).expect("static template"));
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                bar
            }),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress for Stderr {
    fn line(&self, text: &str) {
        match &self.bar {
            // Names from the inputs (base layer members, store paths) are
            // escaped; a failing stderr never stops the image.
            Some(bar) => bar.println(layered_image::diag::escape_controls(text)),
            None => layered_image::diag::line(text),
        }
    }
    fn advance(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }
}

/// SIGINT, SIGTERM and SIGHUP set the returned flag: the work in hand
/// stops cleanly and leaves nothing that looks complete.
pub fn cancel_on_signals() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    use anyhow::Context;
    let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        signal_hook::flag::register(sig, std::sync::Arc::clone(&cancel)).context("cannot install signal handlers")?;
    }
    Ok(cancel)
}
