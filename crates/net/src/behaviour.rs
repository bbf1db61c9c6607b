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
//! the payload, so the same content published twice is one message; the transmit limit is
//! the larger topic limit plus [`GOSSIP_ENVELOPE_SLACK`], and each topic has its own limit
//! plus slack as well (the exact payload limit is enforced by the event loop); flood publish
//! is on so a new block reaches every subscribed peer at once.

use std::collections::HashMap;
use std::time::Duration;

use learnchain_proto::announce::MAX_ANNOUNCEMENT_BYTES;
use learnchain_proto::registration::MAX_REGISTRATION_BYTES;
use learnchain_proto::{hash::sha256, topics::TopicKind};
use libp2p::{
    Swarm, SwarmBuilder, Transport, core::upgrade, gossipsub, identify, noise, ping,
    request_response, request_response::ProtocolSupport, swarm::NetworkBehaviour, tcp, yamux,
};

use crate::{
    NetError,
    codec::{SYNC_STREAM_PROTOCOL, SyncCodec},
    config::{
        GOSSIP_ENVELOPE_SLACK, GOSSIP_HEARTBEAT, GOSSIP_HISTORY_LENGTH, GOSSIP_MESH_N, GOSSIP_MESH_N_HIGH, GOSSIP_MESH_N_LOW, IDENTIFY_PROTOCOL_VERSION,
        IDLE_CONNECTION_TIMEOUT, NetConfig, SYNC_STREAM_GRACE,
    },
    traffic::{CountingStream, TrafficCounters},
};

/// The node's network behaviour: one field per protocol.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// Block and submission gossip.
    pub(crate) gossipsub: gossipsub::Behaviour,
    /// Exchange of agent strings and listen addresses.
    pub(crate) identify: identify::Behaviour,
    /// The chain sync protocol.
    pub(crate) sync: request_response::Behaviour<SyncCodec>,
    /// Liveness checks.
    pub(crate) ping: ping::Behaviour,
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
        .checked_add(GOSSIP_ENVELOPE_SLACK)
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
    Ok(())
}

fn gossipsub_behaviour(
    config: &NetConfig,
    topics: &Topics,
) -> Result<gossipsub::Behaviour, NetError> {
    let largest = config.max_block_bytes.max(MAX_REGISTRATION_BYTES);
    let mut builder = gossipsub::ConfigBuilder::default();
    builder
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(|message: &gossipsub::Message| {
            gossipsub::MessageId::new(sha256(&message.data).as_bytes())
        })
        .max_transmit_size(largest + GOSSIP_ENVELOPE_SLACK)
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
    for kind in TopicKind::ALL {
        let topic = gossipsub::IdentTopic::new(kind.topic(&config.chain_id));
        gossipsub
            .subscribe(&topic)
            .map_err(|e| NetError::Config(format!("subscribe: {e}")))?;
    }
    Ok(gossipsub)
}

/// Builds the behaviour for `config`.
fn behaviour(config: &NetConfig, topics: &Topics) -> Result<Behaviour, NetError> {
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
            .with_request_timeout(config.request_timeout.saturating_add(SYNC_STREAM_GRACE)),
    );
    Ok(Behaviour {
        gossipsub: gossipsub_behaviour(config, topics)?,
        identify,
        sync,
        ping: ping::Behaviour::default(),
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
/// into `traffic`.
pub(crate) fn build_swarm(
    config: &NetConfig,
    topics: &Topics,
    traffic: TrafficCounters,
) -> Result<Swarm<Behaviour>, NetError> {
    check_config(config)?;
    let behaviour = behaviour(config, topics)?;
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
