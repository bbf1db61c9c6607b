//! The one `NetworkBehaviour` of the node ([`Behaviour`]) and the swarm built around it.
//!
//! Data enters here only as configuration: [`build_swarm`] turns a [`NetConfig`] into a
//! `Swarm` with the TCP + Noise + Yamux transport (behind DNS resolution, so `/dns4/<compose
//! service>/tcp/N` bootnodes work; every raw TCP stream counted by the `traffic` module), gossipsub subscribed to the chain's topics, identify,
//! the sync request-response protocol and ping. What the swarm produces afterwards is
//! consumed by the event loop.
//!
//! Gossipsub choices: messages are anonymous — no author peer id, sequence number or
//! signature in the envelope (`MessageAuthenticity::Anonymous` with
//! `ValidationMode::Anonymous`), so a submission cannot be linked to the node that first
//! published it through the gossip envelope; authenticity comes from the payload itself
//! (proof of work for blocks, the ring signature for submissions). Every message is held
//! until the node reports a verdict (`validate_messages`); the message id is the SHA-256 of
//! the payload, so the same content published twice is one message; an RPC may be as large
//! as the larger topic limit plus [`GOSSIP_ENVELOPE_SLACK`] plus [`GOSSIP_CONTROL_BYTES`]
//! (control travels beside messages), and each topic's messages have their own limit plus
//! the envelope slack (the exact payload limit is enforced by the event loop); flood publish
//! is on so a new block reaches every subscribed peer at once. Gossipsub's peer scoring is on
//! (see [`gossip_score_params`]). Kademlia, mDNS, bans and connection limits are their own
//! behaviours here; their policy lives in the `discovery`, `scoring` and `limits` modules.

use std::collections::HashMap;
use std::time::Duration;

use learnchain_proto::announce::MAX_ANNOUNCEMENT_BYTES;
use learnchain_proto::registration::MAX_REGISTRATION_BYTES;
use learnchain_proto::{hash::sha256, topics::TopicKind};
use prometheus_client::registry::Registry;
use libp2p::{
    Swarm, SwarmBuilder, Transport, allow_block_list, connection_limits, core::upgrade, gossipsub,
    identify, kad, mdns, noise, ping, request_response, request_response::ProtocolSupport,
    swarm::{NetworkBehaviour, behaviour::toggle::Toggle}, tcp, yamux,
};

use crate::{
    NetError,
    codec::{SYNC_STREAM_PROTOCOL, SyncCodec},
    config::{
        GOSSIP_CONTROL_BYTES, GOSSIP_ENVELOPE_SLACK, GOSSIP_HEARTBEAT, GOSSIP_HISTORY_LENGTH, GOSSIP_MESH_N, GOSSIP_MESH_N_HIGH, GOSSIP_MESH_N_LOW, IDENTIFY_PROTOCOL_VERSION,
        IDLE_CONNECTION_TIMEOUT, NetConfig, SYNC_STREAM_GRACE,
    },
    traffic::{CountingStream, TrafficCounters},
};

/// The node's network behaviour: one field per protocol. The two that refuse connections
/// (bans, limits) come first, so a refused connection never reaches the others.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// Banned peers, whose connections are refused (see `scoring`).
    pub(crate) bans: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    /// Connection limits (see `limits`).
    pub(crate) limits: connection_limits::Behaviour,
    /// Block and submission gossip.
    pub(crate) gossipsub: gossipsub::Behaviour,
    /// Exchange of agent strings and listen addresses.
    pub(crate) identify: identify::Behaviour,
    /// The chain sync protocol.
    pub(crate) sync: request_response::Behaviour<SyncCodec>,
    /// Liveness checks.
    pub(crate) ping: ping::Behaviour,
    /// Peer discovery under the chain's Kademlia protocol (see `discovery`), unless
    /// `NetConfig::discovery` is off.
    pub(crate) kad: Toggle<kad::Behaviour<kad::store::MemoryStore>>,
    /// LAN discovery, when `NetConfig::mdns` is set.
    pub(crate) mdns: Toggle<mdns::tokio::Behaviour>,
}

/// The gossip topics of one chain and their payload limits.
#[derive(Clone, Debug)]
pub(crate) struct Topics {
    by_hash: HashMap<gossipsub::TopicHash, TopicKind>,
    blocks: gossipsub::TopicHash,
    compact_blocks: gossipsub::TopicHash,
    submissions: gossipsub::TopicHash,
    registrations: gossipsub::TopicHash,
    max_block_bytes: usize,
}

impl Topics {
    /// The topics of `config.chain_id` with the configured limits.
    pub(crate) fn new(config: &NetConfig) -> Self {
        let blocks = gossipsub::IdentTopic::new(TopicKind::Blocks.topic(&config.chain_id)).hash();
        let compact_blocks =
            gossipsub::IdentTopic::new(TopicKind::CompactBlocks.topic(&config.chain_id)).hash();
        let submissions =
            gossipsub::IdentTopic::new(TopicKind::Submissions.topic(&config.chain_id)).hash();
        let registrations =
            gossipsub::IdentTopic::new(TopicKind::Registrations.topic(&config.chain_id)).hash();
        let by_hash = HashMap::from([
            (blocks.clone(), TopicKind::Blocks),
            (compact_blocks.clone(), TopicKind::CompactBlocks),
            (submissions.clone(), TopicKind::Submissions),
            (registrations.clone(), TopicKind::Registrations),
        ]);
        Topics {
            by_hash,
            blocks,
            compact_blocks,
            submissions,
            registrations,
            max_block_bytes: config.max_block_bytes,
        }
    }

    /// The topic hash of `kind`.
    pub(crate) fn hash(&self, kind: TopicKind) -> &gossipsub::TopicHash {
        match kind {
            TopicKind::Blocks => &self.blocks,
            TopicKind::CompactBlocks => &self.compact_blocks,
            TopicKind::Submissions => &self.submissions,
            TopicKind::Registrations => &self.registrations,
        }
    }

    /// Which of our topics `hash` is, if any.
    pub(crate) fn kind(&self, hash: &gossipsub::TopicHash) -> Option<TopicKind> {
        self.by_hash.get(hash).copied()
    }

    /// Largest payload allowed on `kind`.
    pub(crate) fn max_bytes(&self, kind: TopicKind) -> usize {
        match kind {
            // A compact block is never published larger than the full block limit (the
            // miner prefills only what fits; see `learnchain_proto::compact`).
            TopicKind::Blocks | TopicKind::CompactBlocks => self.max_block_bytes,
            // Submissions travel as announcements; the bytes come by request.
            TopicKind::Submissions => MAX_ANNOUNCEMENT_BYTES,
            TopicKind::Registrations => MAX_REGISTRATION_BYTES,
        }
    }
}

/// Checks the limits of `config` before anything is built.
fn check_config(config: &NetConfig) -> Result<(), NetError> {
    if config.max_block_bytes == 0 {
        return Err(NetError::Config(
            "gossip size limits must be positive".into(),
        ));
    }
    let largest = config.max_block_bytes.max(MAX_REGISTRATION_BYTES);
    if largest
        .checked_add(GOSSIP_ENVELOPE_SLACK + GOSSIP_CONTROL_BYTES)
        .is_none_or(|n| u32::try_from(n).is_err())
    {
        return Err(NetError::Config(format!(
            "gossip size limit of {largest} bytes is too large"
        )));
    }
    if config.max_sync_response_bytes == 0 {
        return Err(NetError::Config(
            "max_sync_response_bytes must be positive".into(),
        ));
    }
    if config.request_timeout.is_zero() {
        return Err(NetError::Config("request_timeout must be positive".into()));
    }
    if config.max_peers == 0 {
        return Err(NetError::Config("max_peers must be at least 1".into()));
    }
    if config.target_peers > config.max_peers {
        return Err(NetError::Config(format!(
            "target_peers ({}) must not exceed max_peers ({})",
            config.target_peers, config.max_peers
        )));
    }
    Ok(())
}

fn gossipsub_behaviour(
    config: &NetConfig,
    topics: &Topics,
    registry: Option<&mut Registry>,
) -> Result<gossipsub::Behaviour, NetError> {
    let largest = config.max_block_bytes.max(MAX_REGISTRATION_BYTES);
    let mut builder = gossipsub::ConfigBuilder::default();
    builder
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(|message: &gossipsub::Message| {
            gossipsub::MessageId::new(sha256(&message.data).as_bytes())
        })
        .max_transmit_size(largest + GOSSIP_ENVELOPE_SLACK + GOSSIP_CONTROL_BYTES)
        .max_control_message_size(GOSSIP_CONTROL_BYTES)
        .heartbeat_interval(GOSSIP_HEARTBEAT)
        .heartbeat_initial_delay(GOSSIP_HEARTBEAT / 4)
        .history_length(GOSSIP_HISTORY_LENGTH)
        .mesh_n(GOSSIP_MESH_N)
        .mesh_n_low(GOSSIP_MESH_N_LOW)
        .mesh_n_high(GOSSIP_MESH_N_HIGH)
        .mesh_outbound_min(GOSSIP_MESH_N_LOW / 2)
        .gossip_lazy(GOSSIP_MESH_N)
        .flood_publish(true);
    for kind in TopicKind::ALL {
        builder.max_transmit_size_for_topic(
            topics.max_bytes(kind) + GOSSIP_ENVELOPE_SLACK,
            topics.hash(kind).clone(),
        );
    }
    let gossip_config = builder
        .build()
        .map_err(|e| NetError::Config(format!("gossipsub: {e}")))?;
    let mut gossipsub = gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Anonymous,
        gossip_config,
    )
    .map_err(|e| NetError::Config(format!("gossipsub: {e}")))?;
    // Mesh sizes, per-topic messages and bytes (forwards included), scores: `gossipsub_*`.
    if let Some(registry) = registry {
        gossipsub = gossipsub.with_metrics(registry.sub_registry_with_prefix("gossipsub"), gossipsub::MetricsConfig::default());
    }
    // Off with the peer manager's enforcement: gossipsub's graylist would otherwise silence a
    // peer that a test means to keep hearing.
    if config.enforce_peer_scores && config.gossip_scoring {
        gossipsub
            .with_peer_score(gossip_score_params(topics), gossip_score_thresholds())
            .map_err(|e| NetError::Config(format!("gossipsub peer scoring: {e}")))?;
    }
    for kind in TopicKind::ALL {
        let topic = gossipsub::IdentTopic::new(kind.topic(&config.chain_id));
        gossipsub
            .subscribe(&topic)
            .map_err(|e| NetError::Config(format!("subscribe: {e}")))?;
    }
    Ok(gossipsub)
}

/// Gossipsub's own peer scoring. It works beside the node's peer manager (`scoring`), whose
/// score it takes as its application-specific part (weight 1), so a peer the node
/// distrusts also loses its place in the mesh and in gossip. Its own parts:
/// - invalid messages (P4): every message the node reports `Reject` costs
///   `−10 × count²` on its topic, decaying with a 10-minute half-life; three invalid
///   messages put a peer below the graylist threshold, after which gossipsub ignores it;
/// - mesh delivery (P3, P3b): a mesh peer delivering fewer than one message per decay
///   window after two minutes in the mesh costs up to 0.5 per topic, offset by time in the
///   mesh (P1, up to +1 after 100 s), so a quiet topic (registrations are rare) never pushes
///   an honest peer negative (which gossipsub would prune) while a mesh peer that never
///   forwards anything ranks below one that does;
/// - first deliveries (P2): up to +2 per topic for peers that deliver messages first;
/// - behaviour (P7): more than 10 broken IWANT promises or early GRAFTs, decaying by 10% a
///   second, cost the excess squared; slow peers are not penalised;
/// - IP colocation: more than 10 peers from one address cost quadratically, except on
///   loopback, where every node of a devnet or an in-process test lives.
fn gossip_score_params(topics: &Topics) -> gossipsub::PeerScoreParams {
    // Per-second decay factor for a 10-minute half-life.
    let ten_minutes = 0.5f64.powf(1.0 / 600.0);
    let topic = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 100.0,
        first_message_deliveries_weight: 0.1,
        first_message_deliveries_decay: ten_minutes,
        first_message_deliveries_cap: 20.0,
        mesh_message_deliveries_weight: -0.5,
        mesh_message_deliveries_decay: ten_minutes,
        mesh_message_deliveries_cap: 10.0,
        mesh_message_deliveries_threshold: 1.0,
        mesh_message_deliveries_window: Duration::from_secs(1),
        mesh_message_deliveries_activation: Duration::from_secs(120),
        mesh_failure_penalty_weight: -0.5,
        mesh_failure_penalty_decay: ten_minutes,
        invalid_message_deliveries_weight: -10.0,
        invalid_message_deliveries_decay: ten_minutes,
    };
    let mut params = gossipsub::PeerScoreParams {
        app_specific_weight: 1.0,
        // Broken IWANT promises and GRAFTs during backoff: an honest node under load breaks
        // a few, so only a sustained count costs (from 10 on, 1 × excess²).
        behaviour_penalty_weight: -1.0,
        behaviour_penalty_threshold: 10.0,
        behaviour_penalty_decay: 0.9,
        // A slow peer (its send queue full) is a loaded honest node as often as a hostile
        // one; it is not gossip's to punish.
        slow_peer_weight: 0.0,
        ..gossipsub::PeerScoreParams::default()
    };
    params.ip_colocation_factor_whitelist =
        [std::net::Ipv4Addr::LOCALHOST.into(), std::net::Ipv6Addr::LOCALHOST.into()].into();
    for kind in TopicKind::ALL {
        params.topics.insert(topics.hash(kind).clone(), topic.clone());
    }
    params
}

/// Gossipsub's score thresholds: below −10 no gossip is exchanged with a peer, below −50 our
/// own messages are not published to it, below −80 (graylisted) everything it sends is
/// ignored. The node's own disconnect (−20) and ban (−50) thresholds act on connections.
fn gossip_score_thresholds() -> gossipsub::PeerScoreThresholds {
    gossipsub::PeerScoreThresholds {
        gossip_threshold: -10.0,
        publish_threshold: -50.0,
        graylist_threshold: -80.0,
        accept_px_threshold: 10.0,
        opportunistic_graft_threshold: 1.0,
    }
}

/// Most sync streams (both directions) open on one connection at once; a stream over it is
/// refused by libp2p before it is read.
pub const MAX_SYNC_STREAMS: usize = 32;

/// Builds the behaviour for `config`.
fn behaviour(config: &NetConfig, topics: &Topics, registry: Option<&mut Registry>) -> Result<Behaviour, NetError> {
    let identify = identify::Behaviour::new(
        identify::Config::new(
            IDENTIFY_PROTOCOL_VERSION.to_string(),
            config.keypair.public(),
        )
        .with_agent_version(format!("learnchain/{}", env!("CARGO_PKG_VERSION"))),
    );
    let sync = request_response::Behaviour::with_codec(
        SyncCodec::new(config.max_sync_response_bytes),
        [(SYNC_STREAM_PROTOCOL, ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(config.request_timeout.saturating_add(SYNC_STREAM_GRACE))
            .with_max_concurrent_streams(MAX_SYNC_STREAMS),
    );
    let local = config.keypair.public().to_peer_id();
    let mdns = if config.mdns {
        let mdns = mdns::tokio::Behaviour::new(mdns::Config::default(), local)
            .map_err(|e| NetError::Transport(format!("mdns: cannot start LAN discovery: {e}")))?;
        Some(mdns)
    } else {
        None
    };
    Ok(Behaviour {
        bans: allow_block_list::Behaviour::default(),
        limits: connection_limits::Behaviour::new(crate::limits::connection_limits(config.max_peers as u32)),
        gossipsub: gossipsub_behaviour(config, topics, registry)?,
        identify,
        sync,
        ping: ping::Behaviour::default(),
        kad: Toggle::from(if config.discovery { Some(crate::discovery::kademlia(local, &config.chain_id)?) } else { None }),
        mdns: Toggle::from(mdns),
    })
}

/// Longest a DNS answer is trusted. Bootnode names are re-resolved at every redial: in a
/// compose network a restarted container comes back at another address, and the old one
/// may now belong to another node (a cached answer would have us "reconnect" to it).
pub(crate) const DNS_MAX_TTL: Duration = Duration::from_secs(2);

/// The system's resolver configuration (`/etc/resolv.conf`), with answers cached for at
/// most [`DNS_MAX_TTL`].
fn dns_config() -> Result<(libp2p::dns::ResolverConfig, libp2p::dns::ResolverOpts), NetError> {
    let (cfg, mut opts) = hickory_resolver::system_conf::read_system_conf()
        .map_err(|e| NetError::Transport(format!("dns resolver: cannot read the system configuration: {e}")))?;
    opts.positive_max_ttl = Some(DNS_MAX_TTL);
    opts.negative_max_ttl = Some(DNS_MAX_TTL);
    Ok((cfg, opts))
}

/// Builds the swarm for `config` (not yet listening or dialling), counting its TCP traffic
/// into `traffic` and registering gossipsub's metrics in `registry` (if any).
pub(crate) fn build_swarm(
    config: &NetConfig,
    topics: &Topics,
    traffic: TrafficCounters,
    registry: Option<&mut Registry>,
) -> Result<Swarm<Behaviour>, NetError> {
    check_config(config)?;
    let behaviour = behaviour(config, topics, registry)?;
    let (dns_cfg, dns_opts) = dns_config()?;
    let noise = noise::Config::new(&config.keypair)
        .map_err(|e| NetError::Transport(format!("noise: {e}")))?;
    // TCP + Noise + Yamux as `SwarmBuilder::with_tcp` builds it, with every raw TCP stream
    // counted before the Noise handshake (see the `traffic` module).
    let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
        .map(move |stream, _| CountingStream::new(stream, traffic.clone()))
        .upgrade(upgrade::Version::V1Lazy)
        .authenticate(noise)
        .multiplex(yamux::Config::default());
    let swarm = SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        .with_other_transport(|_| tcp)
        .map_err(|e| NetError::Transport(format!("tcp/noise/yamux: {e}")))?
        .with_dns_config(dns_cfg, dns_opts)
        .with_behaviour(|_| behaviour)
        .map_err(|e| NetError::Transport(format!("behaviour: {e}")))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();
    Ok(swarm)
}
