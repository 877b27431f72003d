//! Progress on stderr: nixpkgs' lines, and on a terminal a live byte count
//! and, while `copy` makes layers, a bar per layer. stdout never carries
//! any of it.

use layered_image::image::Progress;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

pub struct Stderr {
    bars: Option<Bars>,
}

struct Bars {
    multi: indicatif::MultiProgress,
    total: indicatif::ProgressBar,
    layers: Mutex<HashMap<usize, indicatif::ProgressBar>>,
}

impl Stderr {
    /// `verb` says what the byte count counts ("written", "read").
    pub fn new(verb: &str) -> Stderr {
        Stderr {
            bars: std::io::stderr().is_terminal().then(|| {
                let multi = indicatif::MultiProgress::new();
                let total = multi.add(indicatif::ProgressBar::new_spinner());
                let template = format!("{{spinner}} {{bytes}} {verb} ({{bytes_per_sec}})");
                total.set_style(indicatif::ProgressStyle::with_template(&template).expect("static template"));
                total.enable_steady_tick(std::time::Duration::from_millis(120));
                Bars { multi, total, layers: Mutex::new(HashMap::new()) }
            }),
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bars {
            for (_, bar) in b.layers.lock().unwrap_or_else(|p| p.into_inner()).drain() {
                bar.finish_and_clear();
            }
            b.total.finish_and_clear();
        }
    }
}

impl Progress for Stderr {
    fn line(&self, text: &str) {
        // Names from the inputs (base layer members, store paths) are
        // escaped; a closed or full stderr never stops the image.
        match &self.bars {
            Some(b) => {
                let _ = b.multi.println(layered_image::diag::escape_controls(text));
            }
            None => layered_image::diag::line(text),
        }
    }
    fn advance(&self, bytes: u64) {
        if let Some(b) = &self.bars {
            b.total.inc(bytes);
        }
    }
    fn layer_started(&self, index: usize, size: Option<u64>) {
        let Some(b) = &self.bars else { return };
        let bar = match size {
            Some(n) => {
                let bar = b.multi.add(indicatif::ProgressBar::new(n));
                let style = indicatif::ProgressStyle::with_template("  layer {prefix:>3} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec})");
                bar.set_style(style.expect("static template").progress_chars("=> "));
                bar
            }
            None => {
                let bar = b.multi.add(indicatif::ProgressBar::new_spinner());
                bar.set_style(
                    indicatif::ProgressStyle::with_template("  layer {prefix:>3} {spinner} {bytes} ({bytes_per_sec})").expect("static template"),
                );
                bar
            }
        };
        bar.set_prefix(index.to_string());
        b.layers.lock().unwrap_or_else(|p| p.into_inner()).insert(index, bar);
    }
    fn layer_advance(&self, index: usize, bytes: u64) {
        if let Some(b) = &self.bars
            && let Some(bar) = b.layers.lock().unwrap_or_else(|p| p.into_inner()).get(&index)
        {
            bar.inc(bytes);
        }
    }
    fn layer_finished(&self, index: usize) {
        if let Some(b) = &self.bars
            && let Some(bar) = b.layers.lock().unwrap_or_else(|p| p.into_inner()).remove(&index)
        {
            bar.finish_and_clear();
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
