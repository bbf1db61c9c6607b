//! [`PeerList`]: the node's view of its connected peers, as the RPC's `net_peers` shows it,
//! and a watch of how many there are.
//!
//! The node loop calls [`PeerList::refresh`] when a peer connects, identifies or leaves, and
//! on every resync tick (gossipsub scores change without an event); the list is read from
//! the network handle in a task of its own. The RPC reads [`PeerList::views`]; tests and
//! tools wait on [`PeerList::count`].

use std::sync::{Arc, Mutex};

use learnchain_net::NetworkHandle;
use learnchain_rpc::PeerView;
use tokio::sync::watch;

/// Connected peers (see the module docs).
#[derive(Clone, Debug)]
pub struct PeerList {
    views: Arc<Mutex<Vec<PeerView>>>,
    count: watch::Sender<usize>,
}

impl Default for PeerList {
    fn default() -> Self {
        PeerList { views: Arc::default(), count: watch::channel(0).0 }
    }
}

impl PeerList {
    /// The views as last refreshed.
    pub fn views(&self) -> Vec<PeerView> {
        self.views.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Follows the number of connected peers.
    pub fn count(&self) -> watch::Receiver<usize> {
        self.count.subscribe()
    }

    /// Reads the peers from `net` and replaces the list.
    pub async fn refresh(&self, net: &NetworkHandle) {
        let views: Vec<PeerView> = net
            .peers()
            .await
            .into_iter()
            .map(|p| PeerView {
                peer_id: p.peer_id.to_string(),
                addresses: p.addresses.iter().map(ToString::to_string).collect(),
                listen_addrs: p.listen_addrs.iter().map(ToString::to_string).collect(),
                agent: p.agent,
                direction: p.direction.as_str().into(),
                score: p.standing.score,
                gossip_score: p.gossip_score,
                offences: p.standing.offences,
                last_offence: p.standing.last_offence.map(|o| o.name().to_string()),
            })
            .collect();
        let n = views.len();
        *self.views.lock().unwrap_or_else(|p| p.into_inner()) = views;
        self.count.send_replace(n);
    }
}
