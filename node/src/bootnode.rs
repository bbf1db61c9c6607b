//! Whether this node has found its network through its bootnodes, and when to give up.
//!
//! A node started with `--bootnode` addresses exists to join the network they lead to. Two
//! mistakes would otherwise leave it running alone and silent: no bootnode ever answers (a
//! wrong address, a stopped bootnode, a firewall), or the bootnode runs another chain (the
//! node was given another network's genesis). [`BootnodeWatch`] turns both into a fatal
//! error that names the problem and what to do:
//!
//! - no bootnode connected within the timeout since the start → stop, listing each
//!   bootnode's last dial error;
//! - a bootnode's sync status names another chain id, and no bootnode so far has run ours
//!   → stop at once. (A peer that is not one of our bootnodes and runs another chain is only
//!   ignored: a stranger cannot stop a node.)
//!
//! Once a bootnode has answered, later disconnections are normal network weather: the
//! network layer keeps redialling and nothing here fires.
//!
//! The watch is plain state, driven by the node loop's events and a timer; it never blocks.

use std::collections::BTreeMap;
use std::time::Duration;

use learnchain_net::{Multiaddr, PeerId};
use learnchain_proto::Hash32;

/// Bootnode reachability and chain agreement, as seen since the start.
#[derive(Debug)]
pub struct BootnodeWatch {
    configured: Vec<Multiaddr>,
    timeout: Option<Duration>,
    ours: Hash32,
    /// Peers that answered a bootnode dial, with the address dialled.
    connected: BTreeMap<PeerId, Multiaddr>,
    /// The last dial error of each bootnode address.
    last_error: BTreeMap<Multiaddr, String>,
    /// A bootnode has shown it runs our chain.
    agreed: bool,
}

impl BootnodeWatch {
    /// A watch over `configured` bootnodes for chain `ours`; `timeout` of `None` (or no
    /// bootnodes) never gives up on reachability.
    pub fn new(configured: Vec<Multiaddr>, ours: Hash32, timeout: Option<Duration>) -> Self {
        BootnodeWatch {
            configured,
            timeout,
            ours,
            connected: BTreeMap::new(),
            last_error: BTreeMap::new(),
            agreed: false,
        }
    }

    /// When the reachability check is due (none without bootnodes or a timeout).
    pub fn deadline(&self) -> Option<Duration> {
        if self.configured.is_empty() { None } else { self.timeout }
    }

    /// A bootnode dial connected to `peer`.
    pub fn on_connected(&mut self, peer: PeerId, address: Multiaddr) {
        self.last_error.remove(&address);
        self.connected.insert(peer, address);
    }

    /// A bootnode dial failed.
    pub fn on_dial_failed(&mut self, address: &Multiaddr, error: String) {
        self.last_error.insert(address.clone(), error);
    }

    /// Whether any bootnode has ever answered.
    pub fn reached(&self) -> bool {
        !self.connected.is_empty()
    }

    /// `peer` has shown it runs our chain.
    pub fn on_same_chain(&mut self, peer: &PeerId) {
        self.agreed |= self.connected.contains_key(peer);
    }

    /// `peer` says it runs `chain`, not ours. Returns the fatal error when `peer` is one of
    /// our bootnodes and no bootnode has run ours.
    pub fn on_other_chain(&mut self, peer: &PeerId, chain: &Hash32) -> Option<String> {
        let address = self.connected.get(peer)?;
        if self.agreed {
            return None;
        }
        Some(format!(
            "bootnode {address} runs chain {chain}, but this node's genesis defines chain {ours}: \
             the genesis file is not this network's. Get the network's genesis file from its operator \
             (its chain id is printed by `learnchain genesis show FILE`), or give a bootnode of your own network",
            ours = self.ours,
        ))
    }

    /// The fatal error once the timeout has passed without any bootnode answering.
    pub fn on_timeout(&self) -> Option<String> {
        let timeout = self.deadline()?;
        if self.reached() {
            return None;
        }
        let each: Vec<String> = self
            .configured
            .iter()
            .map(|a| match self.last_error.get(a) {
                Some(e) => format!("{a} ({e})"),
                None => format!("{a} (no answer)"),
            })
            .collect();
        Some(format!(
            "no bootnode answered within {} s: {}. Check each address (host, port, and /p2p/ peer id if given), \
             that the bootnode is running, and that this machine can reach it; --bootnode-timeout-s 0 keeps trying forever",
            timeout.as_secs(),
            each.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().expect("multiaddr")
    }

    #[test]
    fn unreachable_bootnodes_are_fatal_at_the_timeout_and_named() {
        let boot = addr("/dns4/bootnode/tcp/30333");
        let mut w = BootnodeWatch::new(vec![boot.clone()], Hash32([1; 32]), Some(Duration::from_secs(60)));
        assert_eq!(w.deadline(), Some(Duration::from_secs(60)));
        w.on_dial_failed(&boot, "Connection refused (os error 111)".into());
        let msg = w.on_timeout().expect("fatal");
        assert!(msg.contains("/dns4/bootnode/tcp/30333 (Connection refused"), "{msg}");
        assert!(msg.contains("within 60 s"), "{msg}");
        w.on_connected(PeerId::random(), boot);
        assert_eq!(w.on_timeout(), None, "reached once is enough");
    }

    #[test]
    fn no_bootnodes_or_no_timeout_never_give_up() {
        let w = BootnodeWatch::new(vec![], Hash32([1; 32]), Some(Duration::from_secs(1)));
        assert_eq!(w.deadline(), None);
        assert_eq!(w.on_timeout(), None);
        let w = BootnodeWatch::new(vec![addr("/ip4/10.0.0.1/tcp/1")], Hash32([1; 32]), None);
        assert_eq!(w.on_timeout(), None);
    }

    #[test]
    fn a_bootnode_on_another_chain_is_fatal_a_stranger_is_not() {
        let ours = Hash32([1; 32]);
        let theirs = Hash32([2; 32]);
        let boot = addr("/ip4/127.0.0.1/tcp/30333");
        let mut w = BootnodeWatch::new(vec![boot.clone()], ours, Some(Duration::from_secs(60)));
        let stranger = PeerId::random();
        assert_eq!(w.on_other_chain(&stranger, &theirs), None, "not a bootnode");
        let b = PeerId::random();
        w.on_connected(b, boot);
        let msg = w.on_other_chain(&b, &theirs).expect("fatal");
        assert!(msg.contains(&theirs.to_string()) && msg.contains(&ours.to_string()), "{msg}");
        assert!(msg.contains("genesis"), "{msg}");
    }

    #[test]
    fn one_bootnode_on_our_chain_tolerates_another_on_a_different_one() {
        let ours = Hash32([1; 32]);
        let (a, b) = (addr("/ip4/127.0.0.1/tcp/1"), addr("/ip4/127.0.0.1/tcp/2"));
        let mut w = BootnodeWatch::new(vec![a.clone(), b.clone()], ours, Some(Duration::from_secs(60)));
        let (pa, pb) = (PeerId::random(), PeerId::random());
        w.on_connected(pa, a);
        w.on_connected(pb, b);
        w.on_same_chain(&pa);
        assert_eq!(w.on_other_chain(&pb, &Hash32([9; 32])), None);
    }
}
