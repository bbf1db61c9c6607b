//! The values that cross the boundary between the network and the node: [`NetEvent`]s going
//! up, and the tokens the node hands back down ([`GossipId`] with a [`Verdict`],
//! [`SyncResponder`] with a response).
//!
//! Nothing here knows what a block or a submission is: gossip payloads are opaque bytes and
//! sync messages are `learnchain-proto` types the chain logic interprets.

use learnchain_proto::{SyncRequest, topics::TopicKind};
use libp2p::{Multiaddr, PeerId, gossipsub, request_response::ResponseChannel};

use crate::scoring::{Offence, Standing};

/// Something the network reports to the node.
#[derive(Debug)]
pub enum NetEvent {
    /// A gossip message within its topic's size limit, held by gossipsub until the node
    /// reports a [`Verdict`] for `id` (or the message cache expires it).
    Gossip {
        /// The topic it arrived on.
        kind: TopicKind,
        /// The token to pass to [`NetworkHandle::report_validation`](crate::NetworkHandle::report_validation).
        id: GossipId,
        /// The peer that forwarded the message to us (not necessarily its author); the peer
        /// to credit or blame for it.
        source: PeerId,
        /// The payload.
        data: Vec<u8>,
    },
    /// A peer asks for chain data; answer with
    /// [`NetworkHandle::respond`](crate::NetworkHandle::respond) within the request timeout.
    SyncRequest {
        /// The requesting peer.
        peer: PeerId,
        /// What it asks for.
        request: SyncRequest,
        /// Where the answer goes.
        responder: SyncResponder,
    },
    /// The first connection to a peer was established.
    PeerConnected(PeerId),
    /// A connected peer answered identify with the learnchain protocol version: its agent
    /// string is now known (see [`PeerInfo::agent`]).
    PeerIdentified(PeerId),
    /// The last connection to a peer closed.
    PeerDisconnected(PeerId),
    /// The peer manager banned a peer: its connections are closed and refused until the ban
    /// ends (see [`NetworkHandle::bans`](crate::NetworkHandle::bans)).
    PeerBanned {
        /// The banned peer.
        peer: PeerId,
        /// The offence that brought its score to the ban threshold.
        offence: Offence,
    },
    /// The node listens on a new address.
    Listening(Multiaddr),
    /// A dial to a configured bootnode connected.
    BootnodeConnected {
        /// The peer that answered.
        peer: PeerId,
        /// The bootnode address as configured.
        address: Multiaddr,
    },
    /// A dial to a configured bootnode failed (it is retried).
    BootnodeDialFailed {
        /// The bootnode address as configured.
        address: Multiaddr,
        /// Why, as libp2p put it.
        error: String,
    },
}

/// Identifies a received gossip message for [`Verdict`] reporting: the gossipsub message id
/// (the SHA-256 of the payload) and the peer it came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GossipId {
    pub(crate) message_id: gossipsub::MessageId,
    pub(crate) source: PeerId,
    pub(crate) kind: TopicKind,
}

impl GossipId {
    /// The gossipsub message id: the SHA-256 of the payload.
    pub fn message_id(&self) -> &[u8] {
        &self.message_id.0
    }

    /// The peer that forwarded the message to us.
    pub fn source(&self) -> PeerId {
        self.source
    }

    /// The topic the message came on.
    pub fn kind(&self) -> TopicKind {
        self.kind
    }

    /// What a `Reject` of this message charges its sender with: invalid content of the
    /// topic's kind.
    pub fn offence(&self) -> Offence {
        match self.kind {
            TopicKind::Blocks | TopicKind::CompactBlocks => Offence::InvalidBlock,
            TopicKind::Submissions => Offence::InvalidSubmission,
            TopicKind::Registrations => Offence::InvalidRegistration,
        }
    }
}

/// The node's decision on a gossip message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: forward it to our mesh peers.
    Accept,
    /// Not valid for us now but not the sender's fault (e.g. already known, stale, parent
    /// unknown): drop it without penalty.
    Ignore,
    /// Invalid: drop it; the sender broke the rules, and is charged with
    /// [`GossipId::offence`] (see the peer manager, [`Offence`]).
    Reject,
}

impl From<Verdict> for gossipsub::MessageAcceptance {
    fn from(verdict: Verdict) -> Self {
        match verdict {
            Verdict::Accept => gossipsub::MessageAcceptance::Accept,
            Verdict::Ignore => gossipsub::MessageAcceptance::Ignore,
            Verdict::Reject => gossipsub::MessageAcceptance::Reject,
        }
    }
}

/// Where the answer to one inbound sync request goes. Dropping it without responding closes
/// the peer's stream (it sees an error rather than waiting for its timeout).
#[derive(Debug)]
pub struct SyncResponder(pub(crate) ResponseChannel<crate::WireResponse>);

impl SyncResponder {
    /// Whether the peer is still waiting (false once the request timed out or the
    /// connection closed).
    pub fn is_open(&self) -> bool {
        self.0.is_open()
    }
}

/// Who opened a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The peer dialled us.
    Inbound,
    /// We dialled the peer.
    Outbound,
}

impl Direction {
    /// `inbound` or `outbound`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// A connected peer.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerInfo {
    /// Its identity.
    pub peer_id: PeerId,
    /// The remote address of each open connection to it.
    pub addresses: Vec<Multiaddr>,
    /// The addresses it says it listens on (from identify), once identify has run.
    pub listen_addrs: Vec<Multiaddr>,
    /// Its identify agent string (e.g. `learnchain/0.1.0`), once identify has run.
    pub agent: Option<String>,
    /// Who opened the first of the open connections.
    pub direction: Direction,
    /// The peer manager's score and record of its offences.
    pub standing: Standing,
    /// Gossipsub's own score of the peer (which includes the peer manager's score).
    pub gossip_score: f64,
}
