//! Progress on stderr: nixpkgs' lines, and on a terminal one overall bar
//! (bytes done of the total, rate, time left) and, while `copy` makes
//! layers, a bar per layer; not on a terminal (a CI log), a line every
//! [`LOG_EVERY`] while bytes flow. stdout never carries any of it.

use layered_image::conf::Conf;
use layered_image::image::Progress;
use layered_image::image::base::BaseImage;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often a log (not a terminal) gets a progress line: often enough to
/// show a long push is alive, rarely enough not to flood it.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// [`LOG_EVERY`], or `$LAYERED_IMAGE_PROGRESS_EVERY` seconds (a CI log that
/// wants more or fewer lines); at least a tenth of a second.
fn log_every() -> Duration {
    let Ok(text) = std::env::var("LAYERED_IMAGE_PROGRESS_EVERY") else { return LOG_EVERY };
    match text.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::from_secs_f64(secs.max(0.1)),
        _ => {
            layered_image::diag::line(&format!(
                "layered-image: warning: $LAYERED_IMAGE_PROGRESS_EVERY={text:?} is not a number of seconds; a line every {}s",
                LOG_EVERY.as_secs()
            ));
            LOG_EVERY
        }
    }
}

pub struct Stderr {
    bars: Option<Bars>,
    log: Option<Log>,
    verb: String,
    /// `--quiet`: no bar, no log lines, no per-layer lines; warnings and
    /// errors still go out.
    quiet: bool,
}

/// Progress for a log: bytes so far, and when the last line was printed.
struct Log {
    start: Instant,
    every: Duration,
    bytes: AtomicU64,
    total: AtomicU64,
    /// Milliseconds since `start` of the last line.
    last: AtomicU64,
}

impl Log {
    fn advance(&self, n: u64, verb: &str) {
        let done = self.bytes.fetch_add(n, Ordering::Relaxed) + n;
        let now = self.start.elapsed().as_millis() as u64;
        let last = self.last.load(Ordering::Relaxed);
        if now.saturating_sub(last) < self.every.as_millis() as u64
            || self.last.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return;
        }
        let rate = done as f64 / (now as f64 / 1000.0).max(0.001);
        let total = self.total.load(Ordering::Relaxed);
        let of = if total > 0 { format!(" of {}", human(total)) } else { String::new() };
        let left = if total > done && rate > 0.0 { format!(", {} left", eta(((total - done) as f64 / rate) as u64)) } else { String::new() };
        layered_image::diag::line(&format!("layered-image: {}{of} {verb} ({}/s{left})", human(done), human(rate as u64)));
    }
}

fn human(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

fn eta(secs: u64) -> String {
    indicatif::HumanDuration(Duration::from_secs(secs)).to_string()
}

/// The image's bytes before the first is read, from metadata: recorded
/// layer lengths, else each store layer's length from its files'
/// metadata; the customisation layer's file; the base layers' members.
/// `None` if a store path cannot be walked (the image will fail on it
/// anyway), or if walking is not `worth` it (nobody watches a bar: the walk
/// costs a tenth of a large stream's time) and a layer's length is not recorded.
pub fn image_total(conf: &Conf, base: Option<&BaseImage>, worth: bool) -> Option<u64> {
    let mut total: u64 = base.map_or(0, |b| b.layers.iter().map(|l| b.source_of(l).member.size()).sum());
    for (paths, known) in conf.store_layers.iter().zip(&conf.store_layer_digests) {
        total += match known {
            Some(d) => d.size,
            None if worth => layered_image::layer::layer_size(paths, &conf.stamp).ok()?,
            None => return None,
        };
    }
    let custom = std::fs::metadata(conf.customisation_layer.1.join("layer.tar")).map(|m| m.len()).unwrap_or(0);
    Some(total + custom)
}

struct Bars {
    multi: indicatif::MultiProgress,
    total: indicatif::ProgressBar,
    layers: Mutex<HashMap<usize, indicatif::ProgressBar>>,
}

impl Stderr {
    /// `verb` says what the byte count counts ("written", "read").
    pub fn new(verb: &str) -> Stderr {
        let terminal = std::io::stderr().is_terminal();
        Stderr {
            quiet: false,
            verb: verb.to_string(),
            log: (!terminal).then(|| Log {
                start: Instant::now(),
                every: log_every(),
                bytes: AtomicU64::new(0),
                total: AtomicU64::new(0),
                last: AtomicU64::new(0),
            }),
            bars: terminal.then(|| {
                let multi = indicatif::MultiProgress::new();
                let total = multi.add(indicatif::ProgressBar::new_spinner());
                let template = format!("{{spinner}} {{bytes}} {verb} ({{bytes_per_sec}})");
                total.set_style(indicatif::ProgressStyle::with_template(&template).expect("static template"));
                total.enable_steady_tick(std::time::Duration::from_millis(120));
                Bars { multi, total, layers: Mutex::new(HashMap::new()) }
            }),
        }
    }

    /// Progress for `--quiet`: nothing but [`Self::warn`].
    pub fn quiet(verb: &str) -> Stderr {
        Stderr { bars: None, log: None, verb: verb.to_string(), quiet: true }
    }

    /// A warning: printed even with `--quiet` (above the bar if one is drawn).
    pub fn warn(&self, text: &str) {
        match &self.bars {
            Some(b) => {
                let _ = b.multi.println(layered_image::diag::escape_controls(text));
            }
            None => layered_image::diag::line(text),
        }
    }

    /// Whether a bar is drawn (stderr is a terminal).
    pub fn is_terminal(&self) -> bool {
        self.bars.is_some()
    }

    /// The bytes the whole run is expected to count: the overall bar shows
    /// how far along it is and the time left.
    pub fn set_total(&self, total: u64) {
        if let Some(b) = &self.bars {
            b.total.set_length(total);
            let template = format!("[{{bar:30}}] {{bytes}}/{{total_bytes}} {} ({{bytes_per_sec}}, {{eta}} left)", self.verb);
            b.total.set_style(indicatif::ProgressStyle::with_template(&template).expect("static template").progress_chars("=> "));
        }
        if let Some(l) = &self.log {
            l.total.store(total, Ordering::Relaxed);
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
        // Warnings the library words as such go out even with --quiet.
        if !self.quiet || text.starts_with("layered-image: warning:") {
            self.warn(text);
        }
    }
    fn advance(&self, bytes: u64) {
        if let Some(b) = &self.bars {
            b.total.inc(bytes);
        }
        if let Some(l) = &self.log {
            l.advance(bytes, &self.verb);
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
        if let Some(b) = &self.bars {
            if let Some(bar) = b.layers.lock().unwrap_or_else(|p| p.into_inner()).get(&index) {
                bar.inc(bytes);
            }
        }
    }
    fn layer_finished(&self, index: usize) {
        if let Some(b) = &self.bars {
            if let Some(bar) = b.layers.lock().unwrap_or_else(|p| p.into_inner()).remove(&index) {
                bar.finish_and_clear();
            }
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
