//! What one peer may make this node do or hold: connection limits and the per-peer sync
//! request budget.
//!
//! Connection limits are enforced by libp2p's `connection_limits` behaviour, built from
//! [`connection_limits`]: at most `max_peers` established connections in all, two per peer
//! (a simultaneous dial in both directions), and [`MAX_PENDING_INCOMING`] /
//! [`MAX_PENDING_OUTGOING`] handshakes in progress.
//!
//! Inbound sync requests enter [`SyncBudget::admit`] before they reach the node. Each peer
//! has a token bucket of [`SYNC_REQUEST_BURST`] requests refilled at
//! [`SYNC_REQUESTS_PER_SECOND`], and at most [`MAX_INBOUND_SYNC_PER_PEER`] requests being
//! served at once. A request over either limit is answered at once with
//! `SyncResponse::Refused` naming the limit, and one over the rate also costs the peer
//! [`Offence::RateLimited`](crate::Offence). The node's own clients (a sync walks one request
//! at a time; fetches are one per announced block or pool) stay far below both. A peer's
//! bucket outlives its connection, so reconnecting does not refill it; at most
//! [`MAX_BUDGETS`] peers are tracked (buckets that have refilled completely go first).

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::time::Instant;

use libp2p::{PeerId, connection_limits::ConnectionLimits, request_response::InboundRequestId};

/// Most incoming connections in their handshake at once.
pub const MAX_PENDING_INCOMING: u32 = 128;
/// Most outgoing dials in progress at once.
pub const MAX_PENDING_OUTGOING: u32 = 32;
/// Most connections to one peer (one each way when both dial at once).
pub const MAX_CONNECTIONS_PER_PEER: u32 = 2;
/// Sync requests a peer may send in a burst.
pub const SYNC_REQUEST_BURST: f64 = 64.0;
/// Sync requests per second a peer may send, sustained.
pub const SYNC_REQUESTS_PER_SECOND: f64 = 32.0;
/// Sync requests of one peer being served at once.
pub const MAX_INBOUND_SYNC_PER_PEER: usize = 8;
/// Most peers whose sync budget is tracked.
pub const MAX_BUDGETS: usize = 4096;

/// The swarm's connection limits for a node keeping at most `max_peers` peers.
pub(crate) fn connection_limits(max_peers: u32) -> ConnectionLimits {
    ConnectionLimits::default()
        .with_max_pending_incoming(Some(MAX_PENDING_INCOMING))
        .with_max_pending_outgoing(Some(MAX_PENDING_OUTGOING))
        .with_max_established(Some(max_peers.saturating_mul(MAX_CONNECTIONS_PER_PEER).max(1)))
        .with_max_established_incoming(Some(max_peers.max(1)))
        .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
}

/// Whether an inbound sync request may be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Serve it.
    Serve,
    /// Over the rate: refuse and penalize.
    OverRate,
    /// Too many of the peer's requests are being served: refuse.
    Busy,
}

impl Admission {
    /// The refusal sent to the peer.
    pub(crate) fn refusal(self) -> Option<String> {
        match self {
            Admission::Serve => None,
            Admission::OverRate => Some(format!(
                "rate limited: at most {SYNC_REQUESTS_PER_SECOND} sync requests per second per peer, in bursts of {SYNC_REQUEST_BURST}"
            )),
            Admission::Busy => {
                Some(format!("busy: at most {MAX_INBOUND_SYNC_PER_PEER} sync requests per peer are served at once"))
            }
        }
    }
}

/// One peer's sync budget.
#[derive(Debug)]
struct Bucket<I> {
    tokens: f64,
    at: Instant,
    serving: HashSet<I>,
}

/// Per-peer sync request budgets (see the module docs), keyed by request ids of type `I`.
#[derive(Debug)]
pub(crate) struct SyncBudget<I = InboundRequestId> {
    peers: HashMap<PeerId, Bucket<I>>,
}

impl<I> Default for SyncBudget<I> {
    fn default() -> Self {
        SyncBudget { peers: HashMap::new() }
    }
}

impl<I: Hash + Eq> SyncBudget<I> {
    /// Decides on request `id` from `peer` at `now`; an admitted request counts as being
    /// served until [`SyncBudget::done`].
    pub(crate) fn admit(&mut self, peer: PeerId, id: I, now: Instant) -> Admission {
        if !self.peers.contains_key(&peer) && self.peers.len() >= MAX_BUDGETS {
            self.make_room(now);
        }
        let bucket = self
            .peers
            .entry(peer)
            .or_insert(Bucket { tokens: SYNC_REQUEST_BURST, at: now, serving: HashSet::new() });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * SYNC_REQUESTS_PER_SECOND;
        bucket.tokens = (bucket.tokens + refill).min(SYNC_REQUEST_BURST);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            return Admission::OverRate;
        }
        bucket.tokens -= 1.0;
        if bucket.serving.len() >= MAX_INBOUND_SYNC_PER_PEER {
            return Admission::Busy;
        }
        bucket.serving.insert(id);
        Admission::Serve
    }

    /// Request `id` of `peer` was answered or failed.
    pub(crate) fn done(&mut self, peer: &PeerId, id: &I) {
        if let Some(bucket) = self.peers.get_mut(peer) {
            bucket.serving.remove(id);
        }
    }

    /// `peer` disconnected: nothing of it is being served any more (its bucket stays).
    pub(crate) fn disconnected(&mut self, peer: &PeerId) {
        if let Some(bucket) = self.peers.get_mut(peer) {
            bucket.serving.clear();
        }
    }

    /// Drops the buckets a new peer would get anyway (full, nothing being served), and if
    /// none is, the fullest one.
    fn make_room(&mut self, now: Instant) {
        let full = |b: &Bucket<I>| {
            b.serving.is_empty()
                && b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * SYNC_REQUESTS_PER_SECOND
                    >= SYNC_REQUEST_BURST
        };
        self.peers.retain(|_, b| !full(b));
        if self.peers.len() >= MAX_BUDGETS {
            let fullest = self
                .peers
                .iter()
                .max_by(|a, b| a.1.tokens.total_cmp(&b.1.tokens))
                .map(|(p, _)| *p);
            if let Some(p) = fullest {
                self.peers.remove(&p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let mut budget = SyncBudget::<u64>::default();
        let p = PeerId::random();
        let t0 = Instant::now();
        let mut id = 0u64;
        let mut next = || {
            id += 1;
            id
        };
        for _ in 0..SYNC_REQUEST_BURST as usize {
            let i = next();
            assert_eq!(budget.admit(p, i, t0), Admission::Serve);
            budget.done(&p, &i);
        }
        assert_eq!(budget.admit(p, next(), t0), Admission::OverRate);
        // A second later the bucket holds a second's worth again.
        let t1 = t0 + Duration::from_secs(1);
        let served = (0..100)
            .filter(|_| {
                let i = next();
                let ok = budget.admit(p, i, t1) == Admission::Serve;
                budget.done(&p, &i);
                ok
            })
            .count();
        assert_eq!(served, SYNC_REQUESTS_PER_SECOND as usize);
        // Another peer has its own budget.
        assert_eq!(budget.admit(PeerId::random(), next(), t1), Admission::Serve);
        assert!(Admission::OverRate.refusal().is_some_and(|r| r.contains("rate limited")));
    }

    #[test]
    fn at_most_a_few_requests_are_served_at_once() {
        let mut budget = SyncBudget::<u64>::default();
        let p = PeerId::random();
        let t = Instant::now();
        for i in 0..MAX_INBOUND_SYNC_PER_PEER as u64 {
            assert_eq!(budget.admit(p, i, t), Admission::Serve);
        }
        assert_eq!(budget.admit(p, 100, t), Admission::Busy);
        budget.done(&p, &0);
        assert_eq!(budget.admit(p, 101, t), Admission::Serve);
        budget.disconnected(&p);
        assert_eq!(budget.admit(p, 102, t), Admission::Serve);
    }

    #[test]
    fn reconnecting_does_not_refill_the_bucket() {
        let mut budget = SyncBudget::<u64>::default();
        let p = PeerId::random();
        let t = Instant::now();
        for i in 0..SYNC_REQUEST_BURST as u64 {
            budget.admit(p, i, t);
            budget.done(&p, &i);
        }
        budget.disconnected(&p);
        assert_eq!(budget.admit(p, 1000, t), Admission::OverRate);
    }

    #[test]
    fn memory_is_bounded() {
        let mut budget = SyncBudget::<u64>::default();
        let t = Instant::now();
        for i in 0..MAX_BUDGETS as u64 + 10 {
            budget.admit(PeerId::random(), i, t);
        }
        assert!(budget.peers.len() <= MAX_BUDGETS);
    }
}
