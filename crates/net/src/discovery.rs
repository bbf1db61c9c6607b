//! Finding peers: Kademlia under the chain's own protocol, mDNS on a LAN, and the policy that
//! keeps the node between `target_peers` and `max_peers` connections.
//!
//! Addresses enter from three places: identify (a connected peer's listen addresses, added to
//! the routing table when the peer speaks this chain's Kademlia protocol), Kademlia itself
//! (peers found by random walks, [`Behaviour::get_closest_peers`] of a random key, and the
//! routing table's own updates) and mDNS when it is on. The bootnodes are only the first
//! entries: once a node knows any reachable peer it learns the rest of the network from it.
//!
//! On every [`DISCOVERY_INTERVAL`] tick, and whenever a new peer enters the routing table, a
//! node below `target_peers` dials routing-table peers it is not connected to (not banned, not
//! being dialled, not failed within [`DIAL_BACKOFF`]) until connections plus dials in progress
//! reach the target; if the table holds too few, it starts a random walk (at most one at a
//! time). Above the target it dials nothing and only accepts inbound connections, up to
//! `max_peers` (enforced by the connection limits, see `limits`). So that a newcomer always
//! finds a way in, a node holding more than `max_peers − PRUNE_HEADROOM` connections closes
//! the excess on the next tick: peers outside its gossip mesh first, inbound before
//! outbound, the lowest score first ([`prune_order`]). What leaves is a list of peers to dial
//! or drop and the walks to start, which the event loop carries out.
//!
//! [`Behaviour::get_closest_peers`]: libp2p::kad::Behaviour::get_closest_peers

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId, StreamProtocol, kad, multiaddr::Protocol};

use crate::NetError;

/// How often the node checks whether it needs more peers.
pub const DISCOVERY_INTERVAL: Duration = Duration::from_secs(2);
/// How long a peer whose dial failed is not dialled again by discovery.
pub const DIAL_BACKOFF: Duration = Duration::from_secs(30);
/// Least time between the starts of two random walks.
pub const WALK_INTERVAL: Duration = Duration::from_secs(5);
/// Longest a Kademlia query runs.
pub const KAD_QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Connection slots a full node keeps free for newcomers by closing excess connections (when
/// `max_peers` leaves room for it above `target_peers`).
pub const PRUNE_HEADROOM: usize = 4;
/// Most peers whose failed dials are remembered for the backoff.
const MAX_BACKOFFS: usize = 4096;

/// The Kademlia behaviour of a node of `chain_id`: server mode (every learnchain node
/// answers queries; nodes of a compose network or a devnet have no confirmed external
/// address, which kad's automatic mode would wait for), records and provider records never
/// stored (peer routing is all this network uses it for), queries bounded in time.
pub(crate) fn kademlia(
    local: PeerId,
    chain_id: &learnchain_proto::Hash32,
) -> Result<kad::Behaviour<kad::store::MemoryStore>, NetError> {
    let protocol = StreamProtocol::try_from_owned(learnchain_proto::topics::kad_protocol(chain_id))
        .map_err(|e| NetError::Config(format!("kademlia protocol name: {e}")))?;
    let mut config = kad::Config::new(protocol);
    config.set_query_timeout(KAD_QUERY_TIMEOUT);
    config.set_record_filtering(kad::StoreInserts::FilterBoth);
    let store = kad::store::MemoryStore::with_config(
        local,
        kad::store::MemoryStoreConfig {
            max_records: 0,
            max_value_bytes: 0,
            max_providers_per_key: 0,
            max_provided_keys: 0,
        },
    );
    let mut kad = kad::Behaviour::with_config(local, store, config);
    kad.set_mode(Some(kad::Mode::Server));
    Ok(kad)
}

/// Whether `addr` is worth putting in the routing table: a TCP address on a concrete IP or
/// a DNS name (not the unspecified `0.0.0.0` / `::` a node may listen on).
pub(crate) fn dialable(addr: &Multiaddr) -> bool {
    let mut parts = addr.iter();
    let host = match parts.next() {
        Some(Protocol::Ip4(ip)) => !ip.is_unspecified(),
        Some(Protocol::Ip6(ip)) => !ip.is_unspecified(),
        Some(Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_)) => true,
        _ => false,
    };
    host && matches!(parts.next(), Some(Protocol::Tcp(port)) if port != 0)
}

/// The dialling policy's state (see the module docs).
#[derive(Debug)]
pub(crate) struct Discovery {
    /// Connections the node dials toward.
    pub(crate) target_peers: usize,
    /// Most connections.
    max_peers: usize,
    /// Peers dialled by discovery and not yet connected or failed.
    dialing: HashMap<PeerId, Instant>,
    /// Peers whose dial failed, until when they are not dialled again.
    backoff: HashMap<PeerId, Instant>,
    /// The random walk in progress, if any.
    walk: Option<kad::QueryId>,
    /// When the last random walk started.
    last_walk: Option<Instant>,
}

impl Discovery {
    /// A policy dialling toward `target_peers` connections, holding at most `max_peers`.
    pub(crate) fn new(target_peers: usize, max_peers: usize) -> Self {
        Discovery {
            target_peers,
            max_peers,
            dialing: HashMap::new(),
            backoff: HashMap::new(),
            walk: None,
            last_walk: None,
        }
    }

    /// How many more peers to dial now, with `connected` peers.
    pub(crate) fn wanted(&mut self, connected: usize, now: Instant) -> usize {
        // A dial that has produced neither a connection nor an error in a minute is not
        // counted any more.
        self.dialing.retain(|_, since| now.saturating_duration_since(*since) < Duration::from_secs(60));
        self.target_peers.saturating_sub(connected + self.dialing.len())
    }

    /// Whether `peer` may be dialled by discovery at `now`.
    pub(crate) fn may_dial(&self, peer: &PeerId, now: Instant) -> bool {
        !self.dialing.contains_key(peer) && self.backoff.get(peer).is_none_or(|until| *until <= now)
    }

    /// Discovery dials `peer`.
    pub(crate) fn dialed(&mut self, peer: PeerId, now: Instant) {
        self.dialing.insert(peer, now);
    }

    /// A connection to `peer` was established.
    pub(crate) fn connected(&mut self, peer: &PeerId) {
        self.dialing.remove(peer);
        self.backoff.remove(peer);
    }

    /// A dial to `peer` failed at `now`.
    pub(crate) fn dial_failed(&mut self, peer: PeerId, now: Instant) {
        if self.dialing.remove(&peer).is_none() {
            return;
        }
        if self.backoff.len() >= MAX_BACKOFFS {
            self.backoff.retain(|_, until| *until > now);
        }
        if self.backoff.len() < MAX_BACKOFFS {
            self.backoff.insert(peer, now + DIAL_BACKOFF);
        }
    }

    /// How many connections to close with `connected` peers.
    pub(crate) fn excess(&self, connected: usize) -> usize {
        let keep = self.max_peers.saturating_sub(PRUNE_HEADROOM).max(self.target_peers);
        connected.saturating_sub(keep)
    }

    /// Whether a random walk may start at `now`: none is running and the last one started
    /// at least [`WALK_INTERVAL`] ago (a walk in a network smaller than the target ends at
    /// once and would otherwise start again at once).
    pub(crate) fn may_walk(&self, now: Instant) -> bool {
        self.walk.is_none() && self.last_walk.is_none_or(|t| now.saturating_duration_since(t) >= WALK_INTERVAL)
    }

    /// A random walk started at `now`.
    pub(crate) fn walking(&mut self, id: kad::QueryId, now: Instant) {
        self.walk = Some(id);
        self.last_walk = Some(now);
    }

    /// Query `id` finished.
    pub(crate) fn query_done(&mut self, id: kad::QueryId) {
        if self.walk == Some(id) {
            self.walk = None;
        }
    }
}

/// What a candidate for pruning looks like to [`prune_order`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct PruneCandidate {
    pub(crate) peer: PeerId,
    pub(crate) in_mesh: bool,
    pub(crate) inbound: bool,
    pub(crate) score: f64,
}

/// Sorts `peers` so that the first ones are those to close first: outside the gossip mesh,
/// then inbound, then the lowest score (ties by peer id, so the order is stable).
pub(crate) fn prune_order(peers: &mut [PruneCandidate]) {
    peers.sort_by(|a, b| {
        a.in_mesh
            .cmp(&b.in_mesh)
            .then(b.inbound.cmp(&a.inbound))
            .then(a.score.total_cmp(&b.score))
            .then(a.peer.cmp(&b.peer))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dials_toward_the_target_and_backs_off_after_failures() {
        let mut d = Discovery::new(8, 32);
        let t = Instant::now();
        assert_eq!(d.wanted(3, t), 5);
        let p = PeerId::random();
        assert!(d.may_dial(&p, t));
        d.dialed(p, t);
        assert!(!d.may_dial(&p, t), "already being dialled");
        assert_eq!(d.wanted(3, t), 4);
        d.dial_failed(p, t);
        assert!(!d.may_dial(&p, t + DIAL_BACKOFF / 2));
        assert!(d.may_dial(&p, t + DIAL_BACKOFF));
        assert_eq!(d.wanted(9, t), 0, "above the target nothing is dialled");
        // A dial that never ends stops counting after a minute.
        d.dialed(p, t);
        assert_eq!(d.wanted(0, t + Duration::from_secs(61)), 8);
    }

    #[test]
    fn random_walks_are_spaced() {
        let mut d = Discovery::new(8, 32);
        let t = Instant::now();
        assert!(d.may_walk(t));
        // A query id can only come from a kad behaviour: make one.
        let local = PeerId::random();
        let mut kad = kad::Behaviour::new(local, kad::store::MemoryStore::new(local));
        let id = kad.get_closest_peers(PeerId::random());
        d.walking(id, t);
        assert!(!d.may_walk(t), "one at a time");
        d.query_done(id);
        assert!(!d.may_walk(t + WALK_INTERVAL / 2), "not again at once");
        assert!(d.may_walk(t + WALK_INTERVAL));
    }

    #[test]
    fn excess_connections_leave_room_for_newcomers() {
        let d = Discovery::new(8, 32);
        assert_eq!(d.excess(28), 0);
        assert_eq!(d.excess(31), 3);
        // A max so close to the target that no headroom fits: keep the target.
        let d = Discovery::new(30, 32);
        assert_eq!(d.excess(32), 2);
        let c = |in_mesh, inbound, score, n: u8| PruneCandidate {
            peer: PeerId::from_bytes(&[0, 2, 0, n]).unwrap_or_else(|_| PeerId::random()),
            in_mesh,
            inbound,
            score,
        };
        let mut peers = vec![c(true, true, -5.0, 1), c(false, false, 0.0, 2), c(false, true, 0.0, 3), c(false, true, -1.0, 4)];
        prune_order(&mut peers);
        let order: Vec<(bool, bool, f64)> = peers.iter().map(|p| (p.in_mesh, p.inbound, p.score)).collect();
        assert_eq!(order, [(false, true, -1.0), (false, true, 0.0), (false, false, 0.0), (true, true, -5.0)]);
    }

    #[test]
    fn only_concrete_tcp_addresses_are_routable() {
        let ok = ["/ip4/10.0.0.1/tcp/30333", "/dns4/bootnode/tcp/30333", "/ip6/::1/tcp/1/p2p/12D3KooWLRPJAA5o6fuK9zbr8ioJBJCFkLJ8V3WaZEXYK8ovzSJn"];
        let bad = ["/ip4/0.0.0.0/tcp/30333", "/ip4/10.0.0.1/udp/1", "/ip4/10.0.0.1/tcp/0", "/ip6/::/tcp/1"];
        for a in ok {
            assert!(dialable(&a.parse().expect("addr")), "{a}");
        }
        for a in bad {
            assert!(!dialable(&a.parse().expect("addr")), "{a}");
        }
    }
}
