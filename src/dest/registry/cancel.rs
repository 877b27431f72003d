//! Ctrl-C reaches blocked I/O: a watcher shuts the agent's sockets down
//! once the cancel flag is set, so a request blocked on a silent registry
//! (or on one that stopped reading a body) fails at once instead of at
//! its timeout; waits between attempts end as well.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often the flag is looked at: well under the second a user waits.
const TICK: Duration = Duration::from_millis(50);

/// The watcher of one agent; dropping it ends the thread.
pub(super) struct Watch {
    _alive: crossbeam_channel::Sender<()>,
}

impl Watch {
    pub(super) fn start(cancel: Arc<AtomicBool>, agent: ureq::Agent) -> Watch {
        let (alive, rx) = crossbeam_channel::bounded::<()>(0);
        std::thread::spawn(move || {
            loop {
                match rx.recv_timeout(TICK) {
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) if cancel.load(Ordering::Relaxed) => {
                        // Interrupts every connection in use and refuses new ones.
                        agent.shutdown();
                        return;
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            }
        });
        Watch { _alive: alive }
    }
}

/// Sleeps `d` unless cancelled first; false when cancelled.
pub(super) fn pause(cancel: &AtomicBool, d: Duration) -> bool {
    let end = Instant::now() + d;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep(TICK.min(end - now));
    }
}
