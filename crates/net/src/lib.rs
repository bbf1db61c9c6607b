//! learnchain networking: one libp2p swarm, the gossip topics and the sync protocol.
//!
//! This crate knows nothing of the chain (Lighthouse's network crate is the model): gossip
//! payloads are opaque bytes, sync messages are `learnchain-proto` types, and the node decides
//! Accept / Ignore / Reject for every gossip message and what to answer to every sync
//! request.
//!
//! [`new`] builds the swarm from a [`NetConfig`] and returns, after the pattern of
//! rust-libp2p's file-sharing example:
//! - a cloneable [`NetworkHandle`] through which the node publishes, reports verdicts, sends
//!   and answers sync requests, dials and lists peers (commands with oneshot replies);
//! - the receiver of [`NetEvent`]s: gossip held for a verdict, inbound sync requests, peers
//!   coming and going, listen addresses;
//! - the [`EventLoop`], which the caller spawns; it owns the swarm and stops when every
//!   handle is dropped.
//!
//! Modules: `config` (configuration and tuning constants), `behaviour` (the one
//! `NetworkBehaviour` and the transport), `codec` (length-prefixed sync frames with limits),
//! `event_loop` (the swarm task), `bootnodes` (redial policy), `handle` (the client side),
//! `types` (events and tokens), `error`.
//!
//! Not yet here: Kademlia discovery, mDNS, gossipsub peer scoring and a registrations topic
//! (see the design); peers are found through bootnodes and inbound connections only.

mod behaviour;
mod bootnodes;
mod codec;
mod config;
mod error;
mod event_loop;
mod handle;
mod types;

use tokio::sync::mpsc;

pub use codec::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES_CAP};
pub use config::{
    BOOTNODE_REDIAL_INTERVAL, EVENT_CHANNEL_CAPACITY, GOSSIP_ENVELOPE_SLACK, GOSSIP_HEARTBEAT,
    GOSSIP_HISTORY_LENGTH, IDENTIFY_PROTOCOL_VERSION, IDLE_CONNECTION_TIMEOUT, NetConfig,
    SYNC_STREAM_GRACE,
};
pub use error::NetError;
pub use event_loop::EventLoop;
pub use handle::NetworkHandle;
pub use learnchain_proto::topics::TopicKind;
pub use libp2p::{Multiaddr, PeerId, identity::Keypair};
pub use types::{GossipId, NetEvent, PeerInfo, SyncResponder, Verdict};

/// Builds the swarm for `config`, starts listening on `config.listen`, and returns the
/// handle, the event stream and the event loop to spawn. Bootnodes are dialled once the
/// event loop runs.
///
/// Must be called within a tokio runtime. Fails if a limit in the configuration is out of
/// range, the transport (including the system DNS resolver configuration) cannot be built,
/// or a listen address cannot be bound.
pub fn new(
    config: NetConfig,
) -> Result<(NetworkHandle, mpsc::Receiver<NetEvent>, EventLoop), NetError> {
    let topics = behaviour::Topics::new(&config);
    let mut swarm = behaviour::build_swarm(&config, &topics)?;
    for addr in &config.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NetError::Transport(format!("cannot listen on {addr}: {e}")))?;
    }
    let local_peer_id = *swarm.local_peer_id();
    let bootnodes = bootnodes::Bootnodes::new(config.bootnodes, local_peer_id);
    let (command_tx, command_rx) = mpsc::channel(config::COMMAND_CHANNEL_CAPACITY);
    let (event_tx, event_rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let event_loop = EventLoop::new(swarm, command_rx, event_tx, topics, bootnodes);
    Ok((
        NetworkHandle::new(command_tx, local_peer_id, config.request_timeout),
        event_rx,
        event_loop,
    ))
}
