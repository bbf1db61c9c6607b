//! [`RejectionLog`]: every message a peer sent that validation rejected, logged so that a
//! hostile or broken peer cannot flood the log.
//!
//! The first rejection from a peer is logged at once (WARN, with the peer, what and why).
//! Further rejections from it within [`REJECTION_LOG_INTERVAL`] are only counted; the next
//! one after the interval first logs one line with the count and the last reason, then starts
//! a new interval, and [`RejectionLog::forget`] (the peer disconnected) logs what is still
//! counted. So a peer costs at most two lines per interval, however much it sends. The log
//! tracks at most [`MAX_TRACKED_PEERS`] peers; past that, peers whose interval has ended are
//! dropped first. Ignored messages (Ignore verdicts) are not rejections and stay at DEBUG.
//!
//! Data enters from validation (the node loop, the submission fetcher) as
//! `(peer, what, error)`; it leaves only as log lines.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use tracing::warn;

/// How long further rejections from one peer are counted before they are logged.
pub const REJECTION_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Most peers whose rejections are counted at once.
pub const MAX_TRACKED_PEERS: usize = 4096;

/// Per-peer rejection counts (see the module docs).
#[derive(Debug, Default)]
pub struct RejectionLog {
    peers: Mutex<HashMap<PeerId, Window>>,
}

/// One peer's current interval.
#[derive(Debug)]
struct Window {
    start: Instant,
    /// Rejections counted and not yet logged.
    counted: u64,
    /// The last counted rejection, "what: why".
    last: String,
}

/// What to log for one rejection.
#[derive(Debug, PartialEq, Eq)]
enum Note {
    /// Log it: the first of an interval.
    Log,
    /// Log the count of the interval that ended, then this one.
    Summary { counted: u64, last: String, secs: u64 },
    /// Count it only.
    Counted,
}

impl RejectionLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `peer` sent a `what` (e.g. "block") that validation rejected with
    /// `error`, and logs it as the module docs say.
    pub fn reject(&self, peer: PeerId, what: &str, error: &dyn Display) {
        match self.note(peer, Instant::now(), || format!("{what}: {error}")) {
            Note::Log => warn!(%peer, %error, "rejected {what} (the peer sent an invalid message)"),
            Note::Summary { counted, last, secs } => {
                warn!(%peer, count = counted, last = %last, "rejected {counted} more messages from this peer in {secs} s");
                warn!(%peer, %error, "rejected {what} (the peer sent an invalid message)");
            }
            Note::Counted => {}
        }
    }

    /// The peer is gone: logs what is still counted for it and forgets it.
    pub fn forget(&self, peer: &PeerId) {
        let gone = self.peers.lock().unwrap_or_else(|p| p.into_inner()).remove(peer);
        if let Some(w) = gone
            && w.counted > 0
        {
            let secs = w.start.elapsed().as_secs();
            warn!(%peer, count = w.counted, last = %w.last, "rejected {} more messages from this peer in {secs} s before it disconnected", w.counted);
        }
    }

    fn note(&self, peer: PeerId, now: Instant, describe: impl FnOnce() -> String) -> Note {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = peers.get_mut(&peer) {
            let elapsed = now.saturating_duration_since(w.start);
            if elapsed < REJECTION_LOG_INTERVAL {
                w.counted += 1;
                w.last = describe();
                return Note::Counted;
            }
            let ended = std::mem::replace(w, Window { start: now, counted: 0, last: String::new() });
            return if ended.counted > 0 {
                Note::Summary { counted: ended.counted, last: ended.last, secs: elapsed.as_secs() }
            } else {
                Note::Log
            };
        }
        if peers.len() >= MAX_TRACKED_PEERS {
            peers.retain(|_, w| now.saturating_duration_since(w.start) < REJECTION_LOG_INTERVAL);
            if peers.len() >= MAX_TRACKED_PEERS {
                peers.clear();
            }
        }
        peers.insert(peer, Window { start: now, counted: 0, last: String::new() });
        Note::Log
    }

    /// Peers tracked now.
    pub fn tracked(&self) -> usize {
        self.peers.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_costs_a_line_per_interval() {
        let log = RejectionLog::new();
        let (a, b) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        let why = |i: u32| move || format!("block: bad #{i}");
        assert_eq!(log.note(a, t0, why(0)), Note::Log);
        for i in 1..=400 {
            assert_eq!(log.note(a, t0 + Duration::from_millis(u64::from(i)), why(i)), Note::Counted);
        }
        // Another peer is logged on its own.
        assert_eq!(log.note(b, t0, why(0)), Note::Log);
        let later = t0 + REJECTION_LOG_INTERVAL + Duration::from_secs(1);
        assert_eq!(
            log.note(a, later, why(401)),
            Note::Summary { counted: 400, last: "block: bad #400".into(), secs: 11 }
        );
        assert_eq!(log.note(a, later + Duration::from_secs(1), why(402)), Note::Counted);
        // A quiet interval starts over with a plain line.
        assert_eq!(log.note(b, later, why(1)), Note::Log);
        log.forget(&a);
        assert_eq!(log.tracked(), 1);
    }

    #[test]
    fn tracking_is_bounded() {
        let log = RejectionLog::new();
        let t0 = Instant::now();
        for _ in 0..MAX_TRACKED_PEERS + 10 {
            log.note(PeerId::random(), t0, String::new);
        }
        assert!(log.tracked() <= MAX_TRACKED_PEERS);
    }
}
