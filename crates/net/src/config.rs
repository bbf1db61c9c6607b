//! Network configuration and the tuning constants of the swarm.
//!
//! [`NetConfig`] is built by the node from its own config file and the genesis (size limits,
//! chain id) and handed to [`crate::new`]; nothing else enters the network crate from the
//! outside. The constants below are *local policy* (timeouts, heartbeats, queue sizes), not
//! protocol rules: protocol names and message limits live in `learnchain-proto`.

use std::time::Duration;

use learnchain_proto::Hash32;
use libp2p::{Multiaddr, identity::Keypair};

/// Identify protocol version this node announces; peers announcing another are disconnected.
pub use learnchain_proto::topics::IDENTIFY_PROTOCOL_VERSION;

/// How long a connection with no open streams is kept before it is closed. Long: which peers
/// to keep is the peer manager's decision (it dials toward `target_peers` and closes what is
/// beyond `max_peers − PRUNE_HEADROOM`), and a connection outside every gossip mesh is idle
/// most of the time without being useless (sync, discovery, a mesh slot when one frees up).
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// How often bootnodes that are not connected are dialled again. Containers of a compose
/// cluster start in any order, so an unreachable bootnode is normal at start-up.
pub const BOOTNODE_REDIAL_INTERVAL: Duration = Duration::from_secs(3);

/// Added to `request_timeout` for the sync protocol's stream timeout (both directions). The
/// requester's own deadline, exactly `request_timeout`, therefore always fires first, so a
/// peer that does not answer in time is reported as [`NetError::Timeout`](crate::NetError)
/// rather than as a stream closed by the server's inbound timeout; and a server gets a little
/// longer to answer than a client waits.
pub const SYNC_STREAM_GRACE: Duration = Duration::from_secs(1);

/// Gossipsub heartbeat: mesh maintenance and IHAVE gossip. Short, so that meshes form within
/// a second on small test networks.
pub const GOSSIP_HEARTBEAT: Duration = Duration::from_millis(700);

/// Gossipsub mesh degree (`D`): every node forwards a message to this many peers per topic,
/// so each message reaches a node about this many times. Lower than gossipsub's default 6:
/// a round carries a submission from every data source, and each duplicate costs every
/// node bandwidth and CPU; 4 keeps a mesh of a hundred nodes a few hops deep and still
/// connected when peers leave.
pub const GOSSIP_MESH_N: usize = 4;
/// Fewest mesh peers before a heartbeat grafts more (`D_low`).
pub const GOSSIP_MESH_N_LOW: usize = 3;
/// Most mesh peers before a heartbeat prunes some (`D_high`).
pub const GOSSIP_MESH_N_HIGH: usize = 6;

/// Heartbeats a received message stays in the message cache. With strict validation the
/// node must report a verdict within `GOSSIP_HISTORY_LENGTH × GOSSIP_HEARTBEAT` (8.4 s) or the
/// message can no longer be forwarded.
pub const GOSSIP_HISTORY_LENGTH: usize = 12;

/// Bytes allowed on top of a topic's payload limit for the gossipsub envelope (source peer
/// id, sequence number, topic string, signature and protobuf framing).
pub const GOSSIP_ENVELOPE_SLACK: usize = 2 * 1024;

/// Most bytes of control messages (IHAVE, IWANT, IDONTWANT, GRAFT, PRUNE) and subscriptions
/// one gossipsub RPC may carry. Gossipsub sends control beside a message in the same RPC, so
/// the largest RPC a node accepts is the largest topic limit plus the envelope slack plus this
/// (a tighter bound would make the receiver drop a full-size block that travels with a
/// heartbeat's gossip, and with it the stream).
pub const GOSSIP_CONTROL_BYTES: usize = 16 * 1024;

/// Capacity of the event channel from the event loop to the node. When it is full the event
/// loop drops the event instead of waiting (see the `event_loop` module docs).
pub const EVENT_CHANNEL_CAPACITY: usize = 4096;

/// Capacity of the command channel from the handles to the event loop.
pub(crate) const COMMAND_CHANNEL_CAPACITY: usize = 256;

/// Everything the network needs to start.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// The node's libp2p identity; its public key is the node's `PeerId`.
    pub keypair: Keypair,
    /// Addresses to listen on, e.g. `/ip4/0.0.0.0/tcp/30333` or `/ip4/127.0.0.1/tcp/0`.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start and to redial whenever they are not connected. Each may be an
    /// `/ip4`, `/ip6` or `/dns4` address, with or without a `/p2p/<peer id>` suffix.
    pub bootnodes: Vec<Multiaddr>,
    /// The chain id (hash of the genesis); scopes the gossip topics.
    pub chain_id: Hash32,
    /// Largest payload accepted or published on the blocks topic.
    pub max_block_bytes: usize,
    /// Largest encoded sync response accepted from (or sent to) a peer.
    pub max_sync_response_bytes: usize,
    /// How long [`NetworkHandle::request`](crate::NetworkHandle::request) waits, from sending
    /// the command to the last byte of the response (including any dial). Inbound requests
    /// must be answered within this plus [`SYNC_STREAM_GRACE`].
    pub request_timeout: Duration,
    /// Connections the node dials toward, through discovery, when it has fewer.
    pub target_peers: usize,
    /// Most established connections; further inbound ones are refused.
    pub max_peers: usize,
    /// Whether to find peers on the local network with mDNS.
    pub mdns: bool,
    /// Whether to run Kademlia discovery (on by default). Off, the node knows only its
    /// bootnodes and the peers that dial it, as a client that must not wander does.
    pub discovery: bool,
    /// Whether gossipsub's own peer scoring runs (on by default; off as well when
    /// `enforce_peer_scores` is off). The peer manager does not depend on it.
    pub gossip_scoring: bool,
    /// Whether peer scores disconnect and ban (on by default). Off, offences are still
    /// counted and shown but every peer stays connected, and gossipsub's own peer scoring is
    /// off too: for tests that watch how each invalid message is judged, one after another,
    /// from one peer.
    pub enforce_peer_scores: bool,
}

/// Default `target_peers`.
pub const DEFAULT_TARGET_PEERS: usize = 8;
/// Default `max_peers`.
pub const DEFAULT_MAX_PEERS: usize = 32;

impl NetConfig {
    /// A configuration with a fresh ed25519 identity listening on `listen`, no bootnodes,
    /// and limits and timeouts suitable for tests and local devnets.
    pub fn local(chain_id: Hash32, listen: Vec<Multiaddr>) -> Self {
        NetConfig {
            keypair: Keypair::generate_ed25519(),
            listen,
            bootnodes: Vec::new(),
            chain_id,
            max_block_bytes: 4 * 1024 * 1024,
            max_sync_response_bytes: 16 * 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            target_peers: DEFAULT_TARGET_PEERS,
            max_peers: DEFAULT_MAX_PEERS,
            mdns: false,
            discovery: true,
            gossip_scoring: true,
            enforce_peer_scores: true,
        }
    }
}
