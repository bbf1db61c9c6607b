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
//! `event_loop` (the swarm task), `bootnodes` (redial policy), `discovery` (Kademlia, mDNS
//! and the policy that keeps the node between its target and maximum peer counts),
//! `scoring` (the peer manager: scores, offences and bans), `metrics` (what the network
//! exports to Prometheus, registered by [`new_with_metrics`]), `limits` (connection limits and
//! the per-peer sync request budget), `handle` (the client side), `traffic` (transport-level
//! byte counters, read with [`NetworkHandle::traffic`]), `types` (events and tokens),
//! `error`.

mod behaviour;
mod bootnodes;
mod codec;
mod config;
mod discovery;
mod error;
mod event_loop;
mod handle;
mod limits;
mod metrics;
mod scoring;
mod traffic;
mod types;

use prometheus_client::registry::Registry;
use tokio::sync::mpsc;

pub use codec::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES_CAP, WireResponse};
pub use behaviour::MAX_SYNC_STREAMS;
pub use config::{
    BOOTNODE_REDIAL_INTERVAL, DEFAULT_MAX_PEERS, GOSSIP_CONTROL_BYTES, DEFAULT_TARGET_PEERS, EVENT_CHANNEL_CAPACITY,
    GOSSIP_ENVELOPE_SLACK, GOSSIP_HEARTBEAT, GOSSIP_HISTORY_LENGTH, GOSSIP_MESH_N,
    GOSSIP_MESH_N_HIGH, GOSSIP_MESH_N_LOW, IDENTIFY_PROTOCOL_VERSION, IDLE_CONNECTION_TIMEOUT,
    NetConfig, SYNC_STREAM_GRACE,
};
pub use discovery::{DIAL_BACKOFF, DISCOVERY_INTERVAL, KAD_QUERY_TIMEOUT, PRUNE_HEADROOM, WALK_INTERVAL};
pub use limits::{
    MAX_BUDGETS, MAX_CONNECTIONS_PER_PEER, MAX_INBOUND_SYNC_PER_PEER, MAX_PENDING_INCOMING,
    MAX_PENDING_OUTGOING, SYNC_REQUEST_BURST, SYNC_REQUESTS_PER_SECOND,
};
pub use scoring::{
    BAN_DURATION, BAN_SCORE, BanInfo, DISCONNECT_SCORE, MAX_BANS, MAX_SCORED_PEERS, MIN_SCORE,
    Offence, READMIT_SCORE, SCORE_HALF_LIFE, Standing,
};
pub use error::NetError;
pub use event_loop::EventLoop;
pub use handle::NetworkHandle;
pub use traffic::Traffic;
pub use learnchain_proto::topics::TopicKind;
pub use libp2p::{Multiaddr, PeerId, identity::Keypair};
pub use types::{Direction, GossipId, NetEvent, PeerInfo, SyncResponder, Verdict};

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
    build(config, None)
}

/// [`new`], registering the network's metrics (libp2p's, gossipsub's and ours, see the
/// `metrics` module) in `registry`; the caller encodes it to serve them.
pub fn new_with_metrics(
    config: NetConfig,
    registry: &mut Registry,
) -> Result<(NetworkHandle, mpsc::Receiver<NetEvent>, EventLoop), NetError> {
    build(config, Some(registry))
}

/// [`new`] or [`new_with_metrics`]: without a registry, libp2p's and gossipsub's metrics
/// are not kept at all (they cost work per message and per heartbeat), and ours count into
/// nothing anyone reads.
fn build(
    config: NetConfig,
    mut registry: Option<&mut Registry>,
) -> Result<(NetworkHandle, mpsc::Receiver<NetEvent>, EventLoop), NetError> {
    let topics = behaviour::Topics::new(&config);
    let traffic = traffic::TrafficCounters::default();
    let mut swarm = behaviour::build_swarm(&config, &topics, traffic.clone(), registry.as_deref_mut())?;
    let metrics = match registry {
        Some(registry) => metrics::NetMetrics::register(registry, traffic.clone()),
        None => metrics::NetMetrics::unregistered(),
    };
    for addr in &config.listen {
        check_port_free(addr)?;
        swarm
            .listen_on(addr.clone())
            .map_err(|e| listen_error(addr, e))?;
    }
    let local_peer_id = *swarm.local_peer_id();
    let bootnodes = bootnodes::Bootnodes::new(config.bootnodes, local_peer_id);
    let (command_tx, command_rx) = mpsc::channel(config::COMMAND_CHANNEL_CAPACITY);
    let (event_tx, event_rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let scores: handle::SharedScores =
        std::sync::Arc::new(std::sync::Mutex::new(scoring::Scoreboard::new(config.enforce_peer_scores)));
    let discovery = discovery::Discovery::new(config.target_peers, config.max_peers);
    let parts = event_loop::LoopParts { topics, bootnodes, discovery, scores: scores.clone(), metrics };
    let event_loop = EventLoop::new(swarm, command_rx, event_tx, parts);
    Ok((
        NetworkHandle::new(command_tx, local_peer_id, config.request_timeout, traffic, scores),
        event_rx,
        event_loop,
    ))
}

/// Refuses a fixed TCP port that another socket already listens on. libp2p sets
/// `SO_REUSEPORT` on its listeners, so a second node on the same port would bind it too
/// and the kernel would share incoming connections between the two: check with a plain
/// bind first (which a held port refuses), then release it for libp2p.
fn check_port_free(addr: &Multiaddr) -> Result<(), NetError> {
    use libp2p::multiaddr::Protocol;
    let mut parts = addr.iter();
    let ip: std::net::IpAddr = match parts.next() {
        Some(Protocol::Ip4(ip)) => ip.into(),
        Some(Protocol::Ip6(ip)) => ip.into(),
        _ => return Ok(()),
    };
    let port = match parts.next() {
        Some(Protocol::Tcp(port)) if port != 0 => port,
        _ => return Ok(()),
    };
    match std::net::TcpListener::bind((ip, port)) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(in_use(addr)),
        // Anything else (no such address, no permission) is libp2p's to report.
        _ => Ok(()),
    }
}

fn in_use(addr: &Multiaddr) -> NetError {
    NetError::Transport(format!(
        "cannot listen on {addr}: the port is already in use (another node, or another program, \
         holds it); stop it or give this node another --listen port"
    ))
}

/// Says why `addr` cannot be listened on, and what to do when it is the common case of a
/// port that another process holds.
fn listen_error(addr: &Multiaddr, e: libp2p::TransportError<std::io::Error>) -> NetError {
    let in_use = match &e {
        libp2p::TransportError::Other(io) => io.kind() == std::io::ErrorKind::AddrInUse,
        libp2p::TransportError::MultiaddrNotSupported(_) => false,
    };
    if in_use {
        self::in_use(addr)
    } else {
        NetError::Transport(format!("cannot listen on {addr}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_port_is_refused_by_name() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = held.local_addr().expect("addr").port();
        let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().expect("multiaddr");
        let err = check_port_free(&addr).expect_err("in use");
        assert!(err.to_string().contains("already in use"), "{err}");
        drop(held);
        check_port_free(&addr).expect("free again");
        let any: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr");
        check_port_free(&any).expect("port 0 is never checked");
    }
}
