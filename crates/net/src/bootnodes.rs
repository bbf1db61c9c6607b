//! Which bootnodes to dial, and when.
//!
//! The configured bootnode addresses enter at start-up; the event loop asks [`Bootnodes::due`]
//! on every redial tick which of them to dial and reports back which connection each dial
//! became ([`Bootnodes::dialing`]) and how it ended ([`Bootnodes::on_established`],
//! [`Bootnodes::on_dial_failed`]). A bootnode is dialled again whenever it is neither
//! connected nor being dialled, so a cluster whose containers start in any order converges.
//!
//! An address may carry a `/p2p/<peer id>` suffix or not. Without one the peer id is learned
//! from the first connection, and every later dial is again "to whoever answers at this
//! address", so a bootnode that restarts with a new identity is still found. An address
//! that turns out to be our own (a shared bootnode list in a compose file) is never dialled
//! again.

use libp2p::{
    Multiaddr, PeerId,
    multiaddr::Protocol,
    swarm::{ConnectionId, dial_opts::DialOpts},
};

/// The peer id named by a trailing `/p2p/<id>` component of `addr`, if any.
pub(crate) fn peer_id_of(addr: &Multiaddr) -> Option<PeerId> {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => Some(peer),
        _ => None,
    }
}

/// Dial options for `addr`: to the named peer (skipped if it is already connected or being
/// dialled) when the address has a `/p2p` suffix, else to whoever answers.
pub(crate) fn dial_opts(addr: &Multiaddr) -> DialOpts {
    match peer_id_of(addr) {
        Some(peer) => DialOpts::peer_id(peer)
            .addresses(vec![addr.clone()])
            .build(),
        None => DialOpts::unknown_peer_id().address(addr.clone()).build(),
    }
}

#[derive(Debug)]
struct Bootnode {
    addr: Multiaddr,
    /// From the `/p2p` suffix, or learned from the last connection.
    peer: Option<PeerId>,
    /// The dial in flight, if any.
    dialing: Option<ConnectionId>,
    /// The address is our own.
    is_self: bool,
}

/// The configured bootnodes and their dial state.
#[derive(Debug)]
pub(crate) struct Bootnodes {
    entries: Vec<Bootnode>,
}

impl Bootnodes {
    /// Tracks `addrs`; those naming `local` are skipped for good.
    pub(crate) fn new(addrs: Vec<Multiaddr>, local: PeerId) -> Self {
        let entries = addrs
            .into_iter()
            .map(|addr| {
                let peer = peer_id_of(&addr);
                Bootnode {
                    is_self: peer == Some(local),
                    addr,
                    peer,
                    dialing: None,
                }
            })
            .collect();
        Bootnodes { entries }
    }

    /// Indices and addresses of the bootnodes to dial now: not ourselves, no dial in flight
    /// and not connected.
    pub(crate) fn due(&self, is_connected: impl Fn(&PeerId) -> bool) -> Vec<(usize, Multiaddr)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, b)| !b.is_self && b.dialing.is_none())
            .filter(|(_, b)| !b.peer.as_ref().is_some_and(&is_connected))
            .map(|(i, b)| (i, b.addr.clone()))
            .collect()
    }

    /// Records that bootnode `index` is being dialled as `connection`.
    pub(crate) fn dialing(&mut self, index: usize, connection: ConnectionId) {
        if let Some(b) = self.entries.get_mut(index) {
            b.dialing = Some(connection);
        }
    }

    /// The entry whose dial is `connection`, with that dial marked finished.
    fn end_dial(&mut self, connection: ConnectionId) -> Option<&mut Bootnode> {
        let b = self.entries.iter_mut().find(|b| b.dialing == Some(connection))?;
        b.dialing = None;
        Some(b)
    }

    /// A connection was established; if it was a bootnode dial, returns its address.
    pub(crate) fn on_established(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
    ) -> Option<&Multiaddr> {
        let b = self.end_dial(connection)?;
        b.peer = Some(peer);
        Some(&b.addr)
    }

    /// A dial failed; if it was a bootnode dial, returns its address. `was_self` marks the
    /// address as our own so it is not dialled again.
    pub(crate) fn on_dial_failed(
        &mut self,
        connection: ConnectionId,
        was_self: bool,
    ) -> Option<&Multiaddr> {
        let b = self.end_dial(connection)?;
        b.is_self |= was_self;
        Some(&b.addr)
    }
}

#[cfg(test)]
mod tests {
    use libp2p::identity::Keypair;

    use super::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().expect("valid multiaddr")
    }

    #[test]
    fn suffix_is_optional() {
        let peer = Keypair::generate_ed25519().public().to_peer_id();
        assert_eq!(
            peer_id_of(&addr(&format!("/dns4/miner/tcp/9000/p2p/{peer}"))),
            Some(peer)
        );
        assert_eq!(peer_id_of(&addr("/dns4/miner/tcp/9000")), None);
    }

    #[test]
    fn redial_policy() {
        let local = Keypair::generate_ed25519().public().to_peer_id();
        let remote = Keypair::generate_ed25519().public().to_peer_id();
        let mut boot = Bootnodes::new(
            vec![
                addr("/ip4/10.0.0.1/tcp/1"),
                addr(&format!("/ip4/10.0.0.2/tcp/2/p2p/{local}")),
                addr("/ip4/10.0.0.3/tcp/3"),
            ],
            local,
        );
        let due: Vec<usize> = boot.due(|_| false).into_iter().map(|(i, _)| i).collect();
        assert_eq!(due, vec![0, 2], "our own address is never dialled");

        let (c0, c2) = (
            ConnectionId::new_unchecked(10),
            ConnectionId::new_unchecked(12),
        );
        boot.dialing(0, c0);
        boot.dialing(2, c2);
        assert!(
            boot.due(|_| false).is_empty(),
            "no second dial while one is in flight"
        );

        assert!(boot.on_established(c0, remote).is_some());
        assert!(boot.on_dial_failed(c2, true).is_some());
        assert!(
            boot.due(|p| *p == remote).is_empty(),
            "connected, or found to be ourselves"
        );
        let due: Vec<usize> = boot.due(|_| false).into_iter().map(|(i, _)| i).collect();
        assert_eq!(due, vec![0], "redialled once disconnected");
        assert!(
            boot.on_established(ConnectionId::new_unchecked(99), remote)
                .is_none()
        );
    }
}
